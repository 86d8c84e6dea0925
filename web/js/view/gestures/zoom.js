// Zoom around the pointer: the mouse wheel (and trackpad pinches, which browsers report as wheel
// events with ctrlKey) and two-finger touch pinches.

const WHEEL_SENSITIVITY = 0.0015;

export function wheelZoom(env, event) {
  const rect = env.view.canvas.getBoundingClientRect();
  // Line- and page-mode wheels report small deltas; scale them to pixels.
  const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
  const delta = Math.max(-300, Math.min(300, event.deltaY * unit));
  const factor = Math.exp(-delta * (event.ctrlKey ? WHEEL_SENSITIVITY * 4 : WHEEL_SENSITIVITY));
  env.view.viewport.zoomAt(event.clientX - rect.left, event.clientY - rect.top, factor);
  env.view.requestDraw();
}

/** A pinch between two touch pointers: zooms around their midpoint and pans with it. */
export function startPinch(env, pointers) {
  const rect = env.view.canvas.getBoundingClientRect();
  const measure = () => {
    const [a, b] = [...pointers.values()];
    return { mid: [(a.x + b.x) / 2 - rect.left, (a.y + b.y) / 2 - rect.top], dist: Math.hypot(a.x - b.x, a.y - b.y) };
  };
  let last = measure();
  return {
    move() {
      if (pointers.size < 2) return;
      const now = measure();
      env.view.viewport.panBy(now.mid[0] - last.mid[0], now.mid[1] - last.mid[1]);
      if (last.dist > 0) env.view.viewport.zoomAt(now.mid[0], now.mid[1], now.dist / last.dist);
      last = now;
      env.view.requestDraw();
    },
    end() {},
    cancel() {},
  };
}
