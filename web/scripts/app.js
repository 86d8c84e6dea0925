// For extension modules: `import { app } from "/scripts/app.js"` (or "../../scripts/app.js" from
// /extensions/<pack>/) gives the running editor, whose registerExtension adds the extension.
// Extension modules are imported after the editor exists, so this binding is already set.
export const app = globalThis.weft;
