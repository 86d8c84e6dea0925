// The litegraph UI workflow file (facts §8): read schema 0.4 and 1, write 0.4.
// Both become the document's data (graph-document.js): nodes as in the file, links as objects
// {id, origin_id, origin_slot, target_id, target_slot, type, parentId?}, groups with ids, native
// reroute points {id, pos, parentId?}. The view's pan/zoom (`extra.ds`) is returned apart, so
// moving the camera never becomes an undo step.

import { emptyGraphData, newWorkflowId } from './graph-document.js';

export class WorkflowFormatError extends Error {}

const clone = (value) => structuredClone(value);

function pair(value, fallback) {
  if (Array.isArray(value)) return [Number(value[0] ?? fallback[0]), Number(value[1] ?? fallback[1])];
  if (value && typeof value === 'object') return [Number(value[0] ?? fallback[0]), Number(value[1] ?? fallback[1])];
  return [...fallback];
}

/** True when `json` looks like an API prompt ({id: {class_type, inputs}}) rather than a UI workflow. */
export function isApiPrompt(json) {
  if (!json || typeof json !== 'object' || Array.isArray(json) || 'nodes' in json) return false;
  const values = Object.values(json);
  return values.length > 0 && values.every((v) => v && typeof v === 'object' && 'class_type' in v);
}

function readNode(raw) {
  const node = clone(raw);
  node.pos = pair(raw.pos, [0, 0]);
  node.size = pair(raw.size, [200, 100]);
  node.flags = raw.flags && typeof raw.flags === 'object' ? clone(raw.flags) : {};
  node.mode = Number(raw.mode ?? 0);
  node.inputs = (raw.inputs ?? []).map((i) => ({ ...clone(i), link: i.link ?? null }));
  node.outputs = (raw.outputs ?? []).map((o) => ({ ...clone(o), links: Array.isArray(o.links) ? [...o.links] : [] }));
  node.properties = raw.properties && typeof raw.properties === 'object' ? clone(raw.properties) : {};
  node.widgets_values = raw.widgets_values ?? [];
  return node;
}

function readLinks(json, schema1) {
  const links = [];
  // Some writers key the link table by id (an object) instead of listing it.
  const table = Array.isArray(json.links) ? json.links : Object.values(json.links ?? {});
  for (const raw of table) {
    if (!raw) continue;
    const link = schema1 || !Array.isArray(raw)
      ? { id: raw.id, origin_id: raw.origin_id, origin_slot: raw.origin_slot, target_id: raw.target_id, target_slot: raw.target_slot, type: raw.type ?? '*' }
      : { id: raw[0], origin_id: raw[1], origin_slot: raw[2], target_id: raw[3], target_slot: raw[4], type: raw[5] ?? '*' };
    if (raw.parentId != null) link.parentId = raw.parentId;
    links.push(link);
  }
  return links;
}

/** Where linkExtensions are missing, a link's last reroute is the one listing it that no other listing reroute descends from. */
function deriveLinkParents(links, rawReroutes) {
  for (const link of links) {
    if (link.parentId != null) continue;
    const holders = rawReroutes.filter((r) => (r.linkIds ?? []).includes(link.id));
    const last = holders.find((r) => !holders.some((other) => other.parentId === r.id));
    if (last) link.parentId = last.id;
  }
}

/** Drop links that name missing nodes or slots; make node slots agree with the link table. */
function repair(data) {
  const nodes = new Map(data.nodes.map((n) => [n.id, n]));
  data.links = data.links.filter((l) => nodes.get(l.origin_id)?.outputs[l.origin_slot] && nodes.get(l.target_id)?.inputs[l.target_slot]);
  const links = new Map(data.links.map((l) => [l.id, l]));
  for (const node of data.nodes) {
    node.inputs.forEach((input, slot) => {
      const link = links.get(input.link);
      if (!link || link.target_id !== node.id || link.target_slot !== slot) input.link = null;
    });
    node.outputs.forEach((output, slot) => {
      output.links = output.links.filter((id) => links.get(id)?.origin_id === node.id && links.get(id)?.origin_slot === slot);
    });
  }
  for (const link of data.links) {
    const input = nodes.get(link.target_id).inputs[link.target_slot];
    if (input.link !== link.id) input.link = link.id;
    const output = nodes.get(link.origin_id).outputs[link.origin_slot];
    if (!output.links.includes(link.id)) output.links.push(link.id);
  }
}

const maxId = (items) => items.reduce((m, item) => (typeof item.id === 'number' ? Math.max(m, item.id) : m), 0);

/**
 * Read a UI workflow (schema 0.4 or 1).
 * @returns {{data: object, ds: {scale: number, offset: number[]}|null, schema: string}}
 */
