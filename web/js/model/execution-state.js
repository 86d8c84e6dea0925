// What the server says about running prompts (websocket messages, facts §1.6) and about rejected
// ones (`node_errors`, facts §1.3), kept as data the canvas draws from: the executing node, per-node
// and overall progress, live previews, result images per output node, validation and execution
// errors. Everything is kept under the server's node ids, which are strings and may be subgraph
// paths ("5:12"). The canvas asks through a scope: at the top level ("") node 5 shows what its
// subgraph's nodes did; inside instance 5 (scope "5:") node 12 means "5:12".

import { Emitter } from './events.js';

export const topLevelId = (id) => String(id).split(':')[0];

export class ExecutionState extends Emitter {
  constructor() {
    super();
    this.scope = '';
    this.queueRemaining = 0;
    this.promptId = null;
    this.executingNode = null;
    this.nodeProgress = new Map();
    this.done = new Set();
    this.totalNodes = 0;
    this.outputs = new Map();
    this.previews = new Map();
    this.nodeErrors = new Map();
    this.promptError = null;
    this.executionError = null;
    this.lastResult = null;
  }

  #changed(kind, detail = {}) {
    this.emit('change', { kind, ...detail });
  }

  // -- scope: which level of subgraphs the canvas shows -----------------------------------------
  /** Show the level inside subgraph instance path `path` ("" for the top, "5" or "5:12" inside). */
  setScope(path) {
    this.scope = path ? `${path}:` : '';
    this.#changed('scope');
  }

  /** The canvas node a server id belongs to at the current scope, or null if it is elsewhere. */
  viewIdOf(serverId) {
    const id = String(serverId);
    if (!id.startsWith(this.scope)) return null;
    return id.slice(this.scope.length).split(':')[0];
  }

  /** True when server id `serverId` is canvas node `viewId` or lies inside it. */
  #matches(serverId, viewId) {
    const want = `${this.scope}${viewId}`;
    const id = String(serverId);
    return id === want || id.startsWith(`${want}:`);
  }

  #lookup(map, viewId) {
    const exact = map.get(`${this.scope}${viewId}`);
    if (exact !== undefined) return exact;
    let found;
    for (const [id, value] of map) if (this.#matches(id, viewId)) found = value;
    return found;
  }

  // -- messages -------------------------------------------------------------------------------
  /** Feed one JSON websocket message {type, data}. */
  handle(type, data = {}) {
    switch (type) {
      case 'status':
        this.queueRemaining = data.status?.exec_info?.queue_remaining ?? this.queueRemaining;
        break;
      case 'execution_start':
        this.promptId = data.prompt_id;
        this.done = new Set();
        this.nodeProgress = new Map();
        this.totalNodes = 0;
        this.executionError = null;
        this.lastResult = null;
        break;
      case 'execution_cached':
        for (const id of data.nodes ?? []) this.done.add(String(id));
        break;
      case 'executing':
        if (this.executingNode != null) this.done.add(this.executingNode);
        this.executingNode = data.node == null ? null : String(data.display_node ?? data.node);
        if (data.node == null) this.#finish(data.prompt_id, 'success');
        break;
      case 'progress':
        this.nodeProgress.set(String(data.node), { value: data.value, max: data.max });
        break;
      case 'executed': {
        const id = String(data.display_node ?? data.node);
        this.outputs.set(id, data.output ?? {});
        this.previews.delete(id);
        this.done.add(String(data.node));
        this.#changed('output', { nodeId: id });
        break;
      }
      case 'execution_success':
        this.#finish(data.prompt_id, 'success');
        break;
      case 'execution_error':
        this.executionError = { ...data, nodeId: data.node_id == null ? null : String(data.node_id) };
        this.#finish(data.prompt_id, 'error');
        break;
      case 'execution_interrupted':
        this.#finish(data.prompt_id, 'interrupted');
        break;
      default:
        return;
    }
    this.#changed(type, { data });
  }

  #finish(promptId, result) {
    if (this.promptId == null && this.lastResult) return;
    this.executingNode = null;
    this.nodeProgress = new Map();
    this.previews = new Map();
    this.lastResult = { promptId: promptId ?? this.promptId, result };
    this.promptId = null;
  }

  /** A live preview frame (a Blob) for the node running now, or for `nodeId` when the frame says. */
  setPreview(blob, nodeId = null) {
    const id = nodeId != null ? String(nodeId) : this.executingNode;
    if (id == null) return;
    this.previews.set(id, blob);
    this.#changed('preview', { nodeId: id });
  }

  /** A 400 from POST /prompt: `{error, node_errors}`. */
  setPromptErrors(body) {
    this.promptError = body?.error ?? null;
    this.nodeErrors = new Map(Object.entries(body?.node_errors ?? {}).map(([id, entry]) => [String(id), { errors: entry.errors ?? [], class_type: entry.class_type }]));
    this.#changed('prompt-errors');
  }

  clearErrors() {
    this.promptError = null;
    this.executionError = null;
    this.nodeErrors = new Map();
    this.#changed('errors-cleared');
  }

  /** Forget every node's results (another workflow was opened), or show a past job's. */
  setOutputs(outputs = {}) {
    this.outputs = new Map(Object.entries(outputs).map(([id, ui]) => [String(id), ui]));
    this.previews = new Map();
    this.#changed('outputs-replaced');
  }

  setTotalNodes(count) {
    this.totalNodes = count;
    this.#changed('total');
  }

  // -- what a canvas node shows -------------------------------------------------------------------
  /** The `ui` output of canvas node `viewId` (or of a node inside it). */
  outputFor(viewId) {
    return this.#lookup(this.outputs, viewId);
  }

  previewFor(viewId) {
    return this.#lookup(this.previews, viewId);
  }

  /** {value, max} of the sampler steps running in canvas node `viewId`, or null. */
  progressFor(viewId) {
    if (this.executingNode == null || !this.#matches(this.executingNode, viewId)) return null;
    return this.nodeProgress.get(this.executingNode) ?? null;
  }

  /** Error messages for one input of canvas node `viewId` (validation), keyed by input name. */
  inputErrors(viewId) {
    const out = new Map();
    for (const error of this.nodeErrors.get(`${this.scope}${viewId}`)?.errors ?? []) {
      const name = error.extra_info?.input_name;
      if (name) out.set(name, [...(out.get(name) ?? []), error.message]);
    }
    return out;
  }

  /** Every validation error of canvas node `viewId` and of the nodes inside it. */
  errorsFor(viewId) {
    const out = [];
    for (const [id, entry] of this.nodeErrors) if (this.#matches(id, viewId)) out.push(...entry.errors);
    return out;
  }

  executionErrorFor(viewId) {
    const ex = this.executionError;
    return ex?.nodeId != null && this.#matches(ex.nodeId, viewId) ? ex : null;
  }

  nodeStatus(viewId) {
    if (this.executingNode != null && this.#matches(this.executingNode, viewId)) return 'running';
    if (this.errorsFor(viewId).length || this.executionErrorFor(viewId)) return 'error';
    return null;
  }

  /** Fraction of the prompt done, 0..1 (null when idle); the running node's steps count in. */
  overallProgress() {
    if (this.promptId == null) return null;
    const total = Math.max(this.totalNodes, this.done.size + (this.executingNode ? 1 : 0), 1);
    const running = this.executingNode ? this.nodeProgress.get(this.executingNode) : null;
    const partial = running && running.max ? running.value / running.max : 0;
    return Math.min(1, (this.done.size + partial) / total);
  }
}
