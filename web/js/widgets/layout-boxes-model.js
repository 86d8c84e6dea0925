// The data behind the layout-boxes widget, without a DOM: the widget's value is a JSON string, a
// list of {label, x, y, w, h} boxes in image-relative coordinates (0..1, origin top-left), as the
// layout-to-image conditioning of the LDM paper reads them. Here: reading and writing that string,
// the widget's parts (header, drawing area) inside its row, and the box edits a drag makes.

export const HEADER_H = 22;
export const AREA_GAP = 6;
export const CLEAR_W = 52;
/** Smallest side of a box, as a fraction of the image: a click is not a box. */
export const MIN_SIDE = 0.02;
const DECIMALS = 4;
const ASPECT_LIMITS = [0.25, 4];

const clamp01 = (v) => Math.min(1, Math.max(0, v));
const round = (v) => Number(v.toFixed(DECIMALS));

function isBox(item) {
  return item && typeof item === 'object' && ['x', 'y', 'w', 'h'].every((k) => Number.isFinite(Number(item[k])));
}

/** A box kept inside the image: its corner in 0..1 and its size no larger than what is left. */
export function clampBox(box) {
  const x = clamp01(Number(box.x));
  const y = clamp01(Number(box.y));
  return { label: String(box.label ?? ''), x, y, w: Math.min(clamp01(Number(box.w)), 1 - x), h: Math.min(clamp01(Number(box.h)), 1 - y) };
}

/**
 * The boxes a widget value holds. `ok` is false for text that is not a list of boxes (typed in
 * ComfyUI's text field, say); the widget then shows it and refuses edits other than "clear".
 * @param {unknown} value
 * @returns {{ok: boolean, boxes: Array<{label: string, x: number, y: number, w: number, h: number}>}}
 */
export function parseLayout(value) {
  const text = String(value ?? '').trim();
  if (!text) return { ok: true, boxes: [] };
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    return { ok: false, boxes: [] };
  }
  if (!Array.isArray(data) || !data.every(isBox)) return { ok: false, boxes: [] };
  return { ok: true, boxes: data.map(clampBox) };
}

/** The widget value for `boxes`: fixed key order, 4 decimals (a tenth of a pixel at 1024). */
export function serializeLayout(boxes) {
  return JSON.stringify(boxes.map((b) => ({ label: b.label, x: round(b.x), y: round(b.y), w: round(b.w), h: round(b.h) })));
}

/** Width / height of the image the boxes describe, from a node's `width` and `height` values (1 without). */
export function aspectFrom(width, height) {
  const w = Number(width);
  const h = Number(height);
  if (!(w > 0 && h > 0)) return 1;
  return Math.min(ASPECT_LIMITS[1], Math.max(ASPECT_LIMITS[0], w / h));
}

/**
 * The widget's parts relative to its row: the header (label picker, clear button) on top and below
 * it the drawing area, as large as fits with the image's aspect, centred.
 */
export function widgetParts(row, aspect) {
  const header = { x: 0, y: 0, w: row.w, h: HEADER_H };
  const clear = { x: row.w - CLEAR_W, y: 0, w: CLEAR_W, h: HEADER_H };
  const picker = { x: 0, y: 0, w: Math.max(0, row.w - CLEAR_W - AREA_GAP), h: HEADER_H };
  const top = HEADER_H + AREA_GAP;
  const room = Math.max(0, row.h - top);
  const w = Math.max(0, Math.min(row.w, room * aspect));
  const h = w / aspect;
  return { header, picker, clear, area: { x: (row.w - w) / 2, y: top, w, h } };
}

export function inside(rect, x, y) {
  return x >= rect.x && x <= rect.x + rect.w && y >= rect.y && y <= rect.y + rect.h;
}

/** A point of the row in image coordinates, clamped to the image. */
export function toImage(area, x, y) {
  return [clamp01((x - area.x) / Math.max(area.w, 1e-9)), clamp01((y - area.y) / Math.max(area.h, 1e-9))];
}

const CORNERS = Object.freeze({ nw: [0, 0], ne: [1, 0], sw: [0, 1], se: [1, 1] });

/**
 * What a press at image point (u, v) takes: a corner of a box (the selected box first), else the
 * top-most box under it, else nothing. `reach` is the corner's catch radius in image units [ru, rv].
 * @returns {{index: number, corner?: 'nw'|'ne'|'sw'|'se'} | null}
 */
export function boxAt(boxes, u, v, reach, selected = -1) {
  const order = boxes.map((_, i) => i).reverse();
  if (selected >= 0 && selected < boxes.length) order.unshift(selected);
  for (const index of order) {
    const b = boxes[index];
    for (const [corner, [cx, cy]] of Object.entries(CORNERS)) {
      if (Math.abs(u - (b.x + cx * b.w)) <= reach[0] && Math.abs(v - (b.y + cy * b.h)) <= reach[1]) return { index, corner };
    }
  }
  for (const index of order) {
    const b = boxes[index];
    if (u >= b.x && u <= b.x + b.w && v >= b.y && v <= b.y + b.h) return { index };
  }
  return null;
}

/** `box` moved by (du, dv), stopped at the image's edges. */
export function movedBox(box, du, dv) {
  return { ...box, x: Math.min(1 - box.w, Math.max(0, box.x + du)), y: Math.min(1 - box.h, Math.max(0, box.y + dv)) };
}

/** One side's [start, length] between a fixed edge and the pointer, at least MIN_SIDE long, inside 0..1. */
function span(fixed, pointer) {
  let lo = Math.min(fixed, pointer);
  let hi = Math.max(fixed, pointer);
  if (hi - lo < MIN_SIDE) {
    if (pointer >= fixed) hi = Math.min(1, lo + MIN_SIDE);
    else lo = Math.max(0, hi - MIN_SIDE);
    if (hi - lo < MIN_SIDE) [lo, hi] = pointer >= fixed ? [hi - MIN_SIDE, hi] : [lo, lo + MIN_SIDE];
  }
  return [lo, hi - lo];
}

/** The box spanned by a fixed corner and the pointer, inside the image: draws and resizes. */
export function spannedBox(label, [fu, fv], [pu, pv]) {
  const [x, w] = span(clamp01(fu), clamp01(pu));
  const [y, h] = span(clamp01(fv), clamp01(pv));
  return { label, x, y, w, h };
}

/** Where `corner` of `box` is, in image coordinates. */
export function cornerPoint(box, corner) {
  const [cx, cy] = CORNERS[corner];
  return [box.x + cx * box.w, box.y + cy * box.h];
}

/** The corner opposite `corner` of `box`, which stays put while `corner` is dragged. */
export function oppositeCorner(box, corner) {
  const [cx, cy] = CORNERS[corner];
  return [box.x + (1 - cx) * box.w, box.y + (1 - cy) * box.h];
}

/** A stable colour per label, so boxes of one class read alike. */
export function labelColor(label) {
  let hash = 0;
  for (const ch of String(label)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360}, 70%, 62%)`;
}
