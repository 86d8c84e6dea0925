// Resize a node or a group from its bottom-right corner. One resize is one undo step.

import { nodeLayout } from '../../model/geometry.js';

export function startResizeNode(env, event, nodeId) {
  const { doc, view, history } = env;
  const node = doc.nodes.get(nodeId);
  const start = view.graphPoint(event);
  const size0 = [...node.size];
  const minHeight = nodeLayout(node, doc.defOf(node)).contentBottom;
  history.begin();
  return {
    move(e) {
      const p = view.graphPoint(e);
      doc.setNodeSize(nodeId, [Math.max(100, size0[0] + p[0] - start[0]), Math.max(minHeight, size0[1] + p[1] - start[1])]);
    },
    end() { history.commit(); },
    cancel() { history.commit(); },
  };
}

export function startResizeGroup(env, event, groupId) {
  const { doc, view, history } = env;
  const start = view.graphPoint(event);
  const [x, y, w0, h0] = doc.groups.get(groupId).bounding;
  history.begin();
  return {
    move(e) {
      const p = view.graphPoint(e);
      doc.updateGroup(groupId, { bounding: [x, y, Math.round(Math.max(140, w0 + p[0] - start[0])), Math.round(Math.max(80, h0 + p[1] - start[1]))] });
    },
    end() { history.commit(); },
    cancel() { history.commit(); },
  };
}
