// Node geometry: where sockets, widgets and the title sit, in graph coordinates. Pure arithmetic, no
// DOM, shared by the canvas (drawing, hit tests) and the document (a new node's size).
// As in litegraph's files, `node.pos` is the top-left of the node's BODY and the title bar sits
// above it, so positions and group boundaries read from ComfyUI workflows mean the same here.

export const TITLE_H = 30;
export const SLOT_H = 22;
export const WIDGET_H = 22;
export const WIDGET_GAP = 4;
export const WIDGET_MARGIN = 12;
export const MULTILINE_H = 84;
export const TEXT_BOX_MIN_H = 16; // one line of a text box (its CSS line height)
export const MEDIA_AREA_H = 220;
export const MIN_NODE_W = 140;
export const COLLAPSED_MIN_W = 80;
export const REROUTE_NODE_SIZE = Object.freeze([75, 26]);
const CHAR_W = 7; // average glyph width of the 13px UI font, for sizes computed without a DOM

export function widgetHeight(widget) {
  if (widget.kind === 'STRING' && widget.multiline) return MULTILINE_H;
  return widget.height ?? WIDGET_H;
}

/**
 * Positions relative to node.pos for every input slot, output slot and widget (a multi-line
 * text row also carries `box`, the part of it its text box fills: see fitTextBoxes).
 * @param {object} node  a document node (inputs, outputs, size, flags)
 * @param {object} def   its definition (widgets)
 */
export function nodeLayout(node, def) {
  const width = node.size[0];
  if (node.flags?.collapsed) {
    const w = collapsedWidth(node, def);
    return {
      inputs: node.inputs.map(() => ({ x: 0, y: -TITLE_H / 2 })),
      outputs: node.outputs.map(() => ({ x: w, y: -TITLE_H / 2 })),
      widgets: [],
      contentBottom: 0,
      collapsedWidth: w,
    };
  }
  if (def?.compact) {
    return {
      inputs: node.inputs.map(() => ({ x: 0, y: node.size[1] / 2 })),
      outputs: node.outputs.map(() => ({ x: width, y: node.size[1] / 2 })),
      widgets: [], contentBottom: node.size[1],
    };
  }
  const widgetNames = new Set((def?.widgets ?? []).map((w) => w.name));
  const socketInputs = [];
  node.inputs.forEach((input, slot) => {
    if (!(input.widget && widgetNames.has(input.widget.name))) socketInputs.push(slot);
  });
  const rows = Math.max(socketInputs.length, node.outputs.length);
  const inputs = new Array(node.inputs.length);
  socketInputs.forEach((slot, row) => { inputs[slot] = { x: 0, y: row * SLOT_H + SLOT_H / 2 + 4 }; });
  const outputs = node.outputs.map((_, row) => ({ x: width, y: row * SLOT_H + SLOT_H / 2 + 4 }));
  const widgets = [];
  let y = rows * SLOT_H + 8;
  (def?.widgets ?? []).forEach((widget, index) => {
    const h = widgetHeight(widget);
    widgets.push({ index, x: WIDGET_MARGIN, y, w: Math.max(width - 2 * WIDGET_MARGIN, 20), h });
    y += h + WIDGET_GAP;
  });
  node.inputs.forEach((input, slot) => {
    if (inputs[slot]) return;
    const row = widgets.find((w) => def.widgets[w.index].name === input.widget.name);
    inputs[slot] = { x: 0, y: row.y + row.h / 2 };
  });
  fitTextBoxes(widgets, node, def);
  return { inputs, outputs, widgets, contentBottom: y + 4 };
}

/**
 * Give each multi-line text row its `box`: the rectangle its text box fills, never past the node's
 * body, or null when not even one line fits. Files made elsewhere hold nodes smaller than their
 * rows (ComfyUI's MarkdownNote template is 88 high for an 84-high row below an 8-unit gap); the box
 * is cut to the node instead of spilling over a neighbour. A note's box grows down to the bottom of
 * the body, as in ComfyUI: the note is its text. The row itself keeps its natural height, so the
 * node's minimum size (contentBottom) does not follow the node's current size.
 */
function fitTextBoxes(widgets, node, def) {
  const right = node.size[0] - WIDGET_GAP;
  const bottom = node.size[1] - WIDGET_GAP;
  const last = widgets[widgets.length - 1];
  for (const row of widgets) {
    if (!def.widgets[row.index].multiline) continue;
    const wanted = def.note && row === last ? bottom - row.y : row.h;
    const h = Math.min(wanted, bottom - row.y);
    const w = Math.min(row.w, right - row.x);
    row.box = h >= TEXT_BOX_MIN_H && w >= TEXT_BOX_MIN_H ? { x: row.x, y: row.y, w, h } : null;
  }
}

export function collapsedWidth(node, def) {
  const title = node.title ?? def?.displayName ?? node.type;
  return Math.max(COLLAPSED_MIN_W, title.length * CHAR_W + 48);
}

/** [x, y, w, h] of the whole node including its title bar. */
export function nodeBounds(node, def) {
  const [x, y] = node.pos;
  if (node.flags?.collapsed) return [x, y - TITLE_H, collapsedWidth(node, def), TITLE_H];
  if (def?.compact) return [x, y, node.size[0], node.size[1]];
  return [x, y - TITLE_H, node.size[0], node.size[1] + TITLE_H];
}

/** The size a freshly placed node gets: room for every label and widget, plus a media area. */
export function defaultNodeSize(node, def) {
  if (def?.compact) return [...REROUTE_NODE_SIZE];
  const title = node.title ?? def?.displayName ?? node.type;
  let width = Math.max(MIN_NODE_W, title.length * 8 + 50);
  const rows = Math.max(node.inputs.filter((i) => !i.widget).length, node.outputs.length);
  for (let r = 0; r < rows; r++) {
    const left = node.inputs.filter((i) => !i.widget)[r]?.name ?? '';
    const right = node.outputs[r]?.name ?? '';
    width = Math.max(width, (left.length + right.length) * CHAR_W + 60);
  }
  const widgets = def?.widgets ?? [];
  if (widgets.length) width = Math.max(width, 240);
  if (widgets.some((w) => w.multiline)) width = Math.max(width, 360);
  for (const w of widgets) {
    const longest = Math.min(28, Math.max(8, ...(w.values ?? []).slice(0, 200).map((v) => String(v).length)));
    width = Math.max(width, (w.name.length + longest + 4) * CHAR_W + 2 * WIDGET_MARGIN);
  }
  const probe = { ...node, size: [width, 0], flags: {} };
  let height = nodeLayout(probe, def).contentBottom;
  if (def?.outputNode && node.inputs.some((i) => i.type === 'IMAGE')) height += MEDIA_AREA_H;
  if (widgets.some((w) => w.kind === 'IMAGEUPLOAD')) height += MEDIA_AREA_H;
  return [Math.ceil(width), Math.ceil(Math.max(height, SLOT_H + 8))];
}

export function rectContains([x, y, w, h], px, py) {
  return px >= x && px <= x + w && py >= y && py <= y + h;
}

export function rectInside(inner, outer) {
  return inner[0] >= outer[0] && inner[1] >= outer[1]
    && inner[0] + inner[2] <= outer[0] + outer[2] && inner[1] + inner[3] <= outer[1] + outer[3];
}

export function rectsOverlap(a, b) {
  return a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];
}
