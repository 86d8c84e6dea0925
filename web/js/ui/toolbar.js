// The top bar: workflow name and file actions on the left, run progress in the middle, and the
// Queue button with its batch count, Interrupt and the panel toggles on the right.

import { h } from './dom.js';
import { TemplatesBrowser } from './templates-browser.js';

export class Toolbar {
  constructor(root, app) {
    this.app = app;
    const cmd = (id) => () => app.commands.run(id);
    const menuButton = (label, ids, extra = {}) => h('button', {
      ...extra,
      onclick: (e) => {
        const r = e.currentTarget.getBoundingClientRect();
        app.ui.menus.show(ids.map((id) => (id ? { label: app.commands.get(id).label, hint: app.commands.hint(id), run: cmd(id) } : null)), r.left, r.bottom + 4);
      },
    }, label, ' ▾');
    this.name = h('span', { class: 'workflow-name', title: 'Current workflow' });
    this.progressBar = h('div', { class: 'progress-fill' });
    this.progressText = h('span', { class: 'progress-text' }, 'Idle');
    this.batch = h('input', { id: 'batch-count', type: 'number', min: '1', max: '100', value: '1', title: 'Batch count: how many times to queue' });
    this.queueCount = h('span', { class: 'badge', id: 'queue-size' }, '0');
    this.connection = h('span', { class: 'connection', title: 'Server connection' });
    root.append(
      h('div', { class: 'brand' }, 'Weft'),
      this.name,
      menuButton('Workflow', ['new', 'default-workflow', null, 'open', 'save', 'save-as', null, 'download', 'export-api'], { id: 'workflow-menu' }),
      h('button', { id: 'open-button', onclick: cmd('open'), title: 'Open a workflow (.json) or an image made by Weft or ComfyUI (.png)' }, 'Open'),
      h('button', { id: 'templates-button', onclick: () => (this.templates ??= new TemplatesBrowser(app)).open(), title: 'Browse workflow templates: Weft\'s, ComfyUI\'s and node packs\' examples' }, 'Templates'),
      h('button', { id: 'save-button', onclick: cmd('save'), title: 'Save to the server (Ctrl+S)' }, 'Save'),
      menuButton('Edit', ['undo', 'redo', null, 'copy', 'paste', 'duplicate', 'delete', null, 'group', 'mute', 'bypass', 'collapse', null, 'select-all', 'fit', null, 'refresh']),
      h('div', { class: 'progress', id: 'progress' }, this.progressBar, this.progressText),
      this.connection,
      h('label', { class: 'batch-label', for: 'batch-count' }, 'Batch'),
      this.batch,
      h('button', { id: 'queue-button', class: 'primary', onclick: cmd('queue'), title: 'Queue the workflow (Ctrl+Enter)' }, 'Queue'),
      h('button', { id: 'interrupt-button', onclick: cmd('interrupt'), title: 'Stop the running job' }, 'Interrupt'),
      h('button', { id: 'queue-toggle', onclick: () => app.ui.togglePanel('queue') }, 'Queue ', this.queueCount),
      h('button', { id: 'workflows-toggle', onclick: () => app.ui.togglePanel('workflows') }, 'Workflows'),
    );
    app.execution.on('change', () => this.refresh());
    app.api.on('connection', ({ connected }) => {
      this.connection.classList.toggle('down', !connected);
      this.connection.title = connected ? 'Connected to the server' : 'Reconnecting to the server…';
    });
    this.refresh();
  }

  get batchCount() {
    return Math.max(1, Math.min(100, Math.round(Number(this.batch.value) || 1)));
  }

  setName(name, dirty) {
    this.name.textContent = `${name ?? 'Unsaved workflow'}${dirty ? ' •' : ''}`;
  }

  refresh() {
    const { execution, doc } = this.app;
    this.queueCount.textContent = String(execution.queueRemaining);
    const fraction = execution.overallProgress();
    this.progressBar.style.width = `${Math.round((fraction ?? 0) * 100)}%`;
    if (fraction == null) {
      const last = execution.lastResult;
      this.progressText.textContent = last ? { success: 'Done', error: 'Failed', interrupted: 'Interrupted' }[last.result] : 'Idle';
      return;
    }
    const running = execution.executingNode;
    const viewId = running != null ? execution.viewIdOf(running) : null;
    const node = viewId != null ? doc.nodes.get(Number(viewId)) : null;
    const steps = running != null ? execution.nodeProgress.get(running) : null;
    const label = node ? doc.titleOf(node) : running ?? 'Starting';
    this.progressText.textContent = `${Math.round(fraction * 100)}% · ${label}${steps ? ` ${steps.value}/${steps.max}` : ''}`;
  }
}
