// Opening a subgraph instance to edit its definition on the canvas, and coming back. Each open
// level keeps the level above as data; saving and queueing always see the whole workflow, built by
// folding every open level back into its definition (rootData). Moving between levels starts a new
// undo history, and the execution marks follow the level shown (the execution state's scope).

import { readWorkflow } from './model/workflow-format.js';
import { definitionToWorkflow, workflowToDefinition } from './model/subgraph-io.js';
import { h } from './ui/dom.js';

const findDefinition = (definitions, id) => (definitions?.subgraphs ?? []).find((sg) => sg.id === id);

function withDefinition(definitions, updated) {
  const out = structuredClone(definitions ?? { subgraphs: [] });
  out.subgraphs = (out.subgraphs ?? []).map((sg) => (sg.id === updated.id ? updated : sg));
  return out;
}

export class SubgraphNavigator {
  #stack = [];

  constructor(app, breadcrumb) {
    this.app = app;
    this.breadcrumb = breadcrumb;
    this.#render();
  }

  get depth() { return this.#stack.length; }

  /** The instance path of the level shown ("" at the top, "5" or "5:3" inside). */
  get path() {
    return this.#stack.map((level) => level.instanceId).join(':');
  }

  canOpen(node) {
    return Boolean(node && findDefinition(this.app.doc.definitions, node.type));
  }

  open(nodeId) {
    const { doc } = this.app;
    const node = doc.nodes.get(nodeId);
    const definition = node && findDefinition(doc.definitions, node.type);
    if (!definition) return false;
    this.#stack.push({ data: doc.toData(), ds: this.app.view.viewport.ds, instanceId: nodeId, definitionId: definition.id, name: doc.titleOf(node) });
    doc.load(readWorkflow(definitionToWorkflow(definition, doc.definitions)).data);
    this.#entered();
    this.app.view.fitView(false);
    return true;
  }

  /** Back to the level above, with this level's edits in its definition. */
  close() {
    const level = this.#stack.pop();
    if (!level) return false;
    const { doc } = this.app;
    const inner = doc.toData();
    const data = level.data;
    data.definitions = withDefinition(inner.definitions, workflowToDefinition(inner, findDefinition(inner.definitions, level.definitionId)));
    doc.load(data);
    this.#entered();
    this.app.view.viewport.ds = level.ds;
    this.app.view.requestDraw();
    return true;
  }

  closeAll() {
    while (this.close());
  }

  /** Forget the open levels without folding them back (another workflow is being opened). */
  reset() {
    this.#stack = [];
    this.app.execution.setScope('');
    this.#render();
  }

  /** The whole workflow's data, as if every open level were closed. */
  rootData() {
    let current = this.app.doc.toData();
    for (let i = this.#stack.length - 1; i >= 0; i--) {
      const level = this.#stack[i];
      const data = structuredClone(level.data);
      data.definitions = withDefinition(current.definitions, workflowToDefinition(current, findDefinition(current.definitions, level.definitionId)));
      current = data;
    }
    return current;
  }

  /** The camera of the top level (what the file keeps). */
  rootDs() {
    return this.#stack[0]?.ds ?? this.app.view.viewport.ds;
  }

  #entered() {
    this.app.history.clear();
    this.app.selection.clear();
    this.app.execution.setScope(this.path);
    this.#render();
  }

  #render() {
    this.breadcrumb.hidden = this.#stack.length === 0;
    const crumbs = [h('button', { class: 'crumb', onclick: () => this.closeAll(), title: 'Back to the workflow' }, 'Workflow')];
    this.#stack.forEach((level, i) => {
      crumbs.push(h('span', { class: 'crumb-sep' }, '›'));
      const last = i === this.#stack.length - 1;
      crumbs.push(last ? h('span', { class: 'crumb current' }, level.name)
        : h('button', { class: 'crumb', onclick: () => { while (this.#stack.length > i + 1) this.close(); } }, level.name));
    });
    crumbs.push(h('button', { class: 'crumb-close', title: 'Close the subgraph (Escape)', onclick: () => this.close() }, 'Close'));
    this.breadcrumb.replaceChildren(...crumbs);
  }
}
