// The editor: builds the pieces in order — API client, extensions, node catalog, document and
// history, canvas and input, panels — and owns the few actions that span several of them
// (add-and-connect, queueing, uploads). `window.weft` is this object.

import { ApiClient, ApiError, besideAnotherFrontEnd } from './api/client.js';
import { ExtensionHost } from './extensions.js';
import { NodeCatalog } from './model/catalog.js';
import { GraphDocument } from './model/graph-document.js';
import { History } from './model/history.js';
import { ExecutionState } from './model/execution-state.js';
import { applyControlsAfterQueue } from './model/seed-control.js';
import { withTextReplacements } from './model/text-replacements.js';
import { TITLE_H, MEDIA_AREA_H, nodeLayout } from './model/geometry.js';
import { CanvasView } from './view/canvas.js';
import { DomWidgets } from './view/dom-widgets.js';
import { Selection } from './view/selection.js';
import { Interaction } from './view/interaction.js';
import { builtinWidgetKinds } from './widgets/registry.js';
import { createCommands } from './commands.js';
import { WorkflowFiles } from './files.js';
import { EditorUi } from './ui/ui.js';
import { CanvasMenus } from './ui/menus.js';
import { Toolbar } from './ui/toolbar.js';
import { QueuePanel } from './ui/queue-panel.js';
import { WorkflowSidebar } from './ui/workflow-sidebar.js';
import { SubgraphNavigator } from './subgraphs.js';

export class WeftApp {
  constructor(root) {
    this.root = root;
    this.api = new ApiClient();
    this.extensions = new ExtensionHost(this);
    this.execution = new ExecutionState();
    this.ready = false;
  }

  /** For extensions (also reachable as `app.registerExtension` from /scripts/app.js). */
  registerExtension(extension) {
    this.extensions.register(extension);
  }

  async start() {
    const [objectInfo, extensionUrls] = await Promise.all([this.api.getObjectInfo(), besideAnotherFrontEnd(location.pathname) ? [] : this.api.getExtensions().catch(() => [])]);
    await this.extensions.load(extensionUrls);
    const custom = this.extensions.customWidgets();
    this.catalog = new NodeCatalog(objectInfo, { customWidgets: custom, beforeRegister: (def, info) => this.extensions.beforeRegisterNodeDef(def, info) });
    this.widgetKinds = new Map([...builtinWidgetKinds(), ...custom]);
    this.doc = new GraphDocument(this.catalog);
    this.doc.on('node:created', (node) => this.extensions.nodeCreated(node));
    this.history = new History(this.doc);
    this.selection = new Selection();
    this.doc.on('reset', () => this.selection.prune(this.doc));

    const canvas = this.root.querySelector('#canvas');
    this.view = new CanvasView({ canvas, doc: this.doc, selection: this.selection, execution: this.execution, widgetKinds: this.widgetKinds, api: this.api });
    this.domWidgets = new DomWidgets({ layer: this.root.querySelector('#dom-layer'), view: this.view, doc: this.doc, history: this.history });
    this.view.onDrawn = () => this.domWidgets.sync();

    this.ui = new EditorUi(this.root, { getDefs: () => this.placeableDefs() });
    this.subgraphs = new SubgraphNavigator(this, this.root.querySelector('#breadcrumb'));
    this.commands = createCommands(this);
    this.menus = new CanvasMenus(this);
    this.files = new WorkflowFiles(this);
    this.interaction = new Interaction(this);
    this.toolbar = new Toolbar(this.root.querySelector('#toolbar'), this);
    const queueRoot = this.root.querySelector('#queue-panel');
    const workflowsRoot = this.root.querySelector('#workflow-panel');
    this.ui.addPanel('queue', queueRoot, new QueuePanel(queueRoot, this));
    this.ui.addPanel('workflows', workflowsRoot, new WorkflowSidebar(workflowsRoot, this));
    this.files.attachDrop(canvas.parentElement);

    this.#wireExecution();
    if (!this.files.restoreSession()) this.files.newWorkflow({ empty: false });
    this.api.connect();
    await this.extensions.setup();
    window.addEventListener('focus', () => this.refreshNodeDefs({ quiet: true }));
    this.ready = true;
    this.root.dataset.ready = 'true';
  }

  // -- node definitions ---------------------------------------------------------------------------
  placeableDefs() {
    return [...this.catalog.all(), ...this.doc.subgraphDefs.values()];
  }

  /** The whole workflow as document data, whichever subgraph level the canvas shows. */
  graphData() {
    return this.subgraphs.rootData();
  }

  #lastRefresh = 0;

