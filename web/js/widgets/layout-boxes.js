// The layout-boxes widget: a STRING input declared with `weft_widget: "layout_boxes"` (the paper's
// layout-to-image conditioning) drawn as a picture area holding labelled boxes. Drag on empty area
// draws a box, drag a box moves it, drag a corner resizes it, Delete/Backspace removes the selected
// one; the header picks the label (from the input's `labels`, or typed) and clears. Every edit
// writes the JSON value (layout-boxes-model.js) into the document, so it is queued and saved like
// any STRING. All geometry is in graph units, so it works at every zoom.

import { paintButton, paintRow, fitText } from './paint.js';
import {
  widgetParts, parseLayout, serializeLayout, aspectFrom, inside, toImage, boxAt, movedBox, spannedBox,
  cornerPoint, oppositeCorner, labelColor,
} from './layout-boxes-model.js';
import { isTyping } from '../ui/dom.js';
import { ERROR, FONT, TEXT_DIM, WIDGET_BORDER } from '../view/theme.js';

const AREA_BG = '#141417';
const GUIDE = '#26262c';
const TAG_FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const TAG_H = 15;
const DRAG_START_PX = 3;
const CORNER_REACH_PX = 7;      // on screen, so corners stay easy to catch when zoomed out
const FALLBACK_LABEL = 'object';
const OTHER_LABEL = 'other…';
const NUMBER_KINDS = new Set(['INT', 'FLOAT']);

/** The value a node has for `name`: its own widget, else the first number widget of what feeds that input. */
function numberInput(doc, node, name) {
  const widgets = doc.defOf(node)?.widgets ?? [];
  const index = widgets.findIndex((wd) => wd.name === name && NUMBER_KINDS.has(wd.kind));
  if (index >= 0) return node.widgets_values?.[index];
  const link = doc.links.get(node.inputs.find((input) => input.name === name)?.link);
  const origin = link && doc.nodes.get(link.origin_id);
  if (!origin) return null;
  const originIndex = (doc.defOf(origin)?.widgets ?? []).findIndex((wd) => NUMBER_KINDS.has(wd.kind));
  return originIndex >= 0 ? origin.widgets_values?.[originIndex] : null;
}

function aspectOf(doc, node) {
  return aspectFrom(numberInput(doc, node, 'width'), numberInput(doc, node, 'height'));
}

const offset = (rect, dx, dy) => ({ x: rect.x + dx, y: rect.y + dy, w: rect.w, h: rect.h });

/** One widget kind per editor: it holds the view state (which box is selected, the label for new boxes). */
export class LayoutBoxesWidget {
  #selected = null;            // {nodeId, index, box} — one box of one widget, while its node is selected
  #labels = new Map();         // `${nodeId}:${index}` → the label new boxes get
  #env = null;

