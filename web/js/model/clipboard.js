// Copy and paste of a selection as plain JSON (so it can travel through localStorage to another
// tab, or the system clipboard). Links between copied nodes come along; with `keepInputs`, links
// into the copy from nodes that stay behind are re-made too (ComfyUI's Ctrl+Shift+V).

import { nodeBounds } from './geometry.js';

export const CLIPBOARD_KIND = 'weft/clipboard@1';

const clone = (value) => structuredClone(value);

/** Capture nodes `nodeIds` and groups `groupIds` of `doc`. */
export function copySelection(doc, nodeIds, groupIds = []) {
  const ids = new Set(nodeIds);
  const nodes = [...ids].map((id) => doc.nodes.get(id)).filter(Boolean).map(clone);
  const links = [...doc.links.values()].filter((l) => ids.has(l.target_id)).map(clone);
  const groups = groupIds.map((id) => doc.groups.get(id)).filter(Boolean).map(clone);
  const boxes = [...nodes.map((n) => nodeBounds(n, doc.defOf(n))), ...groups.map((g) => g.bounding)];
  const origin = boxes.length ? [Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1]))] : [0, 0];
  return { kind: CLIPBOARD_KIND, origin, nodes, links, groups };
}

/**
 * Paste a clip so that its top-left lands on `at`. Returns the new node ids.
 * Nodes whose type this server lacks are pasted as they are (drawn as missing).
 */
export function pasteClip(doc, clip, at, { keepInputs = false } = {}) {
  if (clip?.kind !== CLIPBOARD_KIND) throw new Error('not a Weft clipboard');
  const dx = at[0] - clip.origin[0];
  const dy = at[1] - clip.origin[1];
  const newId = new Map();
  for (const raw of clip.nodes) {
    const node = clone(raw);
    node.id = ++doc.state.lastNodeId;
    newId.set(raw.id, node.id);
    node.pos = [node.pos[0] + dx, node.pos[1] + dy];
    node.outputs = node.outputs.map((o) => ({ ...o, links: [] }));
    node.inputs = node.inputs.map((i) => ({ ...i, link: null }));
    doc.insertNode(node);
  }
  for (const link of clip.links) {
    const target = newId.get(link.target_id);
    const origin = newId.get(link.origin_id) ?? (keepInputs && doc.nodes.has(link.origin_id) ? link.origin_id : null);
    if (origin == null) continue;
    try {
      doc.connect(origin, link.origin_slot, target, link.target_slot);
    } catch {
      // A link the current types refuse (e.g. the source changed) is simply not re-made.
    }
  }
  // Widget sockets that lost their link become plain widgets again.
  for (const id of newId.values()) {
    const node = doc.nodes.get(id);
    for (const input of [...node.inputs]) {
      if (input.widget && input.link == null && doc.defOf(node).widgets.some((w) => w.name === input.widget.name)) {
        doc.removeWidgetInput(id, input.widget.name);
      }
    }
  }
  for (const raw of clip.groups) {
    const [x, y, w, h] = raw.bounding;
    doc.addGroup([x + dx, y + dy, w, h], raw.title, raw.color);
  }
  return [...newId.values()];
}
