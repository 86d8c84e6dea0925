// Painting one node: body, title bar in its category colour, sockets in their type colours,
// widgets, run state (progress, running/error outlines, messages) and its pictures (results, live
// preview, the selected upload). Also records where each picture went, for clicks.

import { TITLE_H, nodeLayout, collapsedWidth } from '../model/geometry.js';
import { uploadPreviewUrl } from '../widgets/upload.js';
import { roundRect, fitText } from '../widgets/paint.js';
import * as theme from './theme.js';

const SOCKET_R = 5;

function drawSocket(ctx, x, y, type, { linked, highlight, dim, error }) {
  ctx.beginPath();
  ctx.arc(x, y, highlight ? SOCKET_R + 2 : SOCKET_R, 0, Math.PI * 2);
  ctx.globalAlpha = dim ? 0.25 : 1;
  const color = error ? theme.ERROR : theme.typeColor(type);
  if (linked || highlight) {
    ctx.fillStyle = color;
    ctx.fill();
  } else {
    ctx.fillStyle = '#1b1b1f';
    ctx.fill();
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.stroke();
  }
  ctx.globalAlpha = 1;
}

/** How a socket looks while a link is being dragged: compatible ones grow, the rest fade. */
function pendingLook(scene, node, kind, slot) {
  const p = scene.pending;
  if (!p || p.from.nodeId === node.id) return {};
  if (kind === p.from.kind) return { dim: true };
  const ok = kind === 'input'
    ? scene.doc.canConnect(p.from.nodeId, p.from.slot, node.id, slot).ok
    : scene.doc.canConnect(node.id, slot, p.from.nodeId, p.from.slot).ok;
  return ok ? { highlight: true } : { dim: true };
}

// Titles are what a zoomed-out graph is read by, so on screen they never get smaller than
// TITLE_MIN_SCREEN_PX: below the zoom where the 14-unit font would shrink past it, the font grows in
// graph units instead, spilling from the bar into the body (whose labels are not drawn then). A
// 150-node workflow fits a 1400×900 window at about 0.26; only below TITLE_HIDE_SCALE (a node of
// 300 units is then under 45 px wide, too narrow for four readable letters) are titles left out.
const TITLE_MIN_SCREEN_PX = 10;
const TITLE_HIDE_SCALE = 0.15;

function drawTitleText(ctx, scene, node, def, width) {
  if (scene.scale < TITLE_HIDE_SCALE) return;
  const size = Math.max(theme.TITLE_FONT_PX, TITLE_MIN_SCREEN_PX / scene.scale);
  ctx.font = theme.titleFont(size);
  ctx.fillStyle = theme.TEXT;
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  const title = scene.doc.titleOf(node) + (node.mode === 4 ? '  (bypassed)' : node.mode === 2 ? '  (muted)' : '');
  const badge = def.subgraph ? 22 : 0;
  // Centred in the bar while it fits; a larger font keeps its top in the bar and grows downwards.
  const middle = Math.max(-TITLE_H / 2, -TITLE_H + 2 + size / 2);
  ctx.fillText(fitText(ctx, title, width - 34 - badge), 26, middle);
}

function drawTitle(ctx, scene, node, def, width, collapsed) {
  const titleColor = node.color ?? theme.categoryColor(def.category);
  roundRect(ctx, 0, -TITLE_H, width, TITLE_H, collapsed ? 8 : [8, 8, 0, 0]);
  ctx.fillStyle = def.missing ? '#6b2020' : titleColor;
  ctx.fill();
  ctx.beginPath();
  ctx.arc(14, -TITLE_H / 2, 5, 0, Math.PI * 2);
  ctx.fillStyle = collapsed ? '#888' : theme.typeColor(def.outputs[0]?.type ?? '*');
  ctx.fill();
  drawTitleText(ctx, scene, node, def, width);
  if (def.subgraph && !collapsed) {
    // A subgraph instance: double-click opens it.
    ctx.strokeStyle = theme.TEXT_DIM;
    ctx.lineWidth = 1.5;
    ctx.strokeRect(width - 24, -TITLE_H / 2 - 6, 10, 10);
    ctx.strokeRect(width - 20, -TITLE_H / 2 - 2, 10, 10);
  }
}

