// Extensions: JS modules listed by GET /extensions are imported at start-up. A module registers
// itself with `registerExtension({name, setup, beforeRegisterNodeDef, nodeCreated, getCustomWidgets})`
// — reached as `app.registerExtension` from `import { app } from "/scripts/app.js"`, or as
// `window.weft.registerExtension`. See docs/editor.md for the hooks and the widget interface.

export class ExtensionHost {
  #extensions = [];

  constructor(app) {
    this.app = app;
    this.failures = [];
  }

  get names() {
    return this.#extensions.map((e) => e.name);
  }

  register(extension) {
    if (!extension || typeof extension.name !== 'string' || !extension.name) throw new Error('an extension needs a name');
    if (this.#extensions.some((e) => e.name === extension.name)) throw new Error(`extension ${extension.name} is already registered`);
    this.#extensions.push(extension);
  }

  /** Import every module; one that fails is reported and skipped. */
  async load(urls) {
    for (const url of urls ?? []) {
      try {
        await import(url);
      } catch (error) {
        this.failures.push({ url, error: String(error) });
        console.warn(`Weft: extension ${url} failed to load:`, error);
      }
    }
  }

  #each(hook, ...args) {
    for (const ext of this.#extensions) {
      if (typeof ext[hook] !== 'function') continue;
      try {
        ext[hook](...args, this.app);
      } catch (error) {
        console.warn(`Weft: ${ext.name}.${hook} failed:`, error);
      }
    }
  }

  /** Widget kinds by type name, from every extension's getCustomWidgets(app). */
  customWidgets() {
    const kinds = new Map();
    for (const ext of this.#extensions) {
      if (typeof ext.getCustomWidgets !== 'function') continue;
      try {
        for (const [type, kind] of Object.entries(ext.getCustomWidgets(this.app) ?? {})) kinds.set(type, kind);
      } catch (error) {
        console.warn(`Weft: ${ext.name}.getCustomWidgets failed:`, error);
      }
    }
    return kinds;
  }

  /** Called with each parsed node definition (mutable) and its raw /object_info entry. */
  beforeRegisterNodeDef(def, info) {
    this.#each('beforeRegisterNodeDef', def, info);
  }

  nodeCreated(node) {
    this.#each('nodeCreated', node);
  }

  async setup() {
    for (const ext of this.#extensions) {
      try {
        await ext.setup?.(this.app);
      } catch (error) {
        console.warn(`Weft: ${ext.name}.setup failed:`, error);
      }
    }
  }
}
