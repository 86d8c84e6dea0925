// Every user command once, with its keyboard shortcut: menus, the toolbar and the keyboard all run
// commands by id. Editing commands are one undo step each.

import { copySelection, pasteClip, CLIPBOARD_KIND } from './model/clipboard.js';
import { nodeBounds } from './model/geometry.js';

const CLIPBOARD_KEY = 'weft.clipboard';

function keyOf(e) {
  // Letters by their physical key, so Alt/Shift combinations work on every layout.
  const key = e.code?.startsWith('Key') ? e.code.slice(3).toLowerCase() : e.key.toLowerCase();
  return `${e.ctrlKey || e.metaKey ? 'ctrl+' : ''}${e.shiftKey ? 'shift+' : ''}${e.altKey ? 'alt+' : ''}${key}`;
}

export class Commands {
  #byId = new Map();
  #byKey = new Map();

  constructor(list) {
    for (const command of list) {
      this.#byId.set(command.id, command);
      for (const key of command.keys ?? []) this.#byKey.set(key, command);
    }
  }

  run(id, ...args) {
    const command = this.#byId.get(id);
    if (!command) throw new Error(`no command ${id}`);
    return command.run(...args);
  }

  get(id) { return this.#byId.get(id); }

  hint(id) {
    const key = this.#byId.get(id)?.keys?.[0];
    return key ? key.replace('ctrl+', 'Ctrl+').replace('shift+', 'Shift+').replace('alt+', 'Alt+').replace(/\+(.)$/, (m, c) => `+${c.toUpperCase()}`) : '';
  }

  /** Run the command bound to this key press; true if one ran. */
  handleKey(e) {
    const command = this.#byKey.get(keyOf(e));
    if (!command) return false;
    command.run();
    return true;
  }
}

export function createCommands(app) {
  const { doc, history, selection, view } = app;
  const selected = () => [...selection.nodes];
  // A subgraph's input/output panels (negative ids) are part of the level, never copied.
  const copyable = () => selected().filter((id) => id >= 0);
  const step = (fn) => history.run(fn);

  const pastePoint = () => app.interaction?.lastGraphPoint ?? view.viewport.toGraph(view.width / 2, view.height / 2);
  const copy = () => {
    if (!selection.nodes.size && !selection.groups.size) return false;
    localStorage.setItem(CLIPBOARD_KEY, JSON.stringify(copySelection(doc, copyable(), [...selection.groups])));
    return true;
  };
  const paste = (keepInputs) => {
    const text = localStorage.getItem(CLIPBOARD_KEY);
    if (!text) return;
    const clip = JSON.parse(text);
    if (clip.kind !== CLIPBOARD_KIND) return;
    const ids = step(() => pasteClip(doc, clip, pastePoint(), { keepInputs }));
    selection.set({ nodes: ids });
    view.bringToFront(ids);
  };
  const deleteSelection = () => {
    if (selection.empty) return;
    step(() => {
      doc.removeNodes(selected()); // a subgraph's input/output panels refuse to go
      for (const id of selection.groups) doc.removeGroup(id);
      for (const id of selection.reroutes) doc.removeReroute(id);
    });
    selection.clear();
  };
  const duplicate = (offset) => {
    if (!copyable().length) return;
    const clip = copySelection(doc, copyable());
    const ids = step(() => pasteClip(doc, clip, [clip.origin[0] + offset, clip.origin[1] + offset]));
    selection.set({ nodes: ids });
    view.bringToFront(ids);
  };
  const groupSelection = () => {
    const boxes = selected().map((id) => nodeBounds(doc.nodes.get(id), doc.defOf(doc.nodes.get(id))));
    const pad = 20;
    let bounding;
    if (boxes.length) {
      const x = Math.min(...boxes.map((b) => b[0])) - pad;
      const y = Math.min(...boxes.map((b) => b[1])) - pad - 36;
      bounding = [x, y, Math.max(...boxes.map((b) => b[0] + b[2])) + pad - x, Math.max(...boxes.map((b) => b[1] + b[3])) + pad - y];
    } else {
      const [gx, gy] = pastePoint();
      bounding = [gx, gy, 400, 300];
    }
    const group = step(() => doc.addGroup(bounding, 'Group'));
    selection.set({ groups: [group.id] });
    app.editGroupTitle(group.id);
  };

  return new Commands([
    { id: 'undo', label: 'Undo', keys: ['ctrl+z'], run: () => { history.undo(); selection.prune(doc); } },
    { id: 'redo', label: 'Redo', keys: ['ctrl+y', 'ctrl+shift+z'], run: () => { history.redo(); selection.prune(doc); } },
    { id: 'delete', label: 'Delete', keys: ['delete', 'backspace'], run: deleteSelection },
    { id: 'copy', label: 'Copy', keys: ['ctrl+c'], run: copy },
    { id: 'cut', label: 'Cut', keys: ['ctrl+x'], run: () => { if (copy()) deleteSelection(); } },
    { id: 'paste', label: 'Paste', keys: ['ctrl+v'], run: () => paste(false) },
    { id: 'paste-with-links', label: 'Paste with input links', keys: ['ctrl+shift+v'], run: () => paste(true) },
    { id: 'duplicate', label: 'Duplicate', keys: ['ctrl+d'], run: () => duplicate(30) },
    { id: 'duplicate-in-place', label: 'Duplicate in place', run: () => duplicate(0) },
    { id: 'select-all', label: 'Select all', keys: ['ctrl+a'], run: () => selection.set({ nodes: [...doc.nodes.keys()] }) },
    { id: 'mute', label: 'Mute / unmute', keys: ['ctrl+m'], run: () => selection.nodes.size && step(() => doc.toggleMode(selected(), 2)) },
    { id: 'bypass', label: 'Bypass / restore', keys: ['ctrl+b'], run: () => selection.nodes.size && step(() => doc.toggleMode(selected(), 4)) },
    { id: 'collapse', label: 'Collapse / expand', keys: ['alt+c'], run: () => selection.nodes.size && step(() => doc.toggleCollapsed(selected())) },
    { id: 'group', label: 'Group selected nodes', keys: ['ctrl+g'], run: groupSelection },
    { id: 'fit', label: 'Fit view', keys: ['.'], run: () => view.fitView(true) },
    { id: 'queue', label: 'Queue', keys: ['ctrl+enter'], run: () => app.queue({ front: false }) },
    { id: 'queue-front', label: 'Queue at front', keys: ['ctrl+shift+enter'], run: () => app.queue({ front: true }) },
    { id: 'interrupt', label: 'Interrupt', run: () => app.interrupt() },
    { id: 'save', label: 'Save', keys: ['ctrl+s'], run: () => app.files.save() },
    { id: 'save-as', label: 'Save as…', run: () => app.files.save({ askName: true }) },
    { id: 'open', label: 'Open…', keys: ['ctrl+o'], run: () => app.files.openDialog() },
    { id: 'download', label: 'Download workflow', run: () => app.files.download() },
    { id: 'export-api', label: 'Export API prompt', run: () => app.files.exportApi() },
    { id: 'new', label: 'New (empty)', run: () => app.files.newWorkflow({ empty: true }) },
    { id: 'default-workflow', label: 'Load the starter workflow', run: () => app.files.newWorkflow({ empty: false }) },
    { id: 'search', label: 'Add node…', keys: ['ctrl+k'], run: () => app.openSearchAtCenter() },
    { id: 'refresh', label: 'Refresh model lists', keys: ['r'], run: () => app.refreshNodeDefs() },
    { id: 'open-subgraph', label: 'Open subgraph', run: (nodeId) => app.subgraphs.open(nodeId ?? [...selection.nodes][0]) },
    { id: 'close-subgraph', label: 'Close subgraph', keys: ['escape'], run: () => app.subgraphs.close() },
  ]);
}