  // -- drawing ---------------------------------------------------------------------------------
  draw(ctx, w) {
    const parts = widgetParts(w.rect, aspectOf(w.scene.doc, w.node));
    const { ok, boxes } = parseLayout(w.value);
    const selected = w.scene.selection.nodes.has(w.node.id) ? this.#selectedIn(w.node.id, w.index, boxes) : -1;
    const caption = selected >= 0 ? 'box label' : 'new boxes';
    const label = selected >= 0 ? boxes[selected].label : this.#labelFor(w.node.id, w.index, boxes, w.def);
    paintRow(ctx, { ...w, rect: offset(parts.picker, w.rect.x, w.rect.y), label: caption, hover: false }, { value: `${label} ▾` });
    paintButton(ctx, offset(parts.clear, w.rect.x, w.rect.y), 'clear', { lowDetail: w.lowDetail });
    const area = offset(parts.area, w.rect.x, w.rect.y);
    ctx.save();
    ctx.fillStyle = AREA_BG;
    ctx.fillRect(area.x, area.y, area.w, area.h);
    this.#drawGuides(ctx, area);
    ctx.beginPath();
    ctx.rect(area.x, area.y, area.w, area.h);
    ctx.clip();
    const scale = w.scene.scale;
    boxes.forEach((box, i) => this.#drawBox(ctx, area, box, { selected: i === selected, scale, text: !w.lowDetail }));
    if (!w.lowDetail && (!ok || !boxes.length)) {
      ctx.font = FONT;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillStyle = ok ? TEXT_DIM : ERROR;
      const hint = ok ? 'drag to draw a box' : 'not a list of boxes: “clear” starts over';
      ctx.fillText(fitText(ctx, hint, area.w - 12), area.x + area.w / 2, area.y + area.h / 2);
    }
    ctx.restore();
    ctx.strokeStyle = WIDGET_BORDER;
    ctx.lineWidth = 1;
    ctx.strokeRect(area.x, area.y, area.w, area.h);
  }

  #drawGuides(ctx, area) {
    ctx.strokeStyle = GUIDE;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const f of [0.25, 0.5, 0.75]) {
      ctx.moveTo(area.x + f * area.w, area.y);
      ctx.lineTo(area.x + f * area.w, area.y + area.h);
      ctx.moveTo(area.x, area.y + f * area.h);
      ctx.lineTo(area.x + area.w, area.y + f * area.h);
    }
    ctx.stroke();
  }

  #drawBox(ctx, area, box, { selected, scale, text }) {
    const x = area.x + box.x * area.w;
    const y = area.y + box.y * area.h;
    const bw = box.w * area.w;
    const bh = box.h * area.h;
    const color = labelColor(box.label);
    const base = ctx.globalAlpha;
    ctx.globalAlpha = base * (selected ? 0.28 : 0.16);
    ctx.fillStyle = color;
    ctx.fillRect(x, y, bw, bh);
    ctx.globalAlpha = base;
    // Lines keep at least one screen pixel when zoomed out.
    const line = Math.max(1.5, 1 / scale);
    ctx.strokeStyle = selected ? '#ffffff' : color;
    ctx.lineWidth = selected ? line * 1.5 : line;
    ctx.strokeRect(x, y, bw, bh);
    if (text && box.label) {
      ctx.font = TAG_FONT;
      const tag = fitText(ctx, box.label, Math.max(0, bw - 8));
      if (tag) {
        ctx.fillStyle = color;
        ctx.fillRect(x, y, Math.min(bw, ctx.measureText(tag).width + 8), Math.min(bh, TAG_H));
        ctx.fillStyle = '#111114';
        ctx.textAlign = 'left';
        ctx.textBaseline = 'middle';
        ctx.fillText(tag, x + 4, y + Math.min(bh, TAG_H) / 2);
      }
    }
    if (!selected) return;
    const s = Math.max(7, 6 / scale);
    ctx.fillStyle = '#ffffff';
    for (const [cx, cy] of [[x, y], [x + bw, y], [x, y + bh], [x + bw, y + bh]]) ctx.fillRect(cx - s / 2, cy - s / 2, s, s);
  }

  // -- pointer ---------------------------------------------------------------------------------
  pointerDown(env, w, event) {
    this.#attach(env);
    const parts = widgetParts(w.rect, aspectOf(env.doc, w.node));
    const [x, y] = [w.localX, w.localY];
    if (inside(parts.clear, x, y)) {
      this.#clear(env, w);
      return null;
    }
    if (inside(parts.header, x, y)) {
      if (inside(parts.picker, x, y)) this.#pickLabel(env, w, parts.picker);
      return null;
    }
    if (!inside(parts.area, x, y)) {
      this.#select(env, null);
      return null;
    }
    const { ok, boxes } = parseLayout(w.value);
    if (!ok) {
      env.ui.toast('This layout is not a list of boxes; “clear” starts a new one.', 'error');
      return null;
    }
    const scale = env.view.viewport.scale;
    const reach = [CORNER_REACH_PX / scale / Math.max(parts.area.w, 1e-9), CORNER_REACH_PX / scale / Math.max(parts.area.h, 1e-9)];
    const start = toImage(parts.area, x, y);
    const target = boxAt(boxes, start[0], start[1], reach, this.#selectedIn(w.node.id, w.index, boxes));
    return this.#drag(env, w, event, { area: parts.area, boxes, target, start });
  }

  /** The gesture after a press in the area: draw a new box, move a box or resize it from a corner. */
  #drag(env, w, event, { area, boxes, target, start }) {
    const { node, index } = w;
    const before = w.value;
    let edit;
    if (!target) {
      const label = this.#labelFor(node.id, index, boxes, w.def);
      edit = (p) => [...boxes, spannedBox(label, start, p)];
    } else if (target.corner) {
      const box = boxes[target.index];
      const fixed = oppositeCorner(box, target.corner);
      // The corner follows the pointer from where it was pressed, without a jump to the pointer.
      const [cu, cv] = cornerPoint(box, target.corner);
      edit = (p) => boxes.map((b, i) => (i === target.index ? spannedBox(b.label, fixed, [p[0] + cu - start[0], p[1] + cv - start[1]]) : b));
    } else {
      edit = (p) => boxes.map((b, i) => (i === target.index ? movedBox(b, p[0] - start[0], p[1] - start[1]) : b));
    }
    this.#select(env, target ? { nodeId: node.id, index, box: target.index } : null);
    const pointAt = (e) => {
      const [gx, gy] = env.view.graphPoint(e);
      return toImage(area, gx - node.pos[0] - w.rect.x, gy - node.pos[1] - w.rect.y);
    };
    let dragged = false;
    env.history.begin();
    return {
      move: (e) => {
        if (!dragged && Math.hypot(e.clientX - event.clientX, e.clientY - event.clientY) < DRAG_START_PX) return;
        dragged = true;
        const next = serializeLayout(edit(pointAt(e)));
        if (next !== node.widgets_values[index]) env.doc.setWidgetValue(node.id, index, next);
        if (!target) this.#select(env, { nodeId: node.id, index, box: boxes.length });
      },
      end: () => env.history.commit(),
      cancel: () => {
        if (dragged) env.doc.setWidgetValue(node.id, index, before);
        env.history.commit();
      },
    };
  }

  #clear(env, w) {
    this.#select(env, null);
    if (w.value === '[]') return;
    env.history.run(() => env.doc.setWidgetValue(w.node.id, w.index, '[]'));
  }

  /** The header's label picker: the input's `labels` (and "other…" to type one), or a text field. */
  #pickLabel(env, w, picker) {
    const { node, index } = w;
    const offered = (Array.isArray(w.def.options?.labels) ? w.def.options.labels : []).map(String);
    const row = env.view.widgetClientRect(node.id, index);
    const scale = env.view.viewport.scale;
    const rect = { x: row.x + picker.x * scale, y: row.y + picker.y * scale, w: picker.w * scale, h: picker.h * scale };
    const { boxes } = parseLayout(w.value);
    const selected = this.#selectedIn(node.id, index, boxes);
    const current = selected >= 0 ? boxes[selected].label : this.#labelFor(node.id, index, boxes, w.def);
    const apply = (text) => this.#applyLabel(env, node.id, index, String(text).trim());
    const typeIn = () => env.ui.editInline({ rect, value: current, placeholder: 'label', commit: apply });
    if (!offered.length) {
      typeIn();
      return;
    }
    env.ui.pickFromList({
      x: rect.x, y: rect.y + rect.h, minWidth: rect.w, items: [...offered, OTHER_LABEL], current, title: 'label',
      onPick: (v) => (v === OTHER_LABEL ? typeIn() : apply(v)),
    });
  }

  /** `label` becomes the label of new boxes, and of the selected box if there is one. */
  #applyLabel(env, nodeId, index, label) {
    if (!label) return;
    this.#labels.set(`${nodeId}:${index}`, label);
    const node = env.doc.nodes.get(nodeId);
    const { ok, boxes } = parseLayout(node?.widgets_values?.[index]);
    const selected = this.#selectedIn(nodeId, index, boxes);
    if (ok && selected >= 0 && boxes[selected].label !== label) {
      const next = boxes.map((b, i) => (i === selected ? { ...b, label } : b));
      env.history.run(() => env.doc.setWidgetValue(nodeId, index, serializeLayout(next)));
    }
    env.view.requestDraw();
  }

  /** The label a new box gets: the one picked last, else the last box's, else the first offered. */
  #labelFor(nodeId, index, boxes, def) {
    const offered = Array.isArray(def.options?.labels) ? def.options.labels : [];
    return this.#labels.get(`${nodeId}:${index}`) ?? boxes.at(-1)?.label ?? (offered.length ? String(offered[0]) : FALLBACK_LABEL);
  }

  // -- selection and keys ----------------------------------------------------------------------
  #selectedIn(nodeId, index, boxes) {
    const s = this.#selected;
    return s && s.nodeId === nodeId && s.index === index && s.box < boxes.length ? s.box : -1;
  }

  #select(env, selected) {
    this.#selected = selected;
    env.view.requestDraw();
  }

  /**
   * Listen, once, for what ends a box selection (a press elsewhere, the node deselected) and for
   * Delete/Backspace. The key is taken on the window's capture phase, before the editor's shortcut
   * would delete the whole node; with no box selected it passes on untouched.
   */
  #attach(env) {
    if (this.#env) return;
    this.#env = env;
    env.selection.on('change', () => {
      if (this.#selected && !env.selection.nodes.has(this.#selected.nodeId)) this.#select(env, null);
    });
    env.view.canvas.addEventListener('pointerdown', (e) => {
      const s = this.#selected;
      if (!s) return;
      const hit = env.view.hitAt(...env.view.graphPoint(e));
      if (!(hit.kind === 'widget' && hit.nodeId === s.nodeId && hit.index === s.index)) this.#select(env, null);
    }, true);
    window.addEventListener('keydown', (e) => this.#key(env, e), true);
  }

  #key(env, e) {
    if ((e.key !== 'Delete' && e.key !== 'Backspace') || isTyping(e.target) || env.ui.modalOpen()) return;
    const s = this.#selected;
    const node = s && env.selection.nodes.has(s.nodeId) ? env.doc.nodes.get(s.nodeId) : null;
    if (!node) return;
    const { ok, boxes } = parseLayout(node.widgets_values?.[s.index]);
    if (!ok || s.box >= boxes.length) return;
    e.preventDefault();
    e.stopPropagation();
    const next = boxes.filter((_, i) => i !== s.box);
    env.history.run(() => env.doc.setWidgetValue(node.id, s.index, serializeLayout(next)));
    this.#select(env, null);
  }

  // -- for tests and extensions ----------------------------------------------------------------
  /** Client rectangle of the drawing area of widget `index` on node `nodeId` (null if not shown). */
  areaClientRect(view, nodeId, index) {
    const node = view.doc.nodes.get(nodeId);
    const row = node && view.layoutOf(node).widgets.find((r) => r.index === index);
    if (!row) return null;
    const { area } = widgetParts(row, aspectOf(view.doc, node));
    const a = view.clientPoint(node.pos[0] + row.x + area.x, node.pos[1] + row.y + area.y);
    return { x: a.x, y: a.y, w: area.w * view.viewport.scale, h: area.h * view.viewport.scale };
  }
}
