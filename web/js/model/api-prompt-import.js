// Lay out an API prompt ({id: {class_type, inputs, _meta}}) as a graph on the canvas, for files
// that carry no UI workflow (API JSON, or a PNG with only a `prompt` chunk). Widget values are set
// by input name, links re-made, nodes placed in columns by their depth from the sources.

const COLUMN_W = 360;
const ROW_GAP = 40;

const isLink = (value) => Array.isArray(value) && value.length === 2 && typeof value[1] === 'number'
  && (typeof value[0] === 'string' || typeof value[0] === 'number');

/** Depth of each prompt node: 0 for nodes without links in, else one more than its deepest source. */
function depths(prompt) {
  const depth = new Map();
  const visit = (id, trail) => {
    if (depth.has(id)) return depth.get(id);
    if (trail.has(id)) return 0;
    trail.add(id);
    let d = 0;
    for (const value of Object.values(prompt[id]?.inputs ?? {})) {
      if (isLink(value) && prompt[String(value[0])]) d = Math.max(d, visit(String(value[0]), trail) + 1);
    }
    trail.delete(id);
    depth.set(id, d);
    return d;
  };
  for (const id of Object.keys(prompt)) visit(id, new Set());
  return depth;
}

/**
 * Add the prompt's nodes to `doc` (inside the caller's history step). Returns
 * {added: new node ids, skipped: [class types this server lacks], warnings: []}.
 */
export function importApiPrompt(doc, prompt) {
  const depth = depths(prompt);
  const columnY = new Map();
  const idOf = new Map();
  const skipped = new Set();
  const warnings = [];
  const ids = Object.keys(prompt).sort((a, b) => depth.get(a) - depth.get(b) || a.localeCompare(b, undefined, { numeric: true }));
  for (const id of ids) {
    const entry = prompt[id];
    if (!doc.defFor(entry.class_type)) {
      skipped.add(entry.class_type);
      continue;
    }
    const column = depth.get(id);
    const y = columnY.get(column) ?? 0;
    const node = doc.addNode(entry.class_type, [column * COLUMN_W, y + 30]);
    if (entry._meta?.title) doc.setTitle(node.id, entry._meta.title);
    columnY.set(column, y + node.size[1] + 30 + ROW_GAP);
    idOf.set(id, node.id);
    const widgets = doc.defOf(node).widgets;
    for (const [name, raw] of Object.entries(entry.inputs ?? {})) {
      const value = raw && typeof raw === 'object' && '__value__' in raw ? raw.__value__ : raw;
      const index = widgets.findIndex((w) => w.name === name && !w.frontendOnly);
      if (index >= 0 && !isLink(raw)) doc.setWidgetValue(node.id, index, value);
    }
  }
  for (const id of ids) {
    const target = idOf.get(id);
    if (target == null) continue;
    for (const [name, value] of Object.entries(prompt[id].inputs ?? {})) {
      if (!isLink(value)) continue;
      const origin = idOf.get(String(value[0]));
      if (origin == null) continue;
      const node = doc.nodes.get(target);
      try {
        const slot = node.inputs.findIndex((i) => i.name === name);
        if (slot >= 0) doc.connect(origin, value[1], target, slot);
        else doc.connectToWidget(origin, value[1], target, name);
      } catch (error) {
        warnings.push(`${prompt[id].class_type}.${name}: ${error.message}`);
      }
    }
  }
  return { added: [...idOf.values()], skipped: [...skipped], warnings };
}
