// The DOM around the canvas, gathered behind one object the rest of the editor calls: toasts,
// menus, the node search, inline editing, the image viewer, file choosing and the side panels.

import { Toasts } from './toast.js';
import { Menus } from './context-menu.js';
import { NodeSearch } from './search.js';
import { ImageViewer } from './image-viewer.js';
import { editInline } from './inline-editor.js';
import { h } from './dom.js';

export class EditorUi {
  constructor(root, { getDefs }) {
    this.root = root;
    this.toasts = new Toasts(root.querySelector('#toasts'));
    this.menus = new Menus(root);
    this.search = new NodeSearch(root, getDefs);
    this.viewer = new ImageViewer(root);
    this.panels = new Map();
  }

  toast(message, kind = 'info') {
    return this.toasts.show(message, kind);
  }

  openSearch(options) {
    this.menus.close();
    this.search.open(options);
  }

  pickFromList(options) {
    this.menus.pickFromList(options);
  }

  editInline(options) {
    return editInline(this.root, options);
  }

  modalOpen() {
    return this.search.isOpen || this.viewer.isOpen || Boolean(this.root.querySelector('.dialog-overlay'));
  }

  chooseFile(accept, onFile) {
    const input = h('input', { type: 'file', accept, style: { display: 'none' } });
    input.addEventListener('change', () => {
      if (input.files?.[0]) onFile(input.files[0]);
      input.remove();
    });
    this.root.append(input);
    input.click();
  }

  addPanel(name, element, panel) {
    this.panels.set(name, { element, panel });
  }

  togglePanel(name, show) {
    const entry = this.panels.get(name);
    if (!entry) return;
    entry.element.hidden = show == null ? !entry.element.hidden : !show;
    document.body.classList.toggle(`${name}-open`, !entry.element.hidden);
    if (!entry.element.hidden) entry.panel.refresh();
  }

  refreshPanels() {
    for (const { element, panel } of this.panels.values()) if (!element.hidden) panel.refresh();
  }
}