function drawSocketsAndLabels(ctx, scene, node, def, layout) {
  const inputErrors = scene.execution.inputErrors(node.id);
  const widgetNames = new Set(def.widgets.map((w) => w.name));
  ctx.font = theme.FONT;
  ctx.textBaseline = 'middle';
  node.inputs.forEach((input, slot) => {
    const pos = layout.inputs[slot];
    if (!pos) return;
    const isWidget = input.widget && widgetNames.has(input.widget.name);
    const linked = input.link != null;
    const error = inputErrors.has(input.name);
    const look = pendingLook(scene, node, 'input', slot);
    // An unlinked widget socket shows only while a link is being dragged (or if it has an error).
    if (!isWidget || linked || look.highlight || error) {
      drawSocket(ctx, pos.x, pos.y, input.type, { linked, error, ...look });
    }
    if (scene.lowDetail || (isWidget && !linked)) return;
    ctx.textAlign = 'left';
    ctx.fillStyle = error ? theme.ERROR : def.sockets.find((s) => s.name === input.name)?.optional ? theme.TEXT_DIM : theme.TEXT;
    ctx.fillText(input.label ?? input.localized_name ?? input.name, pos.x + 12, pos.y);
  });
  node.outputs.forEach((output, slot) => {
    const pos = layout.outputs[slot];
    drawSocket(ctx, pos.x, pos.y, scene.doc.outputType(node, slot), { linked: output.links?.length > 0, ...pendingLook(scene, node, 'output', slot) });
    if (scene.lowDetail || def.compact) return;
    ctx.textAlign = 'right';
    ctx.fillStyle = theme.TEXT;
    ctx.fillText(output.label ?? output.localized_name ?? output.name, pos.x - 12, pos.y);
  });
}

function drawWidgets(ctx, scene, node, def, layout) {
  const base = ctx.globalAlpha;
  for (const row of layout.widgets) {
    const wdef = def.widgets[row.index];
    if (scene.doc.isWidgetLinked(node, wdef.name)) continue; // drawn as a socket row instead
    const kind = scene.widgetKinds.get(wdef.kind) ?? scene.widgetKinds.get('UNKNOWN');
    const hover = scene.hover?.kind === 'widget' && scene.hover.nodeId === node.id && scene.hover.index === row.index;
    // A companion (control_after_generate, upload) of a widget that a link drives has nothing to do.
    const idle = wdef.controls != null && scene.doc.isWidgetLinked(node, def.widgets[wdef.controls]?.name);
    // A text box is painted in its box, cut to the node's body (geometry.js); no room, no box.
    const rect = wdef.multiline ? row.box : row;
    if (!rect) continue;
    ctx.globalAlpha = base * (idle ? 0.35 : 1);
    kind.draw(ctx, {
      rect, def: wdef, node, index: row.index, value: node.widgets_values?.[row.index], label: wdef.label ?? wdef.name,
      hover, lowDetail: scene.lowDetail, domActive: scene.domActive(node.id, row.index), scene,
    });
    ctx.globalAlpha = base;
  }
}

function mediaFor(scene, node, def) {
  const id = String(node.id);
  const preview = scene.execution.previewFor(id);
  if (preview) return [{ bitmap: scene.images.blob(preview) }];
  const images = scene.execution.outputFor(id)?.images;
  if (images?.length) return images.map((image) => ({ url: scene.api.viewUrl(image) }));
  const upload = def.widgets.find((w) => w.kind === 'IMAGEUPLOAD');
  if (upload) {
    // Only files the server lists (or that were just uploaded): asking for a missing one would
    // only produce a 404.
    const value = node.widgets_values[upload.controls];
    const url = def.widgets[upload.controls].values?.includes(value) ? uploadPreviewUrl(scene.api, value, upload.folder) : null;
    return url ? [{ url }] : [];
  }
  return [];
}

