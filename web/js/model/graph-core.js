// The graph at the heart of the document: nodes, their widgets and the links between them, with
// the rules a link must follow (socket types, no loops, what a Primitive or a Reroute node may
// carry). Plain data and events, no DOM. GraphDocument adds groups, reroute points and whole-file
// load/save on top.

import { Emitter } from './events.js';
import { missingDef } from './catalog.js';
import { primitiveDef } from './primitives.js';
import { subgraphPanelDef, isSubgraphPanel } from './subgraph-io.js';
import { defaultNodeSize, nodeBounds } from './geometry.js';
import { ANY, typesCompatible } from './types.js';

const clone = (value) => structuredClone(value);

export class GraphCore extends Emitter {
  constructor(catalog) {
    super();
    this.catalog = catalog;
    this.nodes = new Map();
    this.links = new Map();
    this.state = { lastNodeId: 0, lastLinkId: 0, lastGroupId: 0, lastRerouteId: 0 };
    this.subgraphDefs = new Map();
  }

  changed(kind, detail = {}) {
    this.emit('change', { kind, ...detail });
  }

  // -- definitions ----------------------------------------------------------------------------
  defOf(node) {
    if (node.type === 'PrimitiveNode') return primitiveDef(node, () => this.#firstTarget(node));
    if (isSubgraphPanel(node)) return subgraphPanelDef(node);
    return this.catalog.get(node.type) ?? this.subgraphDefs.get(node.type) ?? missingDef(node);
  }

  #firstTarget(node) {
    const linkId = node.outputs[0]?.links?.[0];
    const link = this.links.get(linkId);
    const target = link && this.nodes.get(link.target_id);
    if (!target) return null;
    return { node: target, input: target.inputs[link.target_slot], def: this.defOf(target) };
  }

  defFor(type) {
    return this.catalog.get(type) ?? this.subgraphDefs.get(type) ?? null;
  }

  // -- nodes ----------------------------------------------------------------------------------
  addNode(type, pos, { title, widgetsValues, size } = {}) {
    const def = this.defFor(type);
    if (!def) throw new Error(`unknown node type ${type}`);
    const id = ++this.state.lastNodeId;
    const node = {
      id, type, pos: [Math.round(pos[0]), Math.round(pos[1])], size: [0, 0], flags: {}, order: this.nodes.size, mode: 0,
      inputs: def.sockets.map((s) => ({ name: s.name, type: s.type, link: null })),
      outputs: def.outputs.map((o, i) => ({ name: o.name, type: o.type, links: [], slot_index: i })),
      properties: { 'Node name for S&R': type },
      widgets_values: widgetsValues ? clone(widgetsValues) : def.widgets.map((w) => clone(w.default)),
    };
    if (title) node.title = title;
    node.size = size ? [...size] : defaultNodeSize(node, def);
    this.nodes.set(id, node);
    this.emit('node:created', node);
    this.changed('node-added', { node });
    return node;
  }

  /** Insert a node exactly as given (paste, file import); ids must be free. */
  insertNode(node) {
    this.nodes.set(node.id, node);
    this.state.lastNodeId = Math.max(this.state.lastNodeId, node.id);
    this.emit('node:created', node);
    this.changed('node-added', { node });
  }

  removeNodes(ids) {
    for (const id of ids) {
      const node = this.nodes.get(id);
      if (!node || isSubgraphPanel(node)) continue; // a subgraph's input/output panels stay
      for (const input of node.inputs) if (input.link != null) this.removeLink(input.link);
      for (const output of node.outputs) for (const linkId of [...(output.links ?? [])]) this.removeLink(linkId);
      this.nodes.delete(id);
      this.changed('node-removed', { node });
    }
  }

  moveNodes(ids, dx, dy) {
    for (const id of ids) {
      const node = this.nodes.get(id);
      if (node) node.pos = [node.pos[0] + dx, node.pos[1] + dy];
    }
    this.changed('node-moved', { ids });
  }

