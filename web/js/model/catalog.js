// The node catalog: every node type the editor can place — server nodes from /object_info, the
// frontend-only types, and subgraph definitions carried by the open workflow — and the
// definition behind any node in a document, including nodes whose type nobody knows any more.

import { parseNodeDef } from './node-defs.js';
import { VIRTUAL_NODE_DEFS } from './virtual-nodes.js';
import { ANY, typeName } from './types.js';

export class NodeCatalog {
  #defs = new Map();
  #customWidgets;

  /**
   * @param {object} objectInfo  the /object_info answer
   * @param {{customWidgets?: Map<string, object>, beforeRegister?: (def) => void}} options
   */
  constructor(objectInfo = {}, { customWidgets = new Map(), beforeRegister = null } = {}) {
    this.#customWidgets = customWidgets;
    for (const [name, info] of Object.entries(objectInfo)) {
      const def = parseNodeDef(name, info, customWidgets);
      beforeRegister?.(def, info);
      this.#defs.set(name, def);
    }
    for (const def of Object.values(VIRTUAL_NODE_DEFS)) if (!this.#defs.has(def.name)) this.#defs.set(def.name, def);
  }

  get customWidgets() { return this.#customWidgets; }

  has(type) { return this.#defs.has(type); }

  get(type) { return this.#defs.get(type) ?? null; }

  /** All placeable definitions (subgraph definitions come from the document). */
  all() { return [...this.#defs.values()]; }

  /** Replace a server node's definition, e.g. after the model lists were refreshed. */
  update(objectInfo) {
    for (const [name, info] of Object.entries(objectInfo)) {
      this.#defs.set(name, parseNodeDef(name, info, this.#customWidgets));
    }
  }
}

/** A definition for a subgraph instance, from its `definitions.subgraphs[]` entry. */
export function subgraphDef(subgraph) {
  const sockets = (subgraph.inputs ?? []).map((io) => ({ name: io.name ?? io.label ?? '', type: typeName(io.type ?? ANY), optional: false }));
  return {
    name: subgraph.id,
    displayName: subgraph.name || 'Subgraph',
    category: subgraph.category || 'subgraph',
    description: subgraph.description ?? '',
    pythonModule: 'subgraph',
    outputNode: false, deprecated: false, experimental: false, virtual: false,
    subgraph: true,
    inputs: sockets,
    sockets,
    widgets: [],
    outputs: (subgraph.outputs ?? []).map((io) => ({ name: io.name ?? io.label ?? '', type: typeName(io.type ?? ANY), isList: false })),
  };
}

/** A stand-in definition for a node whose type is unknown: keep what the file says, edit nothing. */
export function missingDef(node) {
  const widgetValues = Array.isArray(node.widgets_values) ? node.widgets_values : [];
  const sockets = (node.inputs ?? []).filter((i) => !i.widget).map((i) => ({ name: i.name, type: typeName(i.type ?? ANY), optional: false }));
  return {
    name: node.type,
    displayName: node.type,
    category: '',
    description: `No node type "${node.type}" on this server.`,
    pythonModule: '', outputNode: false, deprecated: false, experimental: false, virtual: false,
    missing: true,
    inputs: sockets,
    sockets,
    widgets: widgetValues.map((value, i) => ({ name: `value ${i + 1}`, kind: 'UNKNOWN', default: value, options: {}, socketType: null })),
    outputs: (node.outputs ?? []).map((o) => ({ name: o.name, type: typeName(o.type ?? ANY), isList: false })),
  };
}
