// Workflow files: open (.json UI workflows of schema 0.4/1, PNGs that carry one), save to the server
// (userdata `workflows/<name>.json`), download, export the API prompt (converted by the server),
// drag-and-drop, and keeping the open workflow across reloads in localStorage.

import { readWorkflow, writeWorkflow, isApiPrompt } from './model/workflow-format.js';
import { readPngWorkflow } from './model/png-metadata.js';
import { emptyGraphData } from './model/graph-document.js';
import { buildDefaultWorkflow } from './model/default-workflow.js';
import { importApiPrompt } from './model/api-prompt-import.js';
import { WORKFLOW_DIR } from './ui/workflow-sidebar.js';
import { askText, confirmAction } from './ui/dialog.js';

const SESSION_KEY = 'weft.session';

function download(name, text, type = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

const safeName = (name) => name.replace(/\.json$/i, '').replace(/[\\/:*?"<>|]+/g, '_').trim();

export class WorkflowFiles {
  #saveTimer = 0;
  #savedSnapshot = null;

  constructor(app) {
    this.app = app;
    this.currentName = null;
    app.doc.on('change', () => this.#changed());
  }

  // -- the open workflow ------------------------------------------------------------------------
  /** The document as a schema-0.4 workflow, with the current camera. */
  workflow() {
    return writeWorkflow(this.app.graphData(), { ds: this.app.subgraphs.rootDs() });
  }

  get dirty() {
    return this.#savedSnapshot !== JSON.stringify(this.app.graphData());
  }

  #changed() {
    this.app.toolbar?.setName(this.currentName, this.dirty);
    clearTimeout(this.#saveTimer);
    this.#saveTimer = setTimeout(() => this.persistSession(), 400);
  }

  #markSaved(name) {
    this.currentName = name;
    this.#savedSnapshot = JSON.stringify(this.app.graphData());
    this.app.toolbar?.setName(name, false);
    this.persistSession();
  }

  persistSession() {
    try {
      localStorage.setItem(SESSION_KEY, JSON.stringify({ name: this.currentName, workflow: this.workflow() }));
    } catch {
      // Storage full or blocked: the session simply is not kept.
    }
  }

  /** Restore the last session; false when there is none (first visit). */
  restoreSession() {
    const text = localStorage.getItem(SESSION_KEY);
    if (!text) return false;
    try {
      const { name, workflow } = JSON.parse(text);
      this.#load(workflow);
      this.#markSaved(name ?? null);
      return true;
    } catch {
      return false;
    }
  }

  #load(json, outputs = {}) {
    const { data, ds } = readWorkflow(json);
    this.app.subgraphs.reset();
    this.app.doc.load(data);
    this.app.history.clear();
    this.app.selection.clear();
    this.app.execution.clearErrors();
    this.app.execution.setOutputs(outputs);
    if (ds) {
      this.app.view.viewport.ds = ds;
      this.app.view.requestDraw();
    } else {
      this.app.view.fitView(false);
    }
  }

  /** Open a UI workflow object (with a past job's `outputs` to show). Returns true on success;
   * tells the user why not otherwise. */
  loadWorkflowJson(json, { name = null, outputs = {} } = {}) {
    try {
      if (isApiPrompt(json)) return this.loadApiPrompt(json, { name });
      this.#load(json, outputs);
      this.#markSaved(name);
      const missing = [...new Set([...this.app.doc.nodes.values()].filter((n) => this.app.doc.defOf(n).missing).map((n) => n.type))];
      if (missing.length) this.app.ui.toast(`Node types this server does not have: ${missing.join(', ')}`, 'error');
      return true;
    } catch (error) {
      this.app.ui.toast(`Could not open the workflow: ${error.message}`, 'error');
      return false;
    }
  }

  /** An API prompt has no layout: lay it out as a new graph. */
  loadApiPrompt(prompt, { name = null } = {}) {
    this.newWorkflow({ empty: true });
    const result = importApiPrompt(this.app.doc, prompt);
    this.app.history.clear();
    this.app.view.fitView(false);
    this.#markSaved(name);
    if (result.skipped.length) this.app.ui.toast(`Node types this server does not have: ${result.skipped.join(', ')}`, 'error');
    for (const warning of result.warnings) this.app.ui.toast(warning, 'error');
    return result.added.length > 0;
  }

  newWorkflow({ empty }) {
    const { doc, history } = this.app;
    this.app.subgraphs.reset();
    doc.load(emptyGraphData());
    this.app.execution.setOutputs({});
    if (!empty) buildDefaultWorkflow(doc);
    history.clear();
    this.app.selection.clear();
    this.app.view.fitView(false);
    this.#markSaved(null);
  }

  // -- files on disk ----------------------------------------------------------------------------
  openDialog() {
    this.app.ui.chooseFile('.json,application/json,image/png', (file) => this.openFile(file));
  }

  async openFile(file) {
    const name = file.name.replace(/\.(json|png)$/i, '');
    if (file.type === 'image/png' || /\.png$/i.test(file.name)) {
      let found;
      try {
        found = await readPngWorkflow(await file.arrayBuffer());
      } catch (error) {
        this.app.ui.toast(`Could not read ${file.name}: ${error.message}`, 'error');
        return false;
      }
      if (found.workflow) return this.loadWorkflowJson(found.workflow, { name: null });
      if (found.prompt) return this.loadApiPrompt(found.prompt);
      this.app.ui.toast(`${file.name} carries no workflow.`, 'error');
      return false;
    }
    try {
      return this.loadWorkflowJson(JSON.parse(await file.text()), { name });
    } catch (error) {
      this.app.ui.toast(`Could not open ${file.name}: ${error.message}`, 'error');
      return false;
    }
  }

  download() {
    download(`${this.currentName ?? 'workflow'}.json`, JSON.stringify(this.workflow(), null, 2));
  }

  /** The API prompt, converted by the server (POST /workflow/convert). */
  async exportApi() {
    try {
      const { prompt, warnings } = await this.app.api.convertWorkflow(this.workflow());
      download(`${this.currentName ?? 'workflow'}_api.json`, JSON.stringify(prompt, null, 2));
      for (const warning of warnings ?? []) this.app.ui.toast(String(warning.message ?? warning), 'info');
    } catch (error) {
      this.app.ui.toast(`Export failed: ${error.message}`, 'error');
    }
  }

  // -- files on the server --------------------------------------------------------------------
  /** Save to the server. A new name that already exists asks before replacing that file. */
  async save({ askName = false } = {}) {
    let name = this.currentName;
    const asking = askName || !name;
    if (asking) {
      name = await askText(this.app.ui.root, { title: 'Save workflow as', value: name ?? 'my workflow', okLabel: 'Save' });
      if (!name) return false;
      name = safeName(name);
    }
    const path = `${WORKFLOW_DIR}/${name}.json`;
    const text = JSON.stringify(this.workflow());
    try {
      try {
        await this.app.api.saveUserData(path, text, { overwrite: !asking || name === this.currentName });
      } catch (error) {
        if (error.status !== 409) throw error;
        const replace = await confirmAction(this.app.ui.root, { title: `Replace “${name}”?`, message: 'A saved workflow already has this name.', okLabel: 'Replace' });
        if (!replace) return false;
        await this.app.api.saveUserData(path, text, { overwrite: true });
      }
    } catch (error) {
      this.app.ui.toast(`Could not save: ${error.message}`, 'error');
      return false;
    }
    this.#markSaved(name);
    this.app.ui.toast(`Saved “${name}”`, 'info');
    this.app.ui.refreshPanels();
    return true;
  }

  async openSaved(name) {
    try {
      const text = await this.app.api.getUserData(`${WORKFLOW_DIR}/${name}.json`);
      return this.loadWorkflowJson(JSON.parse(text), { name });
    } catch (error) {
      this.app.ui.toast(`Could not open “${name}”: ${error.message}`, 'error');
      return false;
    }
  }

  async deleteSaved(name) {
    try {
      await this.app.api.deleteUserData(`${WORKFLOW_DIR}/${name}.json`);
      if (this.currentName === name) this.#markSaved(null);
    } catch (error) {
      this.app.ui.toast(`Could not delete “${name}”: ${error.message}`, 'error');
    }
  }

  // -- drag and drop ----------------------------------------------------------------------------
  /** Dropping a file: an image without a workflow onto a LoadImage node uploads it there; else open it. */
  attachDrop(target) {
    target.addEventListener('dragover', (e) => {
      if ([...(e.dataTransfer?.types ?? [])].includes('Files')) {
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
      }
    });
    target.addEventListener('drop', async (e) => {
      const file = e.dataTransfer?.files?.[0];
      if (!file) return;
      e.preventDefault();
      const [gx, gy] = this.app.view.graphPoint(e);
      const hit = this.app.view.hitAt(gx, gy);
      const node = hit.nodeId != null ? this.app.doc.nodes.get(hit.nodeId) : null;
      const upload = node && this.app.doc.defOf(node).widgets.find((w) => w.kind === 'IMAGEUPLOAD');
      if (upload && file.type.startsWith('image/')) {
        const carries = file.type === 'image/png' && (await readPngWorkflow(await file.arrayBuffer()).catch(() => ({}))).workflow;
        if (!carries) {
          await this.app.uploadImage(node.id, upload.controls, file, upload.folder);
          return;
        }
      }
      await this.openFile(file);
    });
  }
}
