// What is selected on the canvas: nodes, groups and reroute points. View state, not document state:
// selecting is never an undo step.

import { Emitter } from '../model/events.js';

export class Selection extends Emitter {
  constructor() {
    super();
    this.nodes = new Set();
    this.groups = new Set();
    this.reroutes = new Set();
  }

  get empty() {
    return !this.nodes.size && !this.groups.size && !this.reroutes.size;
  }

  clear() {
    if (this.empty) return;
    this.nodes.clear();
    this.groups.clear();
    this.reroutes.clear();
    this.emit('change');
  }

  /** Select exactly these. */
  set({ nodes = [], groups = [], reroutes = [] } = {}) {
    this.nodes = new Set(nodes);
    this.groups = new Set(groups);
    this.reroutes = new Set(reroutes);
    this.emit('change');
  }

  toggle(kind, id) {
    const set = this[kind];
    if (set.has(id)) set.delete(id);
    else set.add(id);
    this.emit('change');
  }

  add(kind, ids) {
    for (const id of ids) this[kind].add(id);
    this.emit('change');
  }

  /** Forget ids the document no longer has (after delete, undo, open). */
  prune(doc) {
    const before = this.nodes.size + this.groups.size + this.reroutes.size;
    this.nodes = new Set([...this.nodes].filter((id) => doc.nodes.has(id)));
    this.groups = new Set([...this.groups].filter((id) => doc.groups.has(id)));
    this.reroutes = new Set([...this.reroutes].filter((id) => doc.reroutes.has(id)));
    if (this.nodes.size + this.groups.size + this.reroutes.size !== before) this.emit('change');
  }
}
