// Multi-line text widgets as real <textarea>s, so typing, selecting and scrolling text behave as
// everywhere else. They live in one layer above the canvas whose CSS transform is the camera, so a
// pan or zoom touches one style, not every textarea. Far zoomed out they hide and the canvas paints
// a preview. One focus-to-blur editing session is one undo step.

import { rectsOverlap } from '../model/geometry.js';

const HIDE_BELOW_SCALE = 0.5;

export class DomWidgets {
  #els = new Map();

  constructor({ layer, view, doc, history }) {
    this.layer = layer;
    this.view = view;
    this.doc = doc;
    this.history = history;
    view.domActive = (nodeId, index) => this.#els.get(`${nodeId}:${index}`)?.shown ?? false;
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
    return { el, node, shown: false, geometry: '' };
  }

  /** Bring the textareas in line with the document and the camera (after every frame). */
  sync() {
    const { viewport } = this.view;
    this.layer.style.transform = `scale(${viewport.scale}) translate(${viewport.offset[0]}px, ${viewport.offset[1]}px)`;
    const show = viewport.scale >= HIDE_BELOW_SCALE;
    const visible = viewport.visibleRect(this.view.width, this.view.height);
    const seen = new Set();
    // A textarea floats above the canvas, so one under another node hides (the canvas paints it).
    const ordered = this.view.nodesInZOrder();
    const rank = new Map(ordered.map((n, i) => [n.id, i]));
    const boxes = ordered.map((n) => this.doc.bounds(n));
    const covered = (node, rect) => {
      for (let i = rank.get(node.id) + 1; i < ordered.length; i++) if (rectsOverlap(boxes[i], rect)) return true;
      return false;
    };
    for (const node of this.doc.nodes.values()) {
      const def = this.doc.defOf(node);
      if (!def.widgets.some((w) => w.multiline)) continue;
      const layout = this.view.layoutOf(node);
      for (const row of layout.widgets) {
        const wdef = def.widgets[row.index];
        if (!wdef.multiline) continue;
        const key = `${node.id}:${row.index}`;
        seen.add(key);
        let entry = this.#els.get(key);
        if (!entry || entry.node !== node) {
          if (entry && document.activeElement === entry.el) this.history.commit();
          entry?.el.remove();
          entry = this.#create(node, row.index, wdef);
          this.#els.set(key, entry);
        }
        const x = node.pos[0] + row.x;
        const y = node.pos[1] + row.y;
        const onScreen = x < visible[0] + visible[2] && x + row.w > visible[0] && y < visible[1] + visible[3] && y + row.h > visible[1];
        const shown = show && onScreen && !node.flags?.collapsed && !this.doc.isWidgetLinked(node, wdef.name)
          && (document.activeElement === entry.el || !covered(node, [x, y, row.w, row.h]));
        if (shown !== entry.shown) {
          entry.el.style.display = shown ? '' : 'none';
          entry.shown = shown;
        }
        if (!shown) continue;
        const geometry = `${x},${y},${row.w},${row.h},${node.mode}`;
        if (geometry !== entry.geometry) {
          Object.assign(entry.el.style, { left: `${x}px`, top: `${y}px`, width: `${row.w}px`, height: `${row.h}px`, opacity: node.mode === 2 ? '0.5' : '1' });
          entry.geometry = geometry;
        }
        const value = node.widgets_values?.[row.index] ?? '';
        if (document.activeElement !== entry.el && entry.el.value !== value) entry.el.value = value;
      }
    }
    for (const [key, entry] of this.#els) {
      if (seen.has(key)) continue;
      // A focused textarea that goes away sends no blur: close its editing step here.
      if (document.activeElement === entry.el) this.history.commit();
      entry.el.remove();
      this.#els.delete(key);
    }
  }

  textareaFor(nodeId, widgetName) {
    for (const entry of this.#els.values()) if (entry.node.id === nodeId && entry.el.dataset.widget === widgetName) return entry.el;
    return null;
  }
}
