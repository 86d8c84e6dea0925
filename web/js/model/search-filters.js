// Type filters of the node search: "takes this type as an input" / "gives this type as an output",
// chosen in the search's selects or typed into the query as `in:LATENT` / `out:IMAGE`.

import { typesCompatible } from './types.js';

const WIDGET_SOCKET_TYPES = new Set(['INT', 'FLOAT', 'STRING', 'BOOLEAN', 'COMBO']);

/** True if some input of `def` (a socket, or a widget that can take a link) accepts `type`. */
export function acceptsInput(def, type) {
  return def.sockets.some((s) => typesCompatible(type, s.type))
    || def.widgets.some((w) => w.socketType && !w.frontendOnly && typesCompatible(type, w.socketType));
}

/** True if some output of `def` can feed an input of `type` (a Primitive only feeds widgets). */
export function givesOutput(def, type) {
  if (def.primitive && !WIDGET_SOCKET_TYPES.has(type)) return false;
  return def.outputs.some((o) => typesCompatible(o.type, type));
}

/** Split `in:`/`out:` tokens off a query: {text, input, output}. */
export function parseQuery(query) {
  let input = null;
  let output = null;
  const text = query
    .replace(/\b(?:in|input):(\S+)/gi, (_, t) => { input = t.toUpperCase(); return ''; })
    .replace(/\b(?:out|output):(\S+)/gi, (_, t) => { output = t.toUpperCase(); return ''; })
    .replace(/\s+/g, ' ').trim();
  return { text, input, output };
}

/** The accept function for searchNodes. */
export function typeFilter(input, output) {
  return (def) => (!input || acceptsInput(def, input)) && (!output || givesOutput(def, output));
}
