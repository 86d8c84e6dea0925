// Box select: Ctrl- or Shift-drag on the empty canvas selects the nodes, groups and reroute points
// the box touches (Shift adds to the selection).

import { rectsOverlap } from '../../model/geometry.js';

export function startBoxSelect(env, event) {
  const { view, doc, selection } = env;
  const start = view.graphPoint(event);
  const additive = event.shiftKey;
  const before = { nodes: [...selection.nodes], groups: [...selection.groups], reroutes: [...selection.reroutes] };
  const update = (e) => {
    const p = view.graphPoint(e);
    const box = [Math.min(start[0], p[0]), Math.min(start[1], p[1]), Math.abs(p[0] - start[0]), Math.abs(p[1] - start[1])];
    view.box = box;
    const nodes = [...doc.nodes.values()].filter((n) => rectsOverlap(doc.bounds(n), box)).map((n) => n.id);
    const groups = [...doc.groups.values()].filter((g) => rectsOverlap(g.bounding, box)
      && box[0] <= g.bounding[0] && box[1] <= g.bounding[1]
      && box[0] + box[2] >= g.bounding[0] + g.bounding[2] && box[1] + box[3] >= g.bounding[1] + g.bounding[3]).map((g) => g.id);
    const reroutes = [...doc.reroutes.values()].filter((r) => r.pos[0] >= box[0] && r.pos[0] <= box[0] + box[2] && r.pos[1] >= box[1] && r.pos[1] <= box[1] + box[3]).map((r) => r.id);
    selection.set(additive
      ? { nodes: [...before.nodes, ...nodes], groups: [...before.groups, ...groups], reroutes: [...before.reroutes, ...reroutes] }
      : { nodes, groups, reroutes });
  };
  return {
    move: update,
    end(e) {
      update(e);
      view.box = null;
      view.requestDraw();
    },
    cancel() { view.box = null; view.requestDraw(); },
  };
}
