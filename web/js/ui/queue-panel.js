// The queue and history panel: the running job (interrupt), pending jobs (cancel), and past jobs
// with their first image (load their workflow, queue them again). Refreshed when the server's
// queue changes.

import { h } from './dom.js';

function firstImage(outputs) {
  for (const out of Object.values(outputs ?? {})) if (out.images?.length) return out.images[0];
  return null;
}

export class QueuePanel {
  #timer = 0;

  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.list = h('div', { class: 'panel-body' });
    root.append(h('div', { class: 'panel-head' }, h('h2', {}, 'Queue'),
      h('button', { class: 'small', onclick: () => this.refresh() }, 'Refresh'),
      h('button', { class: 'small', onclick: () => this.#act(app.api.clearQueue()) }, 'Clear pending')), this.list);
    app.execution.on('change', ({ kind }) => {
      if (['status', 'execution_start', 'execution_success', 'execution_error', 'execution_interrupted'].includes(kind)) this.refreshSoon();
    });
  }

  get visible() { return !this.root.hidden; }

  /** Run a queue/history request, then show the new state (or why it failed). */
  async #act(request) {
    try {
      await request;
    } catch (error) {
      this.app.ui.toast(error.message, 'error');
    }
    await this.refresh();
  }

  refreshSoon() {
    if (!this.visible) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.refresh(), 150);
  }

  async refresh() {
    const { api } = this.app;
    try {
      const [queue, history] = await Promise.all([api.getQueue(), api.getHistory(40)]);
      this.render(queue, history);
    } catch (error) {
      this.list.replaceChildren(h('p', { class: 'muted' }, `Could not read the queue: ${error.message}`));
    }
  }

  #job(item, state, extra = []) {
    const [number, promptId, prompt] = item;
    return h('div', { class: `job ${state}`, dataset: { promptId } },
      h('div', { class: 'job-line' }, h('span', { class: 'job-state' }, state), h('span', { class: 'job-id', title: promptId }, `#${number}`),
        h('span', { class: 'muted' }, `${Object.keys(prompt ?? {}).length} nodes`)),
      h('div', { class: 'job-actions' }, ...extra));
  }

  render(queue, history) {
    const { app } = this;
    const rows = [];
    for (const item of queue.queue_running ?? []) {
      rows.push(this.#job(item, 'running', [h('button', { class: 'small', onclick: () => app.interrupt(item[1]) }, 'Interrupt')]));
    }
    for (const item of queue.queue_pending ?? []) {
      rows.push(this.#job(item, 'pending', [h('button', { class: 'small cancel', onclick: () => this.#act(app.api.deleteFromQueue([item[1]])) }, 'Cancel')]));
    }
    const past = Object.entries(history ?? {}).reverse();
    if (past.length) rows.push(h('h3', {}, 'History'));
    for (const [promptId, entry] of past) {
      const image = firstImage(entry.outputs);
      const status = entry.status?.status_str ?? (entry.status?.completed ? 'success' : 'unknown');
      const workflow = entry.prompt?.[3]?.extra_pnginfo?.workflow;
      const row = this.#job(entry.prompt ?? [0, promptId, {}], status, [
        workflow ? h('button', { class: 'small load', onclick: () => app.files.loadWorkflowJson(workflow, { name: null, outputs: entry.outputs }) }, 'Load workflow') : null,
        h('button', { class: 'small requeue', onclick: () => app.requeue(entry) }, 'Queue again'),
        h('button', { class: 'small', onclick: () => this.#act(app.api.deleteHistory([promptId])) }, 'Remove'),
      ]);
      if (image) {
        const url = app.api.viewUrl(image);
        row.prepend(h('img', { class: 'job-thumb', src: url, alt: '', onclick: () => app.ui.viewer.open([url]) }));
      }
      rows.push(row);
    }
    if (!rows.length) rows.push(h('p', { class: 'muted' }, 'Nothing queued yet. Press Queue (Ctrl+Enter) to run the workflow.'));
    this.list.replaceChildren(...rows);
  }
}
