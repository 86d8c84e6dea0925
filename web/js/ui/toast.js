// Short messages in the corner: refusals, errors, confirmations. Errors stay longer.

import { h } from './dom.js';

export class Toasts {
  constructor(root) {
    this.root = root;
  }

  show(message, kind = 'info', { timeout } = {}) {
    const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
    el.addEventListener('click', () => el.remove());
    this.root.append(el);
    while (this.root.children.length > 5) this.root.firstChild.remove();
    setTimeout(() => el.remove(), timeout ?? (kind === 'error' ? 8000 : 3500));
    return el;
  }
}
