// The server's HTTP API and websocket, ComfyUI's shapes (facts §1). Every call goes through
// `/api/…` under the page's own base path, so the editor works behind a sub-path proxy.
// Websocket messages are re-emitted: "message" ({type, data}) and "preview" ({blob, meta}); while
// the socket is down the client polls GET /prompt for the queue size.

import { Emitter } from '../model/events.js';
import { parseBinaryFrame } from './preview-frames.js';

export class ApiError extends Error {
  constructor(status, body, message) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function newClientId() {
  return globalThis.crypto?.randomUUID?.().replaceAll('-', '') ?? Math.random().toString(16).slice(2);
}

/** The server's base path seen from the page's path: the page's folder, less the `/weft` mount the
 *  server gives this editor when another front end (ComfyUI's) takes `/`. */
export function serverBase(pathname) {
  return pathname.replace(/[^/]*$/, '').replace(/\/$/, '').replace(/\/weft$/, '');
}

/** True when this editor is served at the `/weft` mount beside another front end: then `/scripts/app.js`
 *  and node packs' extension files belong to that front end, and this editor does not load them. */
export function besideAnotherFrontEnd(pathname) {
  return /\/weft\/?$/.test(pathname.replace(/[^/]*$/, ''));
}

export class ApiClient extends Emitter {
  #socket = null;
  #poll = 0;
  #retry = 0;
  #closed = false;

  constructor({ base = serverBase(location.pathname), storage = sessionStorage } = {}) {
    super();
    this.base = base;
    this.clientId = storage.getItem('weft.clientId') ?? newClientId();
    storage.setItem('weft.clientId', this.clientId);
  }

  url(path) {
    return `${this.base}/api${path}`;
  }

  async fetch(path, options = {}) {
    const response = await fetch(this.url(path), options);
    if (!response.ok) {
      let body = null;
      const text = await response.text();
      try { body = JSON.parse(text); } catch { body = text; }
      const message = body?.error?.message ?? body?.error ?? (typeof body === 'string' && body) ?? response.statusText;
      throw new ApiError(response.status, body, typeof message === 'string' ? message : JSON.stringify(message));
    }
    return response;
  }

  /** The JSON answer, or null when the body is empty (ComfyUI answers some POSTs with nothing). */
  async json(path, options) {
    const response = await this.fetch(path, options);
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  post(path, body) {
    return this.json(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  }

  // -- nodes, models, extensions ---------------------------------------------------------------
  getObjectInfo() { return this.json('/object_info'); }

  getExtensions() { return this.json('/extensions'); }

  getModels(folder) { return this.json(`/models/${encodeURIComponent(folder)}`); }

  // -- running ------------------------------------------------------------------------------------
  /** POST /prompt; a 400 rejects with ApiError whose body holds {error, node_errors}. */
  queuePrompt({ workflow, prompt, front = false, extraData = {} }) {
    const body = { client_id: this.clientId, extra_data: extraData };
    if (prompt) body.prompt = prompt;
    else body.workflow = workflow;
    if (front) body.front = true;
    return this.post('/prompt', body);
  }

  convertWorkflow(workflow) { return this.post('/workflow/convert', { workflow }); }

  getQueue() { return this.json('/queue'); }

  deleteFromQueue(promptIds) { return this.post('/queue', { delete: promptIds }); }

  clearQueue() { return this.post('/queue', { clear: true }); }

  getHistory(maxItems = 50) { return this.json(`/history?max_items=${maxItems}`); }

  deleteHistory(promptIds) { return this.post('/history', { delete: promptIds }); }

  interrupt(promptId) { return this.post('/interrupt', promptId ? { prompt_id: promptId } : {}); }

  // -- files --------------------------------------------------------------------------------------
  viewUrl({ filename, subfolder = '', type = 'output' }) {
    const q = new URLSearchParams({ filename, type, subfolder });
    return this.url(`/view?${q}`);
  }

  async uploadImage(file, { type = 'input', subfolder = '', overwrite = false } = {}) {
    const form = new FormData();
    form.append('image', file, file.name);
    form.append('type', type);
    form.append('subfolder', subfolder);
    if (overwrite) form.append('overwrite', 'true');
    return this.json('/upload/image', { method: 'POST', body: form });
  }

  listUserData(dir) { return this.json(`/userdata?dir=${encodeURIComponent(dir)}&recurse=true`); }

  async getUserData(path) {
    const response = await this.fetch(`/userdata/${encodeURIComponent(path)}`);
    return response.text();
  }

  saveUserData(path, text, { overwrite = true } = {}) {
    return this.fetch(`/userdata/${encodeURIComponent(path)}?overwrite=${overwrite}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: text,
    });
  }

  deleteUserData(path) {
    return this.fetch(`/userdata/${encodeURIComponent(path)}`, { method: 'DELETE' });
  }

  // -- websocket ------------------------------------------------------------------------------------
  connect() {
    this.#closed = false;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}${this.base}/ws?clientId=${this.clientId}`);
    socket.binaryType = 'arraybuffer';
    socket.addEventListener('open', () => {
      this.#retry = 0;
      this.#stopPolling();
      socket.send(JSON.stringify({ type: 'feature_flags', data: { supports_preview_metadata: true } }));
      this.emit('connection', { connected: true });
    });
    socket.addEventListener('message', (event) => this.#onMessage(event.data));
    socket.addEventListener('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.emit('connection', { connected: false });
      if (this.#closed) return;
      this.#startPolling();
      const delay = Math.min(10000, 500 * 2 ** this.#retry++);
      setTimeout(() => { if (!this.#closed) this.connect(); }, delay);
    });
    this.#socket = socket;
  }

  close() {
    this.#closed = true;
    this.#stopPolling();
    this.#socket?.close();
  }

  #onMessage(data) {
    if (typeof data === 'string') {
      let message;
      try { message = JSON.parse(data); } catch { return; }
      this.emit('message', message);
      return;
    }
    const frame = parseBinaryFrame(data);
    if (frame?.kind === 'preview') this.emit('preview', { blob: new Blob([frame.bytes], { type: frame.imageType }), meta: frame.meta });
    else if (frame?.kind === 'text') this.emit('progress-text', frame);
  }

  #startPolling() {
    if (this.#poll) return;
    this.#poll = setInterval(async () => {
      try {
        const status = await this.json('/prompt');
        this.emit('message', { type: 'status', data: { status: status } });
      } catch {
        // The server is away; the socket's reconnect loop will notice when it is back.
      }
    }, 1000);
  }

  #stopPolling() {
    clearInterval(this.#poll);
    this.#poll = 0;
  }
}
