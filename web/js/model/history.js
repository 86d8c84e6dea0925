// Undo/redo as whole-document snapshots: one step per user action. A gesture opens a step when it
// starts (begin) and closes it when it ends (commit); nested begin/commit pairs fold into the
// outermost one, so a paste that adds ten nodes and eight links is one step. A step that changed
// nothing leaves no trace. Snapshots are JSON strings: cheap to compare, immune to later mutation.

export class History {
  #doc;
  #limit;
  #undo = [];
  #redo = [];
  #depth = 0;
  #before = null;

  constructor(doc, { limit = 100 } = {}) {
    this.#doc = doc;
    this.#limit = limit;
  }

  #snapshot() {
    return JSON.stringify(this.#doc.toData());
  }

  begin() {
    if (this.#depth++ === 0) this.#before = this.#snapshot();
  }

  /** Close the step; returns true if it recorded a change. */
  commit() {
    if (this.#depth === 0) return false;
    if (--this.#depth > 0) return false;
    const before = this.#before;
    this.#before = null;
    if (this.#snapshot() === before) return false;
    this.#undo.push(before);
    if (this.#undo.length > this.#limit) this.#undo.shift();
    this.#redo = [];
    this.#doc.emit('history', this);
    return true;
  }

  /** Run `action` as one step, even if it throws (what it did before throwing is kept). */
  run(action) {
    this.begin();
    try {
      return action();
    } finally {
      this.commit();
    }
  }

  get canUndo() { return this.#undo.length > 0; }

  get canRedo() { return this.#redo.length > 0; }

  get inStep() { return this.#depth > 0; }

  undo() {
    if (!this.#undo.length || this.#depth) return false;
    this.#redo.push(this.#snapshot());
    this.#doc.load(JSON.parse(this.#undo.pop()));
    this.#doc.emit('history', this);
    return true;
  }

  redo() {
    if (!this.#redo.length || this.#depth) return false;
    this.#undo.push(this.#snapshot());
    this.#doc.load(JSON.parse(this.#redo.pop()));
    this.#doc.emit('history', this);
    return true;
  }

  /** Forget everything (a different workflow was opened), an unfinished step too. */
  clear() {
    this.#undo = [];
    this.#redo = [];
    this.#depth = 0;
    this.#before = null;
    this.#doc.emit('history', this);
  }
}
