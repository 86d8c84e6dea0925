// Menus: nested context menus (items with submenus open on hover), and a filterable list for
// picking one of many values (combo widgets). One menu is open at a time; a click elsewhere or
// Escape closes it.

import { h, placeWithin } from './dom.js';

export class Menus {
  #open = null;

  constructor(root) {
    this.root = root;
    document.addEventListener('pointerdown', (e) => {
      if (this.#open && !e.target.closest?.('.menu')) this.close();
    }, true);
    document.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || !this.#open) return;
      this.close();
      e.stopPropagation(); // this Escape was for the menu, not for the canvas
    });
  }

  get isOpen() { return Boolean(this.#open); }

  close() {
    this.#open?.forEach((el) => el.remove());
    this.#open = null;
  }

  /**
   * items: [{label, run?, submenu?: items | () => items, disabled?, checked?, danger?} | null (separator)]
   */
  show(items, x, y, { title } = {}) {
    this.close();
    this.#open = [];
    this.#render(items, x, y, 0, title);
  }

  #render(items, x, y, depth, title) {
    this.#open.splice(depth);
    this.root.querySelectorAll(`.menu[data-depth]`).forEach((el) => {
      if (Number(el.dataset.depth) >= depth) el.remove();
    });
    const list = typeof items === 'function' ? items() : items;
    const menu = h('div', { class: 'menu', role: 'menu', dataset: { depth } }, title ? h('div', { class: 'menu-title' }, title) : null);
    for (const item of list) {
      if (!item) {
        menu.append(h('div', { class: 'menu-sep' }));
        continue;
      }
      const row = h('div', {
        class: `menu-item${item.submenu ? ' has-sub' : ''}${item.disabled ? ' disabled' : ''}${item.danger ? ' danger' : ''}`,
        role: 'menuitem',
      }, item.checked ? '✓ ' : '', item.label, item.hint ? h('span', { class: 'menu-hint' }, item.hint) : null);
      row.addEventListener('pointerenter', () => {
        if (item.submenu && !item.disabled) {
          const r = row.getBoundingClientRect();
          this.#render(item.submenu, r.right - 2, r.top, depth + 1);
        } else {
          this.#render([], 0, 0, depth + 1);
        }
      });
      row.addEventListener('click', (e) => {
        e.stopPropagation();
        if (item.disabled || item.submenu) return;
        this.close();
        item.run?.();
      });
      menu.append(row);
    }
    if (depth > 0 && !list.length) return;
    this.root.append(menu);
    this.#open[depth] = menu;
    placeWithin(menu, x, y);
  }

  /** A list with a filter box; Enter picks the first match, arrows move. */
  pickFromList({ x, y, minWidth = 160, items, current, onPick, title }) {
    this.close();
    const filter = h('input', { class: 'menu-filter', type: 'text', placeholder: 'Filter…' });
    const listEl = h('div', { class: 'menu-list' });
    const menu = h('div', { class: 'menu picker', role: 'listbox', style: { minWidth: `${minWidth}px` } }, title ? h('div', { class: 'menu-title' }, title) : null, filter, listEl);
    let active = 0;
    let shown = [];
    const render = () => {
      const q = filter.value.toLowerCase();
      shown = items.filter((v) => String(v).toLowerCase().includes(q));
      listEl.replaceChildren(...shown.map((v, i) => {
        const row = h('div', { class: `menu-item${v === current ? ' current' : ''}${i === active ? ' active' : ''}`, role: 'option' }, String(v));
        row.addEventListener('click', () => { this.close(); onPick(v); });
        return row;
      }));
      if (!shown.length) listEl.append(h('div', { class: 'menu-item disabled' }, items.length ? 'No match' : 'Nothing to choose'));
    };
    filter.addEventListener('input', () => { active = 0; render(); });
    filter.addEventListener('keydown', (e) => {
      e.stopPropagation();
      if (e.key === 'ArrowDown') active = Math.min(shown.length - 1, active + 1);
      else if (e.key === 'ArrowUp') active = Math.max(0, active - 1);
      else if (e.key === 'Enter' && shown[active] != null) { this.close(); onPick(shown[active]); return; }
      else if (e.key === 'Escape') { this.close(); return; } else return;
      e.preventDefault();
      render();
      listEl.children[active]?.scrollIntoView({ block: 'nearest' });
    });
    active = Math.max(0, items.indexOf(current));
    render();
    this.#open = [menu];
    this.root.append(menu);
    placeWithin(menu, x, y);
    filter.focus();
    listEl.children[active]?.scrollIntoView({ block: 'nearest' });
  }
}

/** The "Add Node" menu: categories as nested submenus, nodes as leaves. */
export function categoryMenu(defs, onPick) {
  const root = { children: new Map(), nodes: [] };
  for (const def of defs) {
    if (def.deprecated) continue;
    let branch = root;
    for (const part of (def.category || 'uncategorised').split('/')) {
      if (!branch.children.has(part)) branch.children.set(part, { children: new Map(), nodes: [] });
      branch = branch.children.get(part);
    }
    branch.nodes.push(def);
  }
  const build = (branch) => [
    ...[...branch.children.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, child]) => ({ label: name, submenu: () => build(child) })),
    ...branch.nodes.sort((a, b) => a.displayName.localeCompare(b.displayName)).map((def) => ({ label: def.displayName, run: () => onPick(def) })),
  ];
  return build(root);
}