  setNodeSize(id, size) {
    const node = this.nodes.get(id);
    node.size = [Math.max(40, Math.round(size[0])), Math.max(20, Math.round(size[1]))];
    this.changed('node-resized', { node });
  }

  setTitle(id, title) {
    const node = this.nodes.get(id);
    const def = this.defOf(node);
    if (!title || title === def.displayName) delete node.title;
    else node.title = title;
    this.changed('node-title', { node });
  }

  titleOf(node) {
    return node.title ?? this.defOf(node).displayName;
  }

  /** Mode 0 = always, 2 = muted (never runs), 4 = bypassed (inputs pass through). Toggles back to 0. */
  toggleMode(ids, mode) {
    const nodes = ids.map((id) => this.nodes.get(id)).filter(Boolean);
    const allSet = nodes.every((n) => n.mode === mode);
    for (const node of nodes) node.mode = allSet ? 0 : mode;
    this.changed('node-mode', { ids });
  }

  toggleCollapsed(ids) {
    const nodes = ids.map((id) => this.nodes.get(id)).filter(Boolean);
    const allCollapsed = nodes.every((n) => n.flags?.collapsed);
    for (const node of nodes) {
      node.flags = { ...node.flags };
      if (allCollapsed) delete node.flags.collapsed;
      else node.flags.collapsed = true;
    }
    this.changed('node-collapsed', { ids });
  }

  setNodeColor(ids, color, bgcolor) {
    for (const id of ids) {
      const node = this.nodes.get(id);
      if (!node) continue;
      if (color) Object.assign(node, { color, bgcolor });
      else { delete node.color; delete node.bgcolor; }
    }
    this.changed('node-color', { ids });
  }

  bounds(node) {
    return nodeBounds(node, this.defOf(node));
  }

  // -- widgets --------------------------------------------------------------------------------
  setWidgetValue(nodeId, index, value) {
    const node = this.nodes.get(nodeId);
    if (!Array.isArray(node.widgets_values)) node.widgets_values = [];
    node.widgets_values[index] = value;
    if (node.type === 'PrimitiveNode' && index === 0) this.#mirrorPrimitive(node);
    this.changed('widget', { node, index });
  }

