// The Templates browser: every workflow template the server knows (GET /template_catalogue: Weft's
// own, ComfyUI's installed template packages, node packs' example workflows) as cards with their
// thumbnails, filtered as you type. One click opens a template as a new, unsaved workflow; what the
// server lacks to run it (node types, model files) shows on its card and again when it opens.

import { h } from './dom.js';

const SOURCES = [['', 'All sources'], ['weft', 'Weft'], ['comfyui', 'ComfyUI'], ['pack', 'Node packs']];

/** Whether a catalogue entry matches the search text: every word in its title or description. */
export function matchesQuery(entry, query) {
  const text = `${entry.title} ${entry.description}`.toLowerCase();
  return query.toLowerCase().split(/\s+/).filter(Boolean).every((word) => text.includes(word));
}

export function sourceLabel(source) {
  if (source === 'weft') return 'Weft';
  if (source === 'comfyui') return 'ComfyUI';
  return source.startsWith('pack:') ? `Pack: ${source.slice(5)}` : source;
}

export function missingSummary(entry) {
  const parts = [];
  if (entry.missing_nodes.length) parts.push(`nodes ${entry.missing_nodes.join(', ')}`);
  if (entry.missing_models.length) {
    parts.push(`models ${entry.missing_models.map((m) => (m.directory ? `${m.name} (${m.directory})` : m.name)).join(', ')}`);
  }
  return parts.length ? `Missing: ${parts.join('; ')}` : '';
}

/** Replace input file names in a workflow's widget values (root graph and subgraphs). */
function renameInputs(workflow, renames) {
  const graphs = [workflow, ...(workflow.definitions?.subgraphs ?? [])];
  for (const node of graphs.flatMap((g) => g.nodes ?? [])) {
    if (Array.isArray(node.widgets_values)) node.widgets_values = node.widgets_values.map((v) => renames.get(v) ?? v);
  }
}

export class TemplatesBrowser {
  #overlay = null;
  #cards = [];
  #opening = false;
  #sections = [];
  #escape = (e) => { if (e.key === 'Escape') this.close(); };

  constructor(app) {
    this.app = app;
  }