  /** Fetch /object_info again so combo lists (models, input images) show what the server has now. */
  async refreshNodeDefs({ quiet = false } = {}) {
    if (quiet && Date.now() - this.#lastRefresh < 10000) return;
    this.#lastRefresh = Date.now();
    try {
      this.catalog.update(await this.api.getObjectInfo());
      this.view.requestDraw();
      if (!quiet) this.ui.toast('Node definitions refreshed', 'info');
    } catch (error) {
      if (!quiet) this.ui.toast(`Could not refresh: ${error.message}`, 'error');
    }
  }

  // -- editing actions ------------------------------------------------------------------------------
  addNodeAt(type, pos) {
    const node = this.history.run(() => this.doc.addNode(type, [pos[0], pos[1] + TITLE_H]));
    this.selection.set({ nodes: [node.id] });
    this.view.bringToFront([node.id]);
    return node;
  }

  /** Add `type` where a dragged link was dropped and connect it to that link's end. */
  addNodeAndConnect(type, pos, from) {
    const { doc } = this;
    const node = this.history.run(() => {
      const added = doc.addNode(type, [pos[0], pos[1] + TITLE_H]);
      if (from.kind === 'input') added.pos = [Math.round(pos[0] - added.size[0]), added.pos[1]];
      try {
        if (from.kind === 'output') {
          const slot = added.inputs.findIndex((_, s) => doc.canConnect(from.nodeId, from.slot, added.id, s).ok);
          if (slot >= 0) doc.connect(from.nodeId, from.slot, added.id, slot, { parentId: from.rerouteId });
          else {
            const widget = doc.defOf(added).widgets.find((w) => doc.canConnectToWidget(from.nodeId, from.slot, added.id, w.name).ok);
            if (widget) doc.connectToWidget(from.nodeId, from.slot, added.id, widget.name);
          }
        } else {
          const target = doc.nodes.get(from.nodeId);
          const input = target.inputs[from.slot];
          const slot = added.outputs.findIndex((_, s) => doc.canConnect(added.id, s, from.nodeId, from.slot).ok);
          if (slot >= 0) doc.connect(added.id, slot, from.nodeId, from.slot);
          else if (added.type === 'PrimitiveNode' && input?.widget) doc.connectToWidget(added.id, 0, from.nodeId, input.widget.name);
        }
      } catch (error) {
        this.ui.toast(`Link refused: ${error.message}`, 'error');
      }
      return added;
    });
    this.selection.set({ nodes: [node.id] });
    this.view.bringToFront([node.id]);
    return node;
  }

  /** "Convert widget to input": a Primitive now holds the value and drives the widget through a link. */
  convertWidgetToInput(nodeId, widgetName) {
    const node = this.doc.nodes.get(nodeId);
    const row = this.view.layoutOf(node).widgets.find((w) => this.doc.defOf(node).widgets[w.index].name === widgetName);
    this.history.run(() => {
      const primitive = this.doc.addNode('PrimitiveNode', [node.pos[0] - 280, node.pos[1] + (row?.y ?? 0)]);
      primitive.title = widgetName;
      this.doc.connectToWidget(primitive.id, 0, nodeId, widgetName);
      primitive.size = [240, nodeLayout(primitive, this.doc.defOf(primitive)).contentBottom];
    });
  }

  editNodeTitle(nodeId) {
    const node = this.doc.nodes.get(nodeId);
    const r = this.view.nodeClientRect(nodeId);
    this.ui.editInline({
      rect: { x: r.x + 24 * this.view.viewport.scale, y: r.y, w: Math.max(r.w - 30, 120), h: TITLE_H * this.view.viewport.scale },
      value: this.doc.titleOf(node),
      commit: (text) => this.history.run(() => this.doc.setTitle(nodeId, text.trim())),
    });
  }

  editGroupTitle(groupId) {
    const group = this.doc.groups.get(groupId);
    const a = this.view.clientPoint(group.bounding[0], group.bounding[1]);
    this.ui.editInline({
      rect: { x: a.x, y: a.y, w: group.bounding[2] * this.view.viewport.scale, h: ((group.font_size ?? 24) + 12) * this.view.viewport.scale },
      value: group.title,
      commit: (text) => this.history.run(() => this.doc.updateGroup(groupId, { title: text.trim() || 'Group' })),
    });
  }

  openNodeImages(nodeId, index) {
    const images = this.execution.outputFor(nodeId)?.images ?? [];
    if (images.length) this.ui.viewer.open(images.map((img) => this.api.viewUrl(img)), index);
  }

  openSearchAtCenter() {
    const rect = this.view.canvas.getBoundingClientRect();
    const pos = this.view.viewport.toGraph(this.view.width / 2, this.view.height / 2);
    this.ui.openSearch({ clientX: rect.left + this.view.width / 2 - 200, clientY: rect.top + 80, graphPos: pos, onPick: (def) => this.addNodeAt(def.name, pos) });
  }

  async uploadImage(nodeId, widgetIndex, file, folder = 'input') {
    try {
      const result = await this.api.uploadImage(file, { type: folder });
      const value = result.subfolder ? `${result.subfolder}/${result.name}` : result.name;
      const def = this.doc.defOf(this.doc.nodes.get(nodeId)).widgets[widgetIndex];
      if (def.values && !def.values.includes(value)) def.values.push(value);
      this.history.run(() => this.doc.setWidgetValue(nodeId, widgetIndex, value));
    } catch (error) {
      this.ui.toast(`Upload failed: ${error.message}`, 'error');
    }
  }

  // -- running ------------------------------------------------------------------------------------
  #wireExecution() {
    this.api.on('message', ({ type, data }) => {
      this.execution.handle(type, data);
      if (type === 'execution_start') this.#countPromptNodes(data.prompt_id);
      if (type === 'execution_error') this.ui.toast(`${data.node_type ?? 'A node'} failed: ${data.exception_message ?? 'error'}`, 'error');
    });
    this.api.on('preview', ({ blob, meta }) => this.execution.setPreview(blob, meta?.display_node_id ?? meta?.node_id ?? null));
    this.execution.on('change', ({ kind, nodeId }) => {
      const viewId = kind === 'output' || kind === 'preview' ? this.execution.viewIdOf(nodeId) : null;
      if (viewId != null) this.#ensureMediaRoom(viewId);
    });
  }