/** Text a node returned (PreviewAny's `ui.text`), one entry per line. */
function drawTextOutput(ctx, scene, node, area) {
  const text = scene.execution.outputFor(node.id)?.text;
  if (!Array.isArray(text) || !text.length || scene.lowDetail) return false;
  ctx.font = theme.FONT;
  ctx.fillStyle = theme.TEXT;
  ctx.textAlign = 'left';
  ctx.textBaseline = 'top';
  const lines = text.flatMap((t) => String(t).split('\n')).slice(0, Math.max(1, Math.floor(area.h / 16)));
  lines.forEach((line, i) => ctx.fillText(fitText(ctx, line, area.w - 8), area.x + 4, area.y + 2 + i * 16));
  return true;
}

function drawMedia(ctx, scene, node, def, layout) {
  const items = mediaFor(scene, node, def);
  const area = { x: 8, y: layout.contentBottom, w: node.size[0] - 16, h: node.size[1] - layout.contentBottom - 8 };
  const cells = [];
  if (!items.length && drawTextOutput(ctx, scene, node, { ...area, h: Math.max(area.h, 16) })) return cells;
  if (!items.length || area.h < 24) return cells;
  const cols = Math.ceil(Math.sqrt(items.length));
  const rows = Math.ceil(items.length / cols);
  const cw = area.w / cols;
  const ch = area.h / rows;
  items.forEach((item, i) => {
    const picture = item.bitmap ?? (item.url ? scene.images.url(item.url) : null);
    const cell = { x: area.x + (i % cols) * cw, y: area.y + Math.floor(i / cols) * ch, w: cw, h: ch, index: i };
    cells.push(cell);
    if (!picture) return;
    const iw = picture.naturalWidth ?? picture.width;
    const ih = picture.naturalHeight ?? picture.height;
    const s = Math.min((cw - 4) / iw, (ch - 4) / ih);
    const dw = iw * s;
    const dh = ih * s;
    ctx.imageSmoothingEnabled = s < 1;
    ctx.drawImage(picture, cell.x + (cw - dw) / 2, cell.y + (ch - dh) / 2, dw, dh);
  });
  if (items.length > 1 && !scene.lowDetail) {
    ctx.font = theme.FONT;
    ctx.fillStyle = theme.TEXT_DIM;
    ctx.textAlign = 'right';
    ctx.fillText(`${items.length} images`, node.size[0] - 10, node.size[1] - 6);
  }
  return cells;
}

function drawProgress(ctx, scene, node) {
  const p = scene.execution.progressFor(node.id);
  if (!p?.max) return;
  ctx.fillStyle = '#103a22';
  ctx.fillRect(0, 0, node.size[0], 5);
  ctx.fillStyle = theme.RUNNING;
  ctx.fillRect(0, 0, node.size[0] * (p.value / p.max), 5);
}

function errorLines(scene, node) {
  const lines = [];
  for (const e of scene.execution.errorsFor(node.id)) {
    const where = e.extra_info?.input_name ? `${e.extra_info.input_name}: ` : '';
    lines.push(`${where}${e.message}${e.details ? ` — ${e.details}` : ''}`);
  }
  const ex = scene.execution.executionErrorFor(node.id);
  if (ex) lines.push(`${ex.exception_type ?? 'Error'}: ${ex.exception_message ?? ''}`);
  return lines;
}

/** Split `text` into lines that fit `maxWidth` (at spaces; a word too long is cut). */
function wrap(ctx, text, maxWidth) {
  const lines = [];
  let line = '';
  for (const word of text.split(' ')) {
    const next = line ? `${line} ${word}` : word;
    if (ctx.measureText(next).width <= maxWidth || !line) line = next;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line) lines.push(line);
  return lines.map((l) => fitText(ctx, l, maxWidth));
}