  get isOpen() { return Boolean(this.#overlay?.isConnected); }

  async open() {
    if (this.isOpen) return;
    this.search = h('input', { type: 'search', class: 'templates-search', placeholder: 'Search templates', 'aria-label': 'Search templates' });
    this.source = h('select', { class: 'templates-source', 'aria-label': 'Source' }, SOURCES.map(([value, label]) => h('option', { value }, label)));
    this.readyOnly = h('input', { type: 'checkbox', class: 'templates-ready' });
    this.grid = h('div', { class: 'templates-grid' }, h('p', { class: 'muted' }, 'Loading templates…'));
    this.count = h('span', { class: 'templates-count muted' });
    const dialog = h('div', { class: 'templates-browser', role: 'dialog', 'aria-label': 'Workflow templates' },
      h('div', { class: 'templates-head' }, h('h2', {}, 'Templates'), this.search, this.source,
        h('label', { class: 'templates-ready-label' }, this.readyOnly, 'Ready to run'), this.count,
        h('button', { class: 'small templates-close', title: 'Close (Esc)', onclick: () => this.close() }, '✕')),
      this.grid);
    this.#overlay = h('div', { class: 'dialog-overlay templates-overlay', onclick: (e) => { if (e.target === this.#overlay) this.close(); } }, dialog);
    this.#overlay.addEventListener('keydown', (e) => {
      e.stopPropagation();  // the canvas's shortcuts stay out of the search box
      this.#escape(e);
    });
    window.addEventListener('keydown', this.#escape);  // also when the focus is outside the dialog
    for (const control of [this.search, this.source, this.readyOnly]) control.addEventListener('input', () => this.#filter());
    this.app.ui.root.append(this.#overlay);
    this.search.focus();
    try {
      const { templates } = await this.app.api.json('/template_catalogue');
      this.#render(templates);
    } catch (error) {
      this.grid.replaceChildren(h('p', { class: 'muted' }, `Could not list templates: ${error.message}`));
    }
  }

  close() {
    window.removeEventListener('keydown', this.#escape);
    this.#overlay?.remove();
    this.#overlay = null;
    this.#cards = [];
    this.#sections = [];
  }

  #card(entry) {
    const missing = missingSummary(entry);
    const picture = entry.thumbnail
      ? h('img', { class: 'template-thumb', src: this.app.api.url(entry.thumbnail), alt: '', loading: 'lazy' })
      : h('div', { class: 'template-thumb placeholder', 'aria-hidden': 'true' }, entry.title.slice(0, 1).toUpperCase());
    return h('button', { class: `template-card${missing ? ' incomplete' : ''}`, dataset: { id: entry.id, name: entry.name }, title: entry.description, onclick: () => this.openTemplate(entry) },
      picture,
      h('span', { class: 'template-title' }, entry.title),
      h('span', { class: 'template-source' }, sourceLabel(entry.source)),
      entry.description ? h('span', { class: 'template-description' }, entry.description) : null,
      missing ? h('span', { class: 'template-missing' }, missing) : null);
  }

  #render(templates) {
    const sections = new Map();
    this.#cards = templates.map((entry) => {
      const key = `${entry.source.startsWith('pack:') ? 'pack' : entry.source}\u0000${entry.category}`;
      if (!sections.has(key)) sections.set(key, { title: entry.category || sourceLabel(entry.source), cards: [] });
      const card = this.#card(entry);
      sections.get(key).cards.push(card);
      return { entry, card };
    });
    this.#sections = [...sections.values()].map(({ title, cards }) => {
      const section = h('section', { class: 'templates-section' }, h('h3', {}, title), h('div', { class: 'templates-cards' }, cards));
      return { section, cards };
    });
    this.grid.replaceChildren(...this.#sections.map((s) => s.section));
    if (!templates.length) this.grid.append(h('p', { class: 'muted' }, 'No templates are installed.'));
    this.#filter();
  }

  #filter() {
    const query = this.search.value.trim();
    const source = this.source.value;
    const readyOnly = this.readyOnly.checked;
    let shown = 0;
    for (const { entry, card } of this.#cards) {
      const visible = matchesQuery(entry, query)
        && (!source || (source === 'pack' ? entry.source.startsWith('pack:') : entry.source === source))
        && (!readyOnly || (!entry.missing_nodes.length && !entry.missing_models.length));
      card.hidden = !visible;
      shown += visible;
    }
    for (const { section, cards } of this.#sections) section.hidden = cards.every((c) => c.hidden);
    this.count.textContent = `${shown} of ${this.#cards.length}`;
  }

  /** Upload the pictures a template loads (identical files are reused by the server); the names
   *  they got when they differ from the template's. */
  async #uploadInputs(entry) {
    const renames = new Map();
    for (const input of entry.inputs ?? []) {
      const blob = await (await this.app.api.fetch(input.url)).blob();
      const stored = await this.app.api.uploadImage(new File([blob], input.file, { type: blob.type }));
      const value = stored.subfolder ? `${stored.subfolder}/${stored.name}` : stored.name;
      if (value !== input.file) renames.set(input.file, value);
    }
    if (entry.inputs?.length) this.app.catalog.update(await this.app.api.getObjectInfo());  // the combos list them now
    return renames;
  }

  /** Open a template as a new, unsaved workflow (Save asks for a name). */
  async openTemplate(entry) {
    if (this.#opening) return false;
    this.#opening = true;
    try {
      const renames = await this.#uploadInputs(entry);
      const workflow = await this.app.api.json(entry.workflow);
      renameInputs(workflow, renames);
      this.close();
      if (!this.app.files.loadWorkflowJson(workflow, { name: null })) return false;
      this.app.view.fitView(false);  // a template's saved camera was for its author's window
      this.#tellMissing(entry);
      return true;
    } catch (error) {
      this.app.ui.toast(`Could not open “${entry.title}”: ${error.message}`, 'error');
      return false;
    } finally {
      this.#opening = false;
    }
  }

  /** What the server lacks, beyond the node types the file loader already named. */
  #tellMissing(entry) {
    const { doc } = this.app;
    const named = new Set([...doc.nodes.values()].filter((n) => doc.defOf(n).missing).map((n) => n.type));
    const rest = { ...entry, missing_nodes: entry.missing_nodes.filter((t) => !named.has(t)) };
    const message = missingSummary(rest);
    if (message) this.app.ui.toast(`“${entry.title}” — ${message}`, 'error');
  }
}
