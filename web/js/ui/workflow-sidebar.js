// Workflows saved on the server (user/…/workflows/ through the userdata API): open, delete, and
// save the current one.

import { h } from './dom.js';

export const WORKFLOW_DIR = 'workflows';

export class WorkflowSidebar {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.list = h('div', { class: 'panel-body', id: 'workflow-list' });
    root.append(h('div', { class: 'panel-head' }, h('h2', {}, 'Workflows'),
      h('button', { class: 'small', onclick: () => app.commands.run('save-as') }, 'Save current…')), this.list);
  }

  get visible() { return !this.root.hidden; }

  async refresh() {
    let files;
    try {
      files = await this.app.api.listUserData(WORKFLOW_DIR);
    } catch (error) {
      files = error.status === 404 ? [] : null;
      if (!files) {
        this.list.replaceChildren(h('p', { class: 'muted' }, `Could not list workflows: ${error.message}`));
        return;
      }
    }
    const names = files.map((f) => (typeof f === 'string' ? f : f.path)).filter((f) => f.endsWith('.json')).sort((a, b) => a.localeCompare(b));
    if (!names.length) {
      this.list.replaceChildren(h('p', { class: 'muted' }, 'No saved workflows yet. Save one with Ctrl+S.'));
      return;
    }
    const current = this.app.files.currentName;
    this.list.replaceChildren(...names.map((file) => {
      const name = file.replace(/\.json$/, '');
      return h('div', { class: `workflow-item${name === current ? ' current' : ''}`, dataset: { name } },
        h('button', { class: 'workflow-open', title: `Open ${name}`, onclick: () => this.app.files.openSaved(name) }, name),
        h('button', { class: 'small danger', title: `Delete ${name}`, onclick: () => this.app.files.deleteSaved(name).then(() => this.refresh()) }, '✕'));
    }));
  }
}
