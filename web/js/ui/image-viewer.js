// Full-size view of result images: click one on a node to open; arrows or buttons walk the batch,
// Escape or a click on the backdrop closes.

import { h } from './dom.js';

export class ImageViewer {
  #el = null;

  constructor(root) {
    this.root = root;
  }

  get isOpen() { return Boolean(this.#el); }

  close() {
    this.#el?.remove();
    this.#el = null;
  }

  /** @param {string[]} urls  @param {number} index */
  open(urls, index = 0) {
    this.close();
    let at = index;
    const img = h('img', { class: 'viewer-image', alt: 'result image' });
    const counter = h('span', { class: 'viewer-counter' });
    const show = () => {
      img.src = urls[at];
      counter.textContent = `${at + 1} / ${urls.length}`;
    };
    const step = (d) => { at = (at + d + urls.length) % urls.length; show(); };
    const prev = h('button', { class: 'viewer-prev', title: 'Previous (←)', onclick: (e) => { e.stopPropagation(); step(-1); } }, '‹');
    const next = h('button', { class: 'viewer-next', title: 'Next (→)', onclick: (e) => { e.stopPropagation(); step(1); } }, '›');
    const close = h('button', { class: 'viewer-close', title: 'Close (Esc)', onclick: () => this.close() }, '×');
    const el = h('div', { class: 'viewer', role: 'dialog', tabindex: '-1' }, img, urls.length > 1 ? [prev, next] : null, counter, close);
    el.addEventListener('click', (e) => { if (e.target === el) this.close(); });
    el.addEventListener('keydown', (e) => {
      e.stopPropagation();
      if (e.key === 'Escape') this.close();
      else if (e.key === 'ArrowLeft') step(-1);
      else if (e.key === 'ArrowRight') step(1);
    });
    img.addEventListener('click', (e) => e.stopPropagation());
    this.#el = el;
    this.root.append(el);
    show();
    el.focus();
  }
}
