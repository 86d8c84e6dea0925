// Shared drawing for widget rows: a rounded frame, the widget's name on the left, its value on the
// right, optional step arrows. Every built-in widget is one of these rows.

import { TEXT, TEXT_DIM, WIDGET_BG, WIDGET_BORDER, FONT } from '../view/theme.js';

export const ARROW_W = 16;

export function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.roundRect(x, y, w, h, r);
}

/** A pill-shaped button with a centred label in `rect` (the upload button, the layout editor's clear). */
export function paintButton(ctx, rect, label, { hover = false, lowDetail = false } = {}) {
  roundRect(ctx, rect.x, rect.y, rect.w, rect.h, rect.h / 2);
  ctx.fillStyle = hover ? '#3a3f4a' : '#2f333c';
  ctx.fill();
  if (lowDetail) return;
  ctx.font = FONT;
  ctx.fillStyle = TEXT;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(label, rect.x + rect.w / 2, rect.y + rect.h / 2);
}

/** Cut `text` with an ellipsis so it fits `maxWidth`. */
export function fitText(ctx, text, maxWidth) {
  if (maxWidth <= 0) return '';
  if (ctx.measureText(text).width <= maxWidth) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(`${text.slice(0, mid)}…`).width <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return `${text.slice(0, lo)}…`;
}

/** Draw a standard row: frame, name, value, arrows. `w` is the widget draw context. */
export function paintRow(ctx, w, { value, arrows = false, valueColor = TEXT }) {
  const { x, y, w: width, h } = w.rect;
  roundRect(ctx, x, y, width, h, h / 2);
  ctx.fillStyle = WIDGET_BG;
  ctx.fill();
  ctx.strokeStyle = w.hover ? '#5a5a64' : WIDGET_BORDER;
  ctx.lineWidth = 1;
  ctx.stroke();
  if (w.lowDetail) return;
  ctx.font = FONT;
  ctx.textBaseline = 'middle';
  const mid = y + h / 2;
  const pad = arrows ? ARROW_W + 4 : 10;
  if (arrows) {
    ctx.fillStyle = TEXT_DIM;
    ctx.beginPath();
    ctx.moveTo(x + 6, mid);
    ctx.lineTo(x + 12, mid - 4);
    ctx.lineTo(x + 12, mid + 4);
    ctx.fill();
    ctx.beginPath();
    ctx.moveTo(x + width - 6, mid);
    ctx.lineTo(x + width - 12, mid - 4);
    ctx.lineTo(x + width - 12, mid + 4);
    ctx.fill();
  }
  // The name keeps its full width when it can; otherwise it shares the row 45/55 with the value.
  const valueText = String(value);
  const room = width - 2 * pad - 10;
  const labelWidth = ctx.measureText(w.label).width;
  const valueWidth = ctx.measureText(valueText).width;
  const labelRoom = labelWidth + valueWidth <= room ? labelWidth : Math.min(labelWidth, Math.max(room * 0.45, room - valueWidth));
  ctx.textAlign = 'left';
  ctx.fillStyle = TEXT_DIM;
  ctx.fillText(fitText(ctx, w.label, labelRoom), x + pad, mid);
  ctx.textAlign = 'right';
  ctx.fillStyle = valueColor;
  ctx.fillText(fitText(ctx, valueText, room - labelRoom), x + width - pad, mid);
}

/** Which part of a row the pointer is on: 'left' arrow, 'right' arrow or the 'middle'. */
export function rowPart(w, localX) {
  if (localX < ARROW_W + 2) return 'left';
  if (localX > w.rect.w - ARROW_W - 2) return 'right';
  return 'middle';
}