function drawErrors(ctx, scene, node, width, bottom) {
  const messages = errorLines(scene, node);
  if (!messages.length || scene.lowDetail) return;
  ctx.font = theme.FONT;
  const boxWidth = Math.max(width, 260);
  const shown = messages.flatMap((m) => wrap(ctx, m, boxWidth - 12)).slice(0, 6);
  const h = shown.length * 17 + 8;
  roundRect(ctx, 0, bottom + 6, boxWidth, h, 6);
  ctx.fillStyle = 'rgba(90, 16, 16, 0.92)';
  ctx.fill();
  ctx.fillStyle = '#ffd7d7';
  ctx.textAlign = 'left';
  ctx.textBaseline = 'top';
  shown.forEach((line, i) => ctx.fillText(line, 6, bottom + 10 + i * 17));
}

function outline(ctx, scene, node, x, y, w, h) {
  const status = scene.execution.nodeStatus(node.id);
  const color = status === 'running' ? theme.RUNNING : status === 'error' ? theme.ERROR : scene.selection.nodes.has(node.id) ? theme.SELECTED : null;
  if (!color) return;
  roundRect(ctx, x - 3, y - 3, w + 6, h + 6, 10);
  ctx.strokeStyle = color;
  ctx.lineWidth = status ? 3 : 1.5;
  ctx.stroke();
}

/** Paint `node` (ctx already in graph space); returns the picture cells for click tests. */
export function drawNode(ctx, scene, node) {
  const def = scene.doc.defOf(node);
  const layout = nodeLayout(node, def);
  ctx.save();
  ctx.translate(node.pos[0], node.pos[1]);
  if (node.mode === 2) ctx.globalAlpha = 0.45;
  let cells = [];
  if (def.compact) {
    roundRect(ctx, 0, 0, node.size[0], node.size[1], 8);
    ctx.fillStyle = node.bgcolor ?? theme.NODE_BG;
    ctx.fill();
    outline(ctx, scene, node, 0, 0, node.size[0], node.size[1]);
    drawSocketsAndLabels(ctx, scene, node, def, layout);
  } else if (node.flags?.collapsed) {
    const w = collapsedWidth(node, def);
    outline(ctx, scene, node, 0, -TITLE_H, w, TITLE_H);
    drawTitle(ctx, scene, node, def, w, true);
    drawErrors(ctx, scene, node, w, 0);
  } else {
    const [w, h] = node.size;
    outline(ctx, scene, node, 0, -TITLE_H, w, h + TITLE_H);
    roundRect(ctx, 0, -TITLE_H, w, h + TITLE_H, 8);
    ctx.fillStyle = node.bgcolor ?? theme.NODE_BG;
    ctx.fill();
    ctx.strokeStyle = theme.NODE_BORDER;
    ctx.lineWidth = 1;
    ctx.stroke();
    drawTitle(ctx, scene, node, def, w, false);
    drawProgress(ctx, scene, node);
    drawWidgets(ctx, scene, node, def, layout);
    drawSocketsAndLabels(ctx, scene, node, def, layout);
    cells = drawMedia(ctx, scene, node, def, layout);
    if (!scene.lowDetail) {
      ctx.strokeStyle = '#55555c';
      ctx.beginPath();
      ctx.moveTo(w - 10, h - 3);
      ctx.lineTo(w - 3, h - 10);
      ctx.stroke();
    }
    if (node.mode === 4) {
      roundRect(ctx, 0, -TITLE_H, w, h + TITLE_H, 8);
      ctx.fillStyle = theme.BYPASS_TINT;
      ctx.fill();
    }
    drawErrors(ctx, scene, node, w, h);
  }
  ctx.restore();
  return cells;
}
