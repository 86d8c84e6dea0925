// Drag nodes, reroute points and groups together; a group carries the nodes, reroute points and
// groups that lie inside it when the drag starts. One drag is one undo step.

export function startDragItems(env, event, { nodes = [], reroutes = [], groups = [] }) {
  const { doc, view, history } = env;
  const nodeIds = new Set(nodes);
  const rerouteIds = new Set(reroutes);
  const groupIds = new Set(groups);
  for (const id of groups) {
    for (const n of doc.nodesInGroup(id)) nodeIds.add(n);
    for (const r of doc.reroutesInGroup(id)) rerouteIds.add(r);
    for (const g of doc.groupsInGroup(id)) groupIds.add(g);
  }
  let last = view.graphPoint(event);
  let moved = false;
  history.begin();
  view.bringToFront(nodeIds);
  return {
    move(e) {
      const p = view.graphPoint(e);
      const dx = p[0] - last[0];
      const dy = p[1] - last[1];
      if (!moved && Math.hypot(e.clientX - event.clientX, e.clientY - event.clientY) < 3) return;
      moved = true;
      last = p;
      doc.moveNodes([...nodeIds], dx, dy);
      doc.moveReroutes([...rerouteIds], dx, dy);
      for (const id of groupIds) {
        const [x, y, w, h] = doc.groups.get(id).bounding;
        doc.updateGroup(id, { bounding: [x + dx, y + dy, w, h] });
      }
    },
    end() {
      // Whole pixels in the saved file, as ComfyUI writes them.
      for (const id of nodeIds) {
        const node = doc.nodes.get(id);
        if (node) node.pos = node.pos.map(Math.round);
      }
      for (const id of groupIds) {
        const g = doc.groups.get(id);
        if (g) g.bounding = g.bounding.map(Math.round);
      }
      history.commit();
    },
    cancel() { history.commit(); },
  };
}
