// A minimal event bus: the document, the execution state and the API client all speak through it.

export class Emitter {
  #handlers = new Map();

  /** Subscribe; returns a function that unsubscribes. */
  on(type, handler) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
    this.#handlers.get(type).add(handler);
    return () => this.off(type, handler);
  }

  off(type, handler) {
    this.#handlers.get(type)?.delete(handler);
  }

  emit(type, detail) {
    for (const handler of [...(this.#handlers.get(type) ?? [])]) handler(detail);
    // "*" listeners see every event, e.g. the view that only needs to know it must redraw.
    for (const handler of [...(this.#handlers.get('*') ?? [])]) handler(type, detail);
  }
}
