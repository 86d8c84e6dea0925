// Multi-line text widgets as real <textarea>s, so typing, selecting and scrolling text behave as
// everywhere else. They live in one layer above the canvas whose CSS transform is the camera, so a
// pan or zoom touches one style, not every textarea. One focus-to-blur editing session is one undo
// step.
//
// A textarea exists only while its widget is shown: its node in view, expanded, not zoomed out past
// HIDE_BELOW_SCALE, its value not driven by a link, its box not under another node. Otherwise the
// element is removed (the canvas paints the box, or nothing), and made again when the widget shows:
// the value lives in the document, never only in the element. Keeping hidden elements instead
// left ones that were never placed stacked at the layer's origin, over whatever node sat there.

import { rectsOverlap } from '../model/geometry.js';

const HIDE_BELOW_SCALE = 0.5;

export class DomWidgets {
  #els = new Map();

  constructor({ layer, view, doc, history }) {
    this.layer = layer;
    this.view = view;
    this.doc = doc;
    this.history = history;
    view.domActive = (nodeId, index) => this.#els.has(`${nodeId}:${index}`);
  }

  #create(node, index, wdef) {
    const el = document.createElement('textarea');
    el.className = 'node-textarea';
    el.spellcheck = false;
    el.placeholder = wdef.options?.placeholder ?? wdef.name;
    el.dataset.nodeId = node.id;
    el.dataset.widget = wdef.name;
    el.value = node.widgets_values?.[index] ?? '';
    el.addEventListener('focus', () => this.history.begin());
    el.addEventListener('blur', () => this.history.commit());
    el.addEventListener('input', () => this.doc.setWidgetValue(node.id, index, el.value));
    el.addEventListener('pointerdown', (e) => e.stopPropagation());
    this.layer.appendChild(el);
    return { el, node, geometry: '' };
  }

  /** Take an element out; a focused one is blurred first, so its editing step closes (once). */
  #remove(key) {
    const entry = this.#els.get(key);
    if (document.activeElement === entry.el) entry.el.blur();
    entry.el.remove();
    this.#els.delete(key);
  }

  /** Graph rectangles of the nodes drawn above each node, for "is this box under another node". */
  #coverTest() {
    const ordered = this.view.nodesInZOrder();
    const rank = new Map(ordered.map((n, i) => [n.id, i]));
    const boxes = ordered.map((n) => this.doc.bounds(n));
    return (node, rect) => {
      for (let i = rank.get(node.id) + 1; i < ordered.length; i++) if (rectsOverlap(boxes[i], rect)) return true;
      return false;
    };
  }

  /** Bring the textareas in line with the document and the camera (after every frame). */
  sync() {
    const { viewport } = this.view;
    this.layer.style.transform = `scale(${viewport.scale}) translate(${viewport.offset[0]}px, ${viewport.offset[1]}px)`;
    const shown = new Set();
    if (viewport.scale >= HIDE_BELOW_SCALE) {
      const visible = viewport.visibleRect(this.view.width, this.view.height);
      // A textarea floats above the canvas, so one under another node would show through it.
      const covered = this.#coverTest();
      for (const node of this.doc.nodes.values()) this.#syncNode(node, visible, covered, shown);
    }
    for (const key of [...this.#els.keys()]) if (!shown.has(key)) this.#remove(key);
  }

  #syncNode(node, visible, covered, shown) {
    if (node.flags?.collapsed) return;
    const def = this.doc.defOf(node);
    if (!def.widgets.some((w) => w.multiline)) return;
    for (const row of this.view.layoutOf(node).widgets) {
      const wdef = def.widgets[row.index];
      if (!wdef.multiline || !row.box || this.doc.isWidgetLinked(node, wdef.name)) continue;
      const key = `${node.id}:${row.index}`;
      let entry = this.#els.get(key);
      const rect = [node.pos[0] + row.box.x, node.pos[1] + row.box.y, row.box.w, row.box.h];
      if (!rectsOverlap(rect, visible)) continue;
      if (covered(node, rect) && !(entry && document.activeElement === entry.el)) continue;
      if (entry && entry.node !== node) this.#remove(key); // the document was reloaded
      entry = this.#els.get(key);
      if (!entry) {
        entry = this.#create(node, row.index, wdef);
        this.#els.set(key, entry);
      }
      shown.add(key);
      const geometry = `${rect},${node.mode}`;
      if (geometry !== entry.geometry) {
        const [x, y, w, h] = rect;
        Object.assign(entry.el.style, { left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${h}px`, opacity: node.mode === 2 ? '0.5' : '1' });
        entry.geometry = geometry;
      }
      const value = node.widgets_values?.[row.index] ?? '';
      if (document.activeElement !== entry.el && entry.el.value !== value) entry.el.value = value;
    }
  }

  textareaFor(nodeId, widgetName) {
    for (const entry of this.#els.values()) if (entry.node.id === nodeId && entry.el.dataset.widget === widgetName) return entry.el;
    return null;
  }
}