  async #countPromptNodes(promptId) {
    try {
      const queue = await this.api.getQueue();
      const item = (queue.queue_running ?? []).find((entry) => entry[1] === promptId);
      if (item) this.execution.setTotalNodes(Object.keys(item[2] ?? {}).length);
    } catch {
      // Without the count, overall progress falls back to the nodes seen so far.
    }
  }

  /** Grow a node whose pictures would not fit (not an undo step: the server made the change). */
  #ensureMediaRoom(nodeId) {
    const node = this.doc.nodes.get(Number(nodeId));
    if (!node || node.flags?.collapsed) return;
    const bottom = nodeLayout(node, this.doc.defOf(node)).contentBottom;
    const output = this.execution.outputFor(nodeId);
    if (output?.text && !output.images) {
      const lines = output.text.flatMap((t) => String(t).split('\n')).length;
      if (node.size[1] - bottom < lines * 16 + 8) this.doc.setNodeSize(node.id, [node.size[0], bottom + Math.min(lines, 12) * 16 + 12]);
      return;
    }
    if (node.size[1] - bottom < MEDIA_AREA_H * 0.8) this.doc.setNodeSize(node.id, [Math.max(node.size[0], 240), bottom + MEDIA_AREA_H]);
  }

  /** Queue the workflow `batch` times; seeds move after each as their control says. */
  async queue({ front = false, batch = this.toolbar.batchCount } = {}) {
    this.execution.clearErrors();
    for (let i = 0; i < batch; i++) {
      const workflow = this.files.workflow();
      // The server converts the copy with %date:…% / %Node.widget% filled in; the image keeps the original.
      const widgetNames = (node) => (this.doc.nodes.get(node.id) ? this.doc.defOf(this.doc.nodes.get(node.id)).widgets.map((w) => w.name) : []);
      const sent = withTextReplacements(workflow, widgetNames);
      try {
        const result = await this.api.queuePrompt({ workflow: sent, front, extraData: { extra_pnginfo: { workflow } } });
        if (result?.node_errors && Object.keys(result.node_errors).length) this.execution.setPromptErrors({ node_errors: result.node_errors });
      } catch (error) {
        this.#rejected(error);
        return false;
      }
      this.history.run(() => applyControlsAfterQueue(this.doc));
    }
    this.ui.refreshPanels();
    return true;
  }

  #rejected(error) {
    if (error instanceof ApiError && error.body && typeof error.body === 'object') {
      this.execution.setPromptErrors(error.body);
      const count = Object.keys(error.body.node_errors ?? {}).length;
      const message = error.body.error?.message ?? error.message;
      const details = error.body.error?.details ? ` (${error.body.error.details})` : '';
      this.ui.toast(count ? `${message}: ${count === 1 ? '1 node needs' : `${count} nodes need`} attention` : `${message}${details}`, 'error');
    } else {
      this.ui.toast(`Could not queue: ${error.message}`, 'error');
    }
  }

  /** Queue a past job again exactly as it ran (its API prompt). */
  async requeue(entry) {
    const [, , prompt, extraData] = entry.prompt;
    try {
      await this.api.queuePrompt({ prompt, extraData: extraData ?? {} });
      this.ui.refreshPanels();
    } catch (error) {
      this.#rejected(error);
    }
  }

  async interrupt(promptId) {
    try {
      await this.api.interrupt(promptId);
    } catch (error) {
      this.ui.toast(`Interrupt failed: ${error.message}`, 'error');
    }
  }
}
