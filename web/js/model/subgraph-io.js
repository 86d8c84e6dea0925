// Editing inside a subgraph: a definition (`definitions.subgraphs[]`, schema-1 graph + IO) becomes a
// workflow the document can open — with its input and output panels as two frontend-only nodes at
// the definition's own ids (-10 and -20), so its links to them stay as they are — and goes back
// into a definition when the canvas returns to the level above.

import { TITLE_H } from './geometry.js';

export const SUBGRAPH_INPUT_ID = -10;
export const SUBGRAPH_OUTPUT_ID = -20;

const clone = (value) => structuredClone(value);
const ioName = (io, i) => io.name ?? io.label ?? `slot ${i}`;

function panel(id, type, bounding, fallback) {
  const [x, y, w, h] = bounding ?? fallback;
  return { id, type, pos: [x, y + TITLE_H], size: [w, Math.max(h - TITLE_H, 30)], flags: {}, order: 0, mode: 0, inputs: [], outputs: [], properties: {}, widgets_values: [] };
}

/** A schema-1 workflow showing `definition` (readWorkflow() turns it into document data). */
export function definitionToWorkflow(definition, rootDefinitions) {
  const input = panel(SUBGRAPH_INPUT_ID, 'SubgraphInput', definition.inputNode?.bounding, [-260, 0, 160, 120]);
  input.outputs = (definition.inputs ?? []).map((io, i) => ({ name: ioName(io, i), type: io.type ?? '*', links: [...(io.linkIds ?? [])] }));
  const output = panel(SUBGRAPH_OUTPUT_ID, 'SubgraphOutput', definition.outputNode?.bounding, [700, 0, 160, 120]);
  output.inputs = (definition.outputs ?? []).map((io, i) => ({ name: ioName(io, i), type: io.type ?? '*', link: io.linkIds?.[0] ?? null }));
  return {
    version: 1, id: definition.id, revision: definition.revision ?? 0, state: clone(definition.state ?? {}),
    nodes: [input, output, ...clone(definition.nodes ?? [])], links: clone(definition.links ?? []),
    groups: clone(definition.groups ?? []), reroutes: clone(definition.reroutes ?? []),
    config: clone(definition.config ?? {}), extra: clone(definition.extra ?? {}), definitions: clone(rootDefinitions ?? { subgraphs: [] }),
  };
}

/** `definition` updated from the document data of its open view. */
export function workflowToDefinition(data, definition) {
  const input = data.nodes.find((n) => n.id === SUBGRAPH_INPUT_ID);
  const output = data.nodes.find((n) => n.id === SUBGRAPH_OUTPUT_ID);
  const bounding = (node) => [node.pos[0], node.pos[1] - TITLE_H, node.size[0], node.size[1] + TITLE_H];
  const byId = new Map(data.reroutes.map((r) => [r.id, { ...clone(r), linkIds: [] }]));
  for (const link of data.links) {
    for (let id = link.parentId, guard = 0; id != null && byId.has(id) && guard < 1000; id = byId.get(id).parentId, guard++) byId.get(id).linkIds.push(link.id);
  }
  return {
    ...clone(definition),
    state: clone(data.state),
    nodes: clone(data.nodes.filter((n) => n.id !== SUBGRAPH_INPUT_ID && n.id !== SUBGRAPH_OUTPUT_ID)),
    links: data.links.map((l) => ({ id: l.id, origin_id: l.origin_id, origin_slot: l.origin_slot, target_id: l.target_id, target_slot: l.target_slot, type: l.type, ...(l.parentId != null ? { parentId: l.parentId } : {}) })),
    groups: clone(data.groups),
    reroutes: [...byId.values()],
    extra: clone(data.extra ?? {}),
    inputNode: { ...(definition.inputNode ?? { id: SUBGRAPH_INPUT_ID }), bounding: input ? bounding(input) : definition.inputNode?.bounding },
    outputNode: { ...(definition.outputNode ?? { id: SUBGRAPH_OUTPUT_ID }), bounding: output ? bounding(output) : definition.outputNode?.bounding },
    inputs: (definition.inputs ?? []).map((io, i) => ({ ...clone(io), linkIds: [...(input?.outputs[i]?.links ?? [])] })),
    outputs: (definition.outputs ?? []).map((io, i) => ({ ...clone(io), linkIds: output?.inputs[i]?.link != null ? [output.inputs[i].link] : [] })),
  };
}

/** The definition for panel node `node` (its sockets are the subgraph's inputs or outputs). */
export function subgraphPanelDef(node) {
  const isInput = node.type === 'SubgraphInput';
  const sockets = isInput ? [] : node.inputs.map((i) => ({ name: i.name, type: i.type, optional: false }));
  return {
    name: node.type, displayName: isInput ? 'Inputs' : 'Outputs', category: 'subgraph',
    description: isInput ? 'What the subgraph receives from outside' : 'What the subgraph gives back',
    pythonModule: 'frontend', outputNode: false, deprecated: false, experimental: false, virtual: true, panel: true,
    inputs: sockets, sockets, widgets: [],
    outputs: isInput ? node.outputs.map((o) => ({ name: o.name, type: o.type, isList: false })) : [],
  };
}

export function isSubgraphPanel(node) {
  return node.type === 'SubgraphInput' || node.type === 'SubgraphOutput';
}