export function readWorkflow(json) {
  if (typeof json === 'string') json = JSON.parse(json);
  if (isApiPrompt(json)) throw new WorkflowFormatError('this is an API prompt, not a UI workflow');
  if (!json || typeof json !== 'object' || !Array.isArray(json.nodes)) throw new WorkflowFormatError('not a workflow: no "nodes" list');
  const schema1 = Number(json.version) === 1 || json.state != null;
  const extra = clone(json.extra ?? {});
  const rawReroutes = (schema1 ? json.reroutes : extra.reroutes) ?? [];
  const links = readLinks(json, schema1);
  for (const ext of extra.linkExtensions ?? []) {
    const link = links.find((l) => l.id === ext.id);
    if (link && ext.parentId != null) link.parentId = ext.parentId;
  }
  deriveLinkParents(links, rawReroutes);
  const ds = extra.ds ? { scale: Number(extra.ds.scale ?? 1), offset: pair(extra.ds.offset, [0, 0]) } : null;
  delete extra.ds;
  delete extra.reroutes;
  delete extra.linkExtensions;

  const data = emptyGraphData();
  data.id = json.id ?? newWorkflowId();
  data.revision = json.revision ?? 0;
  data.nodes = json.nodes.filter((n) => n && n.id != null).map(readNode);
  data.links = links;
  let groupId = maxId(json.groups ?? []);
  data.groups = (json.groups ?? []).map((g) => ({
    ...clone(g), id: typeof g.id === 'number' ? g.id : ++groupId, title: g.title ?? 'Group',
    bounding: [...(g.bounding ?? [0, 0, 300, 200])].map(Number), color: g.color ?? '#3f789e', font_size: g.font_size ?? 24,
  }));
  data.reroutes = rawReroutes.map((r) => {
    const reroute = { id: r.id, pos: pair(r.pos, [0, 0]) };
    if (r.parentId != null) reroute.parentId = r.parentId;
    return reroute;
  });
  repair(data);
  const state = schema1 ? json.state ?? {} : { lastNodeId: json.last_node_id, lastLinkId: json.last_link_id };
  data.state = {
    lastNodeId: Math.max(Number(state.lastNodeId ?? 0), maxId(data.nodes)),
    lastLinkId: Math.max(Number(state.lastLinkId ?? 0), maxId(data.links)),
    lastGroupId: Math.max(Number(state.lastGroupId ?? 0), maxId(data.groups)),
    lastRerouteId: Math.max(Number(state.lastRerouteId ?? 0), maxId(data.reroutes)),
  };
  data.config = clone(json.config ?? {});
  data.extra = extra;
  data.definitions = clone(json.definitions ?? { subgraphs: [] });
  if (!Array.isArray(data.definitions.subgraphs)) data.definitions.subgraphs = [];
  data.models = clone(json.models ?? []);
  return { data, ds, schema: schema1 ? '1' : '0.4' };
}

/** Execution order for the `order` field: sources first (Kahn's algorithm), ties by id. */
function executionOrder(data) {
  const incoming = new Map(data.nodes.map((n) => [n.id, 0]));
  const next = new Map(data.nodes.map((n) => [n.id, []]));
  for (const l of data.links) {
    incoming.set(l.target_id, (incoming.get(l.target_id) ?? 0) + 1);
    next.get(l.origin_id)?.push(l.target_id);
  }
  const ready = data.nodes.filter((n) => !incoming.get(n.id)).map((n) => n.id);
  const order = new Map();
  while (ready.length) {
    ready.sort((a, b) => (a > b ? 1 : -1));
    const id = ready.shift();
    order.set(id, order.size);
    for (const t of next.get(id) ?? []) {
      incoming.set(t, incoming.get(t) - 1);
      if (incoming.get(t) === 0) ready.push(t);
    }
  }
  for (const n of data.nodes) if (!order.has(n.id)) order.set(n.id, order.size);
  return order;
}

/** Write the document's data as a schema-0.4 workflow (what ComfyUI's editor saves). */
export function writeWorkflow(data, { ds = null } = {}) {
  const order = executionOrder(data);
  const nodes = data.nodes.map((n) => ({ ...clone(n), order: order.get(n.id) }));
  const rerouteLinks = new Map(data.reroutes.map((r) => [r.id, []]));
  const linkExtensions = [];
  const byId = new Map(data.reroutes.map((r) => [r.id, r]));
  for (const link of data.links) {
    if (link.parentId == null) continue;
    linkExtensions.push({ id: link.id, parentId: link.parentId });
    for (let id = link.parentId, guard = 0; id != null && byId.has(id) && guard < 1000; id = byId.get(id).parentId, guard++) {
      rerouteLinks.get(id).push(link.id);
    }
  }
  const extra = { ...clone(data.extra) };
  if (ds) extra.ds = { scale: ds.scale, offset: [...ds.offset] };
  if (data.reroutes.length) {
    extra.reroutes = data.reroutes.map((r) => ({ ...(r.parentId != null ? { parentId: r.parentId } : {}), id: r.id, pos: [...r.pos], linkIds: rerouteLinks.get(r.id) }));
    extra.linkExtensions = linkExtensions;
  }
  const out = {
    id: data.id,
    revision: data.revision ?? 0,
    last_node_id: data.state.lastNodeId,
    last_link_id: data.state.lastLinkId,
    nodes,
    links: data.links.map((l) => [l.id, l.origin_id, l.origin_slot, l.target_id, l.target_slot, l.type]),
    groups: data.groups.map((g) => clone(g)),
    config: clone(data.config ?? {}),
    extra,
    version: 0.4,
  };
  if (data.definitions?.subgraphs?.length) out.definitions = clone(data.definitions);
  if (data.models?.length) out.models = clone(data.models);
  return out;
}
