// Node search: opened by a double-click on the canvas or by dropping a link on empty space.
// Fuzzy match on display name, type name and category; filters by input and output type (chosen
// in the two selects or typed as `in:LATENT` / `out:IMAGE`); arrows + Enter or a click adds the node.

import { h, placeWithin } from './dom.js';
import { searchNodes } from '../model/fuzzy.js';
import { parseQuery, typeFilter } from '../model/search-filters.js';
import { typeColor } from '../view/theme.js';

function allTypes(defs) {
  const types = new Set();
  for (const def of defs) {
    for (const s of def.sockets) s.type.split(',').forEach((t) => types.add(t.trim()));
    for (const o of def.outputs) o.type.split(',').forEach((t) => types.add(t.trim()));
  }
  types.delete('*');
  return [...types].sort();
}

export class NodeSearch {
  #el = null;

  constructor(root, getDefs) {
    this.root = root;
    this.getDefs = getDefs;
    document.addEventListener('pointerdown', (e) => {
      if (this.#el && !this.#el.contains(e.target)) this.close();
    }, true);
  }

  get isOpen() { return Boolean(this.#el); }

  close() {
    this.#el?.remove();
    this.#el = null;
  }

  /** @param {{clientX, clientY, filter?: {input?, output?}, onPick: (def) => void}} options */
  open({ clientX, clientY, filter = {}, onPick }) {
    this.close();
    const defs = this.getDefs();
    const types = allTypes(defs);
    const typeSelect = (label, value) => h('select', { class: 'search-type', title: label },
      h('option', { value: '' }, `${label}: any`), ...types.map((t) => h('option', { value: t, selected: t === value }, `${label}: ${t}`)));
    const query = h('input', { class: 'search-input', type: 'text', placeholder: 'Search nodes by name or category…', autocomplete: 'off' });
    const inSelect = typeSelect('Input', filter.input);
    const outSelect = typeSelect('Output', filter.output);
    const list = h('div', { class: 'search-results', role: 'listbox' });
    const el = h('div', { class: 'search', role: 'dialog', 'aria-label': 'Add a node' }, query, h('div', { class: 'search-filters' }, inSelect, outSelect), list);
    let results = [];
    let active = 0;

    const pick = (def) => {
      this.close();
      onPick(def);
    };
    const render = () => {
      const typed = parseQuery(query.value);
      const accept = typeFilter(typed.input ?? inSelect.value, typed.output ?? outSelect.value);
      // A typed query shows its best matches; an empty one lists every node the filters accept.
      results = searchNodes(defs, typed.text, accept, typed.text.trim() ? 60 : defs.length);
      active = Math.min(active, Math.max(0, results.length - 1));
      list.replaceChildren(...results.map((def, i) => {
        const dots = (types_) => types_.map((t) => h('span', { class: 'dot', title: t, style: { background: typeColor(t) } }));
        const row = h('div', { class: `search-item${i === active ? ' active' : ''}`, role: 'option', dataset: { type: def.name } },
          h('span', { class: 'search-name' }, def.displayName),
          def.displayName !== def.name ? h('span', { class: 'search-id' }, def.name) : null,
          h('span', { class: 'search-io' }, ...dots(def.sockets.map((s) => s.type)), h('span', { class: 'arrow' }, '→'), ...dots(def.outputs.map((o) => o.type))),
          h('span', { class: 'search-cat' }, def.category));
        row.addEventListener('pointerdown', (e) => { e.preventDefault(); pick(def); });
        return row;
      }));
      if (!results.length) list.append(h('div', { class: 'search-empty' }, 'No node matches.'));
    };
    query.addEventListener('input', () => { active = 0; render(); });
    for (const s of [inSelect, outSelect]) s.addEventListener('change', () => { active = 0; render(); query.focus(); });
    el.addEventListener('keydown', (e) => {
      e.stopPropagation();
      if (e.key === 'ArrowDown') active = Math.min(results.length - 1, active + 1);
      else if (e.key === 'ArrowUp') active = Math.max(0, active - 1);
      else if (e.key === 'Enter') { if (results[active]) pick(results[active]); return; }
      else if (e.key === 'Escape') { this.close(); return; } else return;
      e.preventDefault();
      render();
      list.children[active]?.scrollIntoView({ block: 'nearest' });
    });
    this.#el = el;
    this.root.append(el);
    render();
    placeWithin(el, clientX - 20, clientY - 20);
    query.focus();
  }
}
