// Frontend-only node types (facts §7.1: "Reroute, Note, PrimitiveNode, groups and subgraphs are
// frontend-only constructs"). They live in the UI workflow and never reach the server as nodes:
// the server's UI→API converter resolves them. They are described as data, like server nodes.

import { ANY } from './types.js';

const textWidget = { name: 'text', kind: 'STRING', multiline: true, default: '', options: { multiline: true }, socketType: null };

function virtualDef(name, displayName, fields) {
  return {
    name, displayName, category: 'utils', description: '', pythonModule: 'frontend', outputNode: false,
    deprecated: false, experimental: false, virtual: true, inputs: [], sockets: [], widgets: [], outputs: [],
    ...fields,
  };
}

export const VIRTUAL_NODE_DEFS = Object.freeze({
  Reroute: virtualDef('Reroute', 'Reroute', {
    description: 'Passes one link through; takes the type of what feeds it.',
    sockets: [{ name: '', type: ANY, optional: false }],
    inputs: [{ name: '', type: ANY, optional: false }],
    outputs: [{ name: '', type: ANY, isList: false }],
    compact: true,
  }),
  PrimitiveNode: virtualDef('PrimitiveNode', 'Primitive', {
    description: 'One value that drives widget inputs of other nodes: connect it to a widget.',
    outputs: [{ name: 'connect to widget input', type: ANY, isList: false }],
    primitive: true,
  }),
  Note: virtualDef('Note', 'Note', { description: 'A text note on the canvas.', widgets: [textWidget], note: true }),
  MarkdownNote: virtualDef('MarkdownNote', 'Markdown Note', {
    description: 'A note written in Markdown.', widgets: [textWidget], note: true,
  }),
});

export function isVirtualType(type) {
  return Object.hasOwn(VIRTUAL_NODE_DEFS, type);
}
