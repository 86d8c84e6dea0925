// Pan: drag the empty canvas (or with the middle button, or holding space, anywhere).
// A press on the empty canvas that does not move is a click: it clears the selection.

export function startPan(env, event, { clearOnClick = true } = {}) {
  let last = [event.clientX, event.clientY];
  let moved = false;
  env.view.canvas.style.cursor = 'grabbing';
  return {
    move(e) {
      const dx = e.clientX - last[0];
      const dy = e.clientY - last[1];
      if (!moved && Math.abs(e.clientX - event.clientX) + Math.abs(e.clientY - event.clientY) < 3) return;
      moved = true;
      last = [e.clientX, e.clientY];
      env.view.viewport.panBy(dx, dy);
      env.view.requestDraw();
    },
    end() {
      env.view.canvas.style.cursor = '';
      if (!moved && clearOnClick) env.selection.clear();
    },
    cancel() { env.view.canvas.style.cursor = ''; },
  };
}