  /** A primitive's value is copied into every widget it drives, as ComfyUI does before queueing. */
  #mirrorPrimitive(node) {
    for (const linkId of node.outputs[0]?.links ?? []) {
      const link = this.links.get(linkId);
      const target = link && this.nodes.get(link.target_id);
      const widgetName = target?.inputs[link.target_slot]?.widget?.name;
      const index = widgetName ? this.defOf(target).widgets.findIndex((w) => w.name === widgetName) : -1;
      if (index >= 0) target.widgets_values[index] = clone(node.widgets_values[0]);
    }
  }

  /** The input slot that drives widget `widgetName`, or -1. */
  widgetInputSlot(node, widgetName) {
    return node.inputs.findIndex((i) => i.widget?.name === widgetName);
  }

  isWidgetLinked(node, widgetName) {
    const slot = this.widgetInputSlot(node, widgetName);
    return slot >= 0 && node.inputs[slot].link != null;
  }

  /** Give widget `widgetName` an input socket (so a link can drive it); returns the slot. */
  ensureWidgetInput(nodeId, widgetName) {
    const node = this.nodes.get(nodeId);
    const existing = this.widgetInputSlot(node, widgetName);
    if (existing >= 0) return existing;
    const widget = this.defOf(node).widgets.find((w) => w.name === widgetName);
    if (!widget?.socketType) throw new Error(`${widgetName} cannot become an input`);
    node.inputs.push({ name: widgetName, type: widget.socketType, link: null, widget: { name: widgetName } });
    return node.inputs.length - 1;
  }

  /** Drop the socket of a widget input (its link first); later slots shift down. */
  removeWidgetInput(nodeId, widgetName) {
    const node = this.nodes.get(nodeId);
    const slot = this.widgetInputSlot(node, widgetName);
    if (slot < 0) return;
    if (node.inputs[slot].link != null) this.removeLink(node.inputs[slot].link, { keepWidgetInput: true });
    node.inputs.splice(slot, 1);
    for (const link of this.links.values()) {
      if (link.target_id === node.id && link.target_slot > slot) link.target_slot -= 1;
    }
    this.changed('widget-input', { node });
  }

  // -- links ----------------------------------------------------------------------------------
  /** The type an output really carries: a Reroute node passes on what feeds it. */
  outputType(node, slot) {
    if (node.type === 'Reroute') {
      const link = this.links.get(node.inputs[0]?.link);
      const origin = link && this.nodes.get(link.origin_id);
      return origin ? this.outputType(origin, link.origin_slot) : ANY;
    }
    return node.outputs[slot]?.type ?? ANY;
  }

  /** The type an input accepts: an unfed Reroute accepts what its outputs lead to. */
  inputType(node, slot) {
    if (node.type === 'Reroute') {
      const targets = (node.outputs[0]?.links ?? []).map((id) => this.links.get(id)).filter(Boolean);
      for (const link of targets) {
        const target = this.nodes.get(link.target_id);
        const type = target && this.inputType(target, link.target_slot);
        if (type && type !== ANY) return type;
      }
      return ANY;
    }
    return node.inputs[slot]?.type ?? ANY;
  }

  /** True if `fromId` is reachable going upstream from `toId` (a link to→from would loop). */
  #isUpstream(fromId, toId) {
    const seen = new Set();
    const stack = [toId];
    while (stack.length) {
      const id = stack.pop();
      if (id === fromId) return true;
      if (seen.has(id)) continue;
      seen.add(id);
      for (const input of this.nodes.get(id)?.inputs ?? []) {
        const link = this.links.get(input.link);
        if (link) stack.push(link.origin_id);
      }
    }
    return false;
  }

  /** Can output (originId, originSlot) feed input (targetId, targetSlot)? `{ok, reason}`. */
  canConnect(originId, originSlot, targetId, targetSlot) {
    const target = this.nodes.get(targetId);
    const input = target?.inputs[targetSlot];
    if (!input) return { ok: false, reason: 'no such socket' };
    return this.#verdict(originId, originSlot, target, input, this.inputType(target, targetSlot));
  }

  /** Can output (originId, originSlot) drive widget `widgetName` of node `targetId`? */
  canConnectToWidget(originId, originSlot, targetId, widgetName) {
    const target = this.nodes.get(targetId);
    if (!target) return { ok: false, reason: 'no such node' };
    const slot = this.widgetInputSlot(target, widgetName);
    if (slot >= 0) return this.canConnect(originId, originSlot, targetId, slot);
    const widget = this.defOf(target).widgets.find((w) => w.name === widgetName);
    if (!widget?.socketType || widget.frontendOnly) return { ok: false, reason: `${widgetName} cannot take a link` };
    return this.#verdict(originId, originSlot, target, { name: widgetName, widget: { name: widgetName } }, widget.socketType);
  }

  #verdict(originId, originSlot, target, input, inType) {
    const origin = this.nodes.get(originId);
    if (!origin || !origin.outputs[originSlot]) return { ok: false, reason: 'no such socket' };
    if (originId === target.id) return { ok: false, reason: 'a node cannot feed itself' };
    if (origin.type === 'PrimitiveNode' && !input.widget) return { ok: false, reason: 'a Primitive can only drive widget inputs' };
    const outType = this.outputType(origin, originSlot);
    if (!typesCompatible(outType, inType)) return { ok: false, reason: `${outType} cannot go into ${inType}` };
    if (origin.type === 'PrimitiveNode' && origin.outputs[0].links?.length) {
      const first = this.#firstTarget(origin);
      const a = first && this.defOf(first.node).widgets.find((w) => w.name === first.input.widget?.name);
      const b = this.defOf(target).widgets.find((w) => w.name === input.widget.name);
      if (a && b && a.kind !== b.kind) return { ok: false, reason: `this Primitive drives a ${a.kind}, not a ${b.kind}` };
    }
    if (this.#isUpstream(target.id, originId)) return { ok: false, reason: 'that link would make a loop' };
    return { ok: true, reason: '' };
  }

  /** Link an output to an input, replacing what fed that input. Returns the link, or throws. */
  connect(originId, originSlot, targetId, targetSlot, { parentId } = {}) {
    const verdict = this.canConnect(originId, originSlot, targetId, targetSlot);
    if (!verdict.ok) throw new Error(verdict.reason);
    const origin = this.nodes.get(originId);
    const target = this.nodes.get(targetId);
    const input = target.inputs[targetSlot];
    if (input.link != null) this.removeLink(input.link, { keepWidgetInput: true });
    const outType = this.outputType(origin, originSlot);
    const link = {
      id: ++this.state.lastLinkId, origin_id: originId, origin_slot: originSlot, target_id: targetId, target_slot: targetSlot,
      type: outType === ANY ? this.inputType(target, targetSlot) : outType,
    };
    if (parentId != null && this.reroutes.has(parentId)) link.parentId = parentId;
    this.links.set(link.id, link);
    origin.outputs[originSlot].links = [...(origin.outputs[originSlot].links ?? []), link.id];
    input.link = link.id;
    if (origin.type === 'PrimitiveNode') this.#adoptWidget(origin, target, input);
    this.changed('link-added', { link });
    return link;
  }

  /** Link an output into a widget, giving the widget a socket first. */
  connectToWidget(originId, originSlot, targetId, widgetName, options) {
    const verdict = this.canConnectToWidget(originId, originSlot, targetId, widgetName);
    if (!verdict.ok) throw new Error(verdict.reason);
    const slot = this.ensureWidgetInput(targetId, widgetName);
    return this.connect(originId, originSlot, targetId, slot, options);
  }

  #adoptWidget(primitive, target, input) {
    const output = primitive.outputs[0];
    const isFirst = output.links.length === 1;
    const index = this.defOf(target).widgets.findIndex((w) => w.name === input.widget.name);
    if (isFirst) {
      output.type = input.type;
      output.name = input.type; // ComfyUI names a wired primitive's output after its type
      output.widget = { name: input.widget.name };
      const def = this.defOf(primitive);
      const values = def.widgets.map((w) => clone(w.default));
      if (index >= 0) values[0] = clone(target.widgets_values[index]);
      const kept = Array.isArray(primitive.widgets_values) ? primitive.widgets_values : [];
      primitive.widgets_values = kept.length === values.length ? kept : values;
    }
    if (index >= 0) target.widgets_values[index] = clone(primitive.widgets_values[0]);
  }

  removeLink(linkId, { keepWidgetInput = false } = {}) {
    const link = this.links.get(linkId);
    if (!link) return;
    this.links.delete(linkId);
    const origin = this.nodes.get(link.origin_id);
    const output = origin?.outputs[link.origin_slot];
    if (output) output.links = (output.links ?? []).filter((id) => id !== linkId);
    const target = this.nodes.get(link.target_id);
    const input = target?.inputs[link.target_slot];
    if (input && input.link === linkId) input.link = null;
    if (origin?.type === 'PrimitiveNode' && output && !output.links.length) {
      output.type = ANY;
      output.name = 'connect to widget input';
      delete output.widget;
    }
    this.linkRemoved(link);
    // An unlinked widget socket goes back to being a plain widget, as in ComfyUI's current editor.
    if (input?.widget && !keepWidgetInput) this.removeWidgetInput(target.id, input.widget.name);
    this.changed('link-removed', { link });
  }

  disconnectInput(nodeId, slot) {
    const input = this.nodes.get(nodeId)?.inputs[slot];
    if (input?.link != null) this.removeLink(input.link);
  }

  /** Called after a link is gone; the document tidies what hung on it. */
  linkRemoved() {}
}

