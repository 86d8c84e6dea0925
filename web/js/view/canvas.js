// The canvas view: draws the document (grid, groups, links, nodes, reroute points) through a
// Viewport, redrawing on the next animation frame after anything changes. It owns view state only:
// camera, z-order, hover, the link being dragged, the selection box. Gestures (view/gestures/)
// change the document through its methods; the view just follows its events.

import { Viewport } from './viewport.js';
import { ImageCache } from './images.js';
import { drawNode } from './draw-node.js';
import { drawLinks, drawReroutes, drawPendingLink } from './draw-links.js';
import { hitTest } from './hit-test.js';
import { nodeLayout, rectsOverlap } from '../model/geometry.js';
import * as theme from './theme.js';

const LOW_DETAIL_SCALE = 0.5;

export class CanvasView {
  constructor({ canvas, doc, selection, execution, widgetKinds, api }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.doc = doc;
    this.selection = selection;
    this.execution = execution;
    this.widgetKinds = widgetKinds;
    this.api = api;
    this.viewport = new Viewport();
    this.images = new ImageCache(() => this.requestDraw());
    this.pending = null;
    this.box = null;
    this.hover = null;
    this.linkMarkers = [];
    this.mediaCells = new Map();
    this.domActive = () => false;
    this.#z = new Map();
    this.#layouts = new Map();
    this.frameCount = 0;
    this.lastFrameMs = 0;
    for (const source of [doc, selection, execution]) source.on('*', () => this.requestDraw());
    doc.on('reset', () => this.#z.clear());
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.resize();
  }

  #z;
  #layouts;
  #zCounter = 0;
  #frame = 0;

  resize() {
    const rect = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.width = rect.width;
    this.height = rect.height;
    this.canvas.width = Math.max(1, Math.round(rect.width * dpr));
    this.canvas.height = Math.max(1, Math.round(rect.height * dpr));
    this.canvas.style.width = `${rect.width}px`;
    this.canvas.style.height = `${rect.height}px`;
    this.requestDraw();
  }

  requestDraw() {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.draw();
    });
  }

  // -- coordinates ------------------------------------------------------------------------------
  /** Graph coordinates of a pointer event (or any {clientX, clientY}). */
  graphPoint(event) {
    const rect = this.canvas.getBoundingClientRect();
    return this.viewport.toGraph(event.clientX - rect.left, event.clientY - rect.top);
  }

  /** Page (client) coordinates of a graph point. */
  clientPoint(gx, gy) {
    const rect = this.canvas.getBoundingClientRect();
    const [sx, sy] = this.viewport.toScreen(gx, gy);
    return { x: rect.left + sx, y: rect.top + sy };
  }

  layoutOf(node) {
    return this.#layouts.get(node.id) ?? nodeLayout(node, this.doc.defOf(node));
  }

  /** Graph position of a socket, or null. */
  socketPos(nodeId, kind, slot) {
    const node = this.doc.nodes.get(nodeId);
    if (!node) return null;
    const p = this.layoutOf(node)[kind === 'input' ? 'inputs' : 'outputs'][slot];
    return p ? [node.pos[0] + p.x, node.pos[1] + p.y] : null;
  }

  /** Client position of a socket (what a test or tooltip needs). */
  socketClientPos(nodeId, kind, slot) {
    const p = this.socketPos(nodeId, kind, slot);
    return p ? this.clientPoint(p[0], p[1]) : null;
  }

  widgetClientRect(nodeId, index) {
    const node = this.doc.nodes.get(nodeId);
    const row = this.layoutOf(node).widgets.find((w) => w.index === index);
    if (!row) return null;
    const a = this.clientPoint(node.pos[0] + row.x, node.pos[1] + row.y);
    return { x: a.x, y: a.y, w: row.w * this.viewport.scale, h: row.h * this.viewport.scale };
  }

  nodeClientRect(nodeId) {
    const node = this.doc.nodes.get(nodeId);
    const [x, y, w, h] = this.doc.bounds(node);
    const a = this.clientPoint(x, y);
    return { x: a.x, y: a.y, w: w * this.viewport.scale, h: h * this.viewport.scale };
  }

  hitAt(gx, gy) {
    return hitTest(this, gx, gy);
  }

  // -- z-order ----------------------------------------------------------------------------------
  bringToFront(ids) {
    for (const id of ids) this.#z.set(id, ++this.#zCounter);
  }

  nodesInZOrder() {
    return [...this.doc.nodes.values()].sort((a, b) => (this.#z.get(a.id) ?? 0) - (this.#z.get(b.id) ?? 0));
  }

  // -- camera -----------------------------------------------------------------------------------
  /** Fit the selection, or everything, into view. */
  fitView(onlySelection = true) {
    const ids = onlySelection && this.selection.nodes.size ? [...this.selection.nodes] : [...this.doc.nodes.keys()];
    const boxes = ids.map((id) => this.doc.bounds(this.doc.nodes.get(id)));
    if (!onlySelection || !this.selection.nodes.size) boxes.push(...[...this.doc.groups.values()].map((g) => g.bounding));
    if (!boxes.length) return;
    const x = Math.min(...boxes.map((b) => b[0]));
    const y = Math.min(...boxes.map((b) => b[1]));
    const r = Math.max(...boxes.map((b) => b[0] + b[2]));
    const btm = Math.max(...boxes.map((b) => b[1] + b[3]));
    this.viewport.fit([x, y, r - x, btm - y], this.width, this.height);
    this.requestDraw();
  }

  // -- drawing ----------------------------------------------------------------------------------
  #drawGrid(ctx, visible) {
    const step = 20;
    if (this.viewport.scale < 0.35) return;
    const [x0, y0, w, h] = visible;
    const startX = Math.floor(x0 / step) * step;
    const startY = Math.floor(y0 / step) * step;
    for (const major of [false, true]) {
      ctx.beginPath();
      for (let x = startX; x <= x0 + w; x += step) {
        if ((Math.round(x / step) % 5 === 0) !== major) continue;
        ctx.moveTo(x, y0);
        ctx.lineTo(x, y0 + h);
      }
      for (let y = startY; y <= y0 + h; y += step) {
        if ((Math.round(y / step) % 5 === 0) !== major) continue;
        ctx.moveTo(x0, y);
        ctx.lineTo(x0 + w, y);
      }
      ctx.strokeStyle = major ? theme.GRID_MAJOR : theme.GRID_MINOR;
      ctx.lineWidth = 1 / this.viewport.scale;
      ctx.stroke();
    }
  }

  #drawGroups(ctx, scene) {
    for (const group of this.doc.groups.values()) {
      const [x, y, w, h] = group.bounding;
      const fs = group.font_size ?? 24;
      ctx.globalAlpha = 0.22;
      ctx.fillStyle = group.color ?? '#3f789e';
      ctx.fillRect(x, y, w, h);
      ctx.globalAlpha = 0.5;
      ctx.fillRect(x, y, w, fs + 12);
      ctx.globalAlpha = 1;
      ctx.strokeStyle = this.selection.groups.has(group.id) ? theme.SELECTED : group.color ?? '#3f789e';
      ctx.lineWidth = this.selection.groups.has(group.id) ? 2 : 1;
      ctx.strokeRect(x, y, w, h);
      ctx.beginPath();
      ctx.moveTo(x + w - 12, y + h - 2);
      ctx.lineTo(x + w - 2, y + h - 12);
      ctx.stroke();
      if (scene.lowDetail && this.viewport.scale < 0.2) continue;
      ctx.font = `600 ${fs}px system-ui, sans-serif`;
      ctx.fillStyle = theme.TEXT;
      ctx.textAlign = 'left';
      ctx.textBaseline = 'middle';
      ctx.fillText(group.title ?? '', x + 8, y + (fs + 12) / 2);
    }
  }

  /** What to do on an empty canvas, said where the eye goes. */
  #drawEmptyHint(ctx) {
    const [cx, cy] = this.viewport.toGraph(this.width / 2, this.height / 2);
    ctx.save();
    ctx.font = `${16 / this.viewport.scale}px system-ui, sans-serif`;
    ctx.fillStyle = theme.TEXT_DIM;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('Double-click to add a node · right-click for the node menu', cx, cy - 12 / this.viewport.scale);
    ctx.fillText('or drop a workflow (.json) or an image made by Weft or ComfyUI (.png) here', cx, cy + 12 / this.viewport.scale);
    ctx.restore();
  }

  draw() {
    const t0 = performance.now();
    const { ctx, viewport } = this;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = theme.CANVAS_BG;
    ctx.fillRect(0, 0, this.width, this.height);
    ctx.setTransform(dpr * viewport.scale, 0, 0, dpr * viewport.scale, dpr * viewport.scale * viewport.offset[0], dpr * viewport.scale * viewport.offset[1]);
    const visible = viewport.visibleRect(this.width, this.height);
    const scene = {
      doc: this.doc, selection: this.selection, execution: this.execution, widgetKinds: this.widgetKinds,
      images: this.images, api: this.api, pending: this.pending, hover: this.hover,
      scale: viewport.scale, lowDetail: viewport.scale < LOW_DETAIL_SCALE, domActive: this.domActive,
    };
    this.#layouts = new Map();
    for (const node of this.doc.nodes.values()) this.#layouts.set(node.id, nodeLayout(node, this.doc.defOf(node)));
    this.#drawGrid(ctx, visible);
    if (!this.doc.nodes.size && !this.doc.groups.size) this.#drawEmptyHint(ctx);
    this.#drawGroups(ctx, scene);
    this.linkMarkers = drawLinks(ctx, scene, (id, kind, slot) => this.socketPos(id, kind, slot), visible);
    this.mediaCells = new Map();
    for (const node of this.nodesInZOrder()) {
      const bounds = this.doc.bounds(node);
      if (!rectsOverlap([bounds[0] - 10, bounds[1] - 10, bounds[2] + 20, bounds[3] + 120], visible)) continue;
      const cells = drawNode(ctx, scene, node);
      if (cells.length) this.mediaCells.set(node.id, cells);
    }
    drawReroutes(ctx, scene);
    if (this.pending) {
      const start = this.pending.from.rerouteId != null
        ? this.doc.reroutes.get(this.pending.from.rerouteId)?.pos
        : this.socketPos(this.pending.from.nodeId, this.pending.from.kind, this.pending.from.slot);
      if (start) drawPendingLink(ctx, scene, start, this.pending.pointer);
    }
    if (this.box) {
      const [x, y, w, h] = this.box;
      ctx.strokeStyle = '#9ecbff';
      ctx.lineWidth = 1 / viewport.scale;
      ctx.setLineDash([6 / viewport.scale, 4 / viewport.scale]);
      ctx.strokeRect(x, y, w, h);
      ctx.setLineDash([]);
      ctx.fillStyle = 'rgba(120, 170, 255, 0.08)';
      ctx.fillRect(x, y, w, h);
    }
    this.frameCount += 1;
    this.lastFrameMs = performance.now() - t0;
    this.onDrawn?.();
  }
}
