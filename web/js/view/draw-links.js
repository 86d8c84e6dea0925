// Links as bezier curves from output to input, through any reroute points on their way; a small
// marker on each segment opens the link menu (add a reroute point there, delete). Also the link
// being dragged, and the reroute points themselves.

import * as theme from './theme.js';

/** The control points of a horizontal-tangent bezier from a to b. */
function bezier(a, b) {
  const d = Math.max(30, Math.abs(b[0] - a[0]) * 0.5);
  return [a, [a[0] + d, a[1]], [b[0] - d, b[1]], b];
}

function pointAt([p0, p1, p2, p3], t) {
  const u = 1 - t;
  return [
    u * u * u * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t * t * t * p3[0],
    u * u * u * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t * t * t * p3[1],
  ];
}

export function strokeCurve(ctx, a, b) {
  const [, c1, c2] = bezier(a, b);
  ctx.moveTo(a[0], a[1]);
  ctx.bezierCurveTo(c1[0], c1[1], c2[0], c2[1], b[0], b[1]);
}

function segmentVisible(a, b, rect) {
  const pad = 80;
  const minX = Math.min(a[0], b[0]) - pad;
  const maxX = Math.max(a[0], b[0]) + pad;
  const minY = Math.min(a[1], b[1]) - pad;
  const maxY = Math.max(a[1], b[1]) + pad;
  return maxX >= rect[0] && minX <= rect[0] + rect[2] && maxY >= rect[1] && minY <= rect[1] + rect[3];
}

/**
 * Draw every link; returns the segment markers [{linkId, afterId, x, y}] for hit tests.
 * @param {(nodeId, kind, slot) => [number, number]|null} socketPos  graph position of a socket
 */
export function drawLinks(ctx, scene, socketPos, visible) {
  const markers = [];
  const { doc } = scene;
  ctx.lineWidth = 3;
  for (const link of doc.links.values()) {
    const a = socketPos(link.origin_id, 'output', link.origin_slot);
    const b = socketPos(link.target_id, 'input', link.target_slot);
    if (!a || !b) continue;
    const path = doc.reroutePath(link);
    const points = [a, ...path.map((id) => doc.reroutes.get(id).pos), b];
    const color = theme.typeColor(link.type);
    const target = doc.nodes.get(link.target_id);
    ctx.globalAlpha = target?.mode === 2 ? 0.35 : 0.9;
    ctx.strokeStyle = color;
    ctx.beginPath();
    for (let i = 0; i + 1 < points.length; i++) {
      if (!segmentVisible(points[i], points[i + 1], visible)) continue;
      strokeCurve(ctx, points[i], points[i + 1]);
      const mid = pointAt(bezier(points[i], points[i + 1]), 0.5);
      markers.push({ linkId: link.id, afterId: i === 0 ? null : path[i - 1], x: mid[0], y: mid[1], color });
    }
    ctx.stroke();
  }
  ctx.globalAlpha = 1;
  if (!scene.lowDetail) {
    for (const m of markers) {
      ctx.beginPath();
      ctx.arc(m.x, m.y, 4, 0, Math.PI * 2);
      ctx.fillStyle = m.color;
      ctx.fill();
      ctx.strokeStyle = '#111';
      ctx.lineWidth = 1;
      ctx.stroke();
    }
  }
  return markers;
}

export function drawReroutes(ctx, scene) {
  const { doc } = scene;
  for (const reroute of doc.reroutes.values()) {
    const link = doc.linksThrough(reroute.id)[0];
    ctx.beginPath();
    ctx.arc(reroute.pos[0], reroute.pos[1], 7, 0, Math.PI * 2);
    ctx.fillStyle = theme.typeColor(link?.type ?? '*');
    ctx.fill();
    ctx.lineWidth = scene.selection.reroutes.has(reroute.id) ? 2.5 : 1;
    ctx.strokeStyle = scene.selection.reroutes.has(reroute.id) ? theme.SELECTED : '#111';
    ctx.stroke();
  }
}

/** The link following the pointer while it is dragged; red with the reason when the drop would be refused. */
export function drawPendingLink(ctx, scene, start, pointer) {
  const p = scene.pending;
  const refused = p.verdict && !p.verdict.ok;
  ctx.strokeStyle = refused ? theme.ERROR : theme.typeColor(p.type);
  ctx.lineWidth = 3;
  ctx.setLineDash(refused ? [8, 6] : []);
  ctx.beginPath();
  if (p.from.kind === 'output') strokeCurve(ctx, start, pointer);
  else strokeCurve(ctx, pointer, start);
  ctx.stroke();
  ctx.setLineDash([]);
  if (refused) {
    ctx.font = theme.FONT;
    ctx.fillStyle = theme.ERROR;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'bottom';
    ctx.fillText(`✕ ${p.verdict.reason}`, pointer[0] + 12, pointer[1] - 8);
  }
}
