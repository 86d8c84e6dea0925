// The editor's document: nodes, links, groups and reroute points as plain data, with events.
// Every change goes through a method (here or in GraphCore) and emits "change"; the canvas
// redraws, the history snapshots. No DOM. The data keeps the litegraph workflow's own field names
// (see workflow-format.js), so reading and writing a file is a small translation.

import { GraphCore } from './graph-core.js';
import { subgraphDef } from './catalog.js';
import { rectInside } from './geometry.js';
import { normalizeWidgetValues } from './node-defs.js';

const clone = (value) => structuredClone(value);

export function newWorkflowId() {
  return globalThis.crypto?.randomUUID?.() ?? `wf-${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

export function emptyGraphData() {
  return {
    id: newWorkflowId(), revision: 0, nodes: [], links: [], groups: [], reroutes: [],
    state: { lastNodeId: 0, lastLinkId: 0, lastGroupId: 0, lastRerouteId: 0 },
    config: {}, extra: {}, definitions: { subgraphs: [] }, models: [],
  };
}

export class GraphDocument extends GraphCore {
  constructor(catalog) {
    super(catalog);
    this.#reset(emptyGraphData());
  }

  #reset(data) {
    this.id = data.id ?? newWorkflowId();
    this.revision = data.revision ?? 0;
    this.nodes = new Map(data.nodes.map((n) => [n.id, n]));
    this.links = new Map(data.links.map((l) => [l.id, l]));
    this.groups = new Map(data.groups.map((g) => [g.id, g]));
    this.reroutes = new Map(data.reroutes.map((r) => [r.id, r]));
    this.state = { lastNodeId: 0, lastLinkId: 0, lastGroupId: 0, lastRerouteId: 0, ...data.state };
    this.config = data.config ?? {};
    this.extra = data.extra ?? {};
    this.definitions = data.definitions ?? { subgraphs: [] };
    this.models = data.models ?? [];
    this.subgraphDefs = new Map((this.definitions.subgraphs ?? []).map((sg) => [sg.id, subgraphDef(sg)]));
  }

  /** Replace the whole content (open a file, undo, redo). */
  load(data) {
    this.#reset(clone(data));
    for (const node of this.nodes.values()) {
      const def = this.defFor(node.type);
      if (def && !def.virtual) node.widgets_values = normalizeWidgetValues(def, node.widgets_values);
    }
    this.emit('reset', this);
    for (const node of this.nodes.values()) this.emit('node:created', node);
    this.emit('change', { kind: 'reset' });
  }

  /** Everything, as plain data (the shape workflow-format.js writes). */
  toData() {
    return clone({
      id: this.id, revision: this.revision,
      nodes: [...this.nodes.values()], links: [...this.links.values()], groups: [...this.groups.values()],
      reroutes: [...this.reroutes.values()], state: this.state, config: this.config, extra: this.extra,
      definitions: this.definitions, models: this.models,
    });
  }

  /** Reroute points no link passes any more go with the link. */
  linkRemoved() {
    this.#dropOrphanReroutes();
  }

  // -- reroute points (native, schema-1 style: links pass through them) ------------------------
  /** The reroute ids a link passes, from its origin to its target. */
  reroutePath(link) {
    const path = [];
    let id = link.parentId;
    const seen = new Set();
    while (id != null && this.reroutes.has(id) && !seen.has(id)) {
      seen.add(id);
      path.unshift(id);
      id = this.reroutes.get(id).parentId;
    }
    return path;
  }

  /** Put a reroute point on `linkId`, on the segment that starts after reroute `afterId` (null: at the origin). */
  addReroute(linkId, pos, afterId = null) {
    const link = this.links.get(linkId);
    const path = this.reroutePath(link);
    const id = ++this.state.lastRerouteId;
    const reroute = { id, pos: [Math.round(pos[0]), Math.round(pos[1])] };
    if (afterId != null) reroute.parentId = afterId;
    const nextIndex = afterId == null ? 0 : path.indexOf(afterId) + 1;
    const next = path[nextIndex];
    if (next != null) this.reroutes.get(next).parentId = id;
    else link.parentId = id;
    this.reroutes.set(id, reroute);
    this.changed('reroute-added', { reroute });
    return reroute;
  }

  moveReroutes(ids, dx, dy) {
    for (const id of ids) {
      const r = this.reroutes.get(id);
      if (r) r.pos = [r.pos[0] + dx, r.pos[1] + dy];
    }
    this.changed('reroute-moved', { ids });
  }

  removeReroute(id) {
    const reroute = this.reroutes.get(id);
    if (!reroute) return;
    for (const other of this.reroutes.values()) if (other.parentId === id) setParent(other, reroute.parentId);
    for (const link of this.links.values()) if (link.parentId === id) setParent(link, reroute.parentId);
    this.reroutes.delete(id);
    this.changed('reroute-removed', { reroute });
  }

  /** Links whose path passes reroute `id`. */
  linksThrough(id) {
    return [...this.links.values()].filter((link) => this.reroutePath(link).includes(id));
  }

  #dropOrphanReroutes() {
    const used = new Set();
    for (const link of this.links.values()) for (const id of this.reroutePath(link)) used.add(id);
    for (const id of [...this.reroutes.keys()]) if (!used.has(id)) this.reroutes.delete(id);
  }

  // -- groups ---------------------------------------------------------------------------------
  addGroup(bounding, title = 'Group', color = '#3f789e') {
    const id = ++this.state.lastGroupId;
    const group = { id, title, bounding: bounding.map(Math.round), color, font_size: 24, flags: {} };
    this.groups.set(id, group);
    this.changed('group-added', { group });
    return group;
  }

  updateGroup(id, patch) {
    Object.assign(this.groups.get(id), patch);
    this.changed('group-changed', { id });
  }

  removeGroup(id) {
    this.groups.delete(id);
    this.changed('group-removed', { id });
  }

  /** Nodes lying wholly inside a group: they travel with it. */
  nodesInGroup(id) {
    const group = this.groups.get(id);
    return [...this.nodes.values()].filter((n) => rectInside(this.bounds(n), group.bounding)).map((n) => n.id);
  }

  reroutesInGroup(id) {
    const [x, y, w, h] = this.groups.get(id).bounding;
    return [...this.reroutes.values()].filter((r) => r.pos[0] >= x && r.pos[0] <= x + w && r.pos[1] >= y && r.pos[1] <= y + h).map((r) => r.id);
  }

  /** Groups wholly inside group `id` (nested groups move along). */
  groupsInGroup(id) {
    const outer = this.groups.get(id).bounding;
    return [...this.groups.values()].filter((g) => g.id !== id && rectInside(g.bounding, outer)).map((g) => g.id);
  }
}

function setParent(item, parentId) {
  if (parentId == null) delete item.parentId;
  else item.parentId = parentId;
}
