// What lies under a graph point: a reroute point, a node part (socket, widget, title, collapse dot,
// resize corner, picture), a link marker, a group part, or nothing. Front-most first.

import { rectContains } from '../model/geometry.js';

const near = (ax, ay, bx, by, r) => (ax - bx) ** 2 + (ay - by) ** 2 <= r * r;

function hitNode(view, node, gx, gy, r) {
  const { doc } = view;
  const def = doc.defOf(node);
  const layout = view.layoutOf(node);
  const [x, y] = node.pos;
  const lx = gx - x;
  const ly = gy - y;
  for (let slot = 0; slot < node.outputs.length; slot++) {
    const p = layout.outputs[slot];
    if (p && near(lx, ly, p.x, p.y, r)) return { kind: 'output', nodeId: node.id, slot };
  }
  for (let slot = 0; slot < node.inputs.length; slot++) {
    const p = layout.inputs[slot];
    if (!p || !near(lx, ly, p.x, p.y, r)) continue;
    const input = node.inputs[slot];
    // An unlinked widget socket is hit only from its very edge; the rest of the row is the widget.
    if (input.widget && input.link == null && lx > 4) continue;
    return { kind: 'input', nodeId: node.id, slot };
  }
  const bounds = doc.bounds(node);
  if (!rectContains(bounds, gx, gy)) return null;
  if (def.compact) return { kind: 'node', nodeId: node.id };
  if (ly < 0) return lx < 26 ? { kind: 'collapse', nodeId: node.id } : { kind: 'title', nodeId: node.id };
  if (node.flags?.collapsed) return { kind: 'title', nodeId: node.id };
  if (lx > node.size[0] - 14 && ly > node.size[1] - 14) return { kind: 'resize', nodeId: node.id };
  for (const row of layout.widgets) {
    if (lx >= row.x && lx <= row.x + row.w && ly >= row.y && ly <= row.y + row.h) {
      const wdef = def.widgets[row.index];
      if (doc.isWidgetLinked(node, wdef.name)) break;
      return { kind: 'widget', nodeId: node.id, index: row.index, localX: lx - row.x, localY: ly - row.y };
    }
  }
  for (const cell of view.mediaCells.get(node.id) ?? []) {
    if (lx >= cell.x && lx <= cell.x + cell.w && ly >= cell.y && ly <= cell.y + cell.h) return { kind: 'media', nodeId: node.id, index: cell.index };
  }
  return { kind: 'node', nodeId: node.id };
}

export function hitTest(view, gx, gy) {
  const r = Math.max(10, 6 / view.viewport.scale);
  for (const reroute of [...view.doc.reroutes.values()].reverse()) {
    if (near(gx, gy, reroute.pos[0], reroute.pos[1], r)) return { kind: 'reroute', rerouteId: reroute.id };
  }
  const nodes = view.nodesInZOrder();
  for (let i = nodes.length - 1; i >= 0; i--) {
    const hit = hitNode(view, nodes[i], gx, gy, r);
    if (hit) return hit;
  }
  for (const m of view.linkMarkers) {
    if (near(gx, gy, m.x, m.y, Math.max(8, 5 / view.viewport.scale))) return { kind: 'link', linkId: m.linkId, afterId: m.afterId, x: m.x, y: m.y };
  }
  const groups = [...view.doc.groups.values()].reverse();
  for (const group of groups) {
    const [x, y, w, h] = group.bounding;
    if (!rectContains(group.bounding, gx, gy)) continue;
    if (gx > x + w - 14 && gy > y + h - 14) return { kind: 'group-resize', groupId: group.id };
    if (gy < y + (group.font_size ?? 24) + 12) return { kind: 'group-title', groupId: group.id };
  }
  const inside = groups.find((g) => rectContains(g.bounding, gx, gy));
  return { kind: 'none', groupId: inside?.id ?? null };
}
