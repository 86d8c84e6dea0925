// INT and FLOAT widgets: arrows step, a horizontal drag scrubs, a click types a value. Every value
// is clamped to the schema's min/max and snapped to its step (INT) or round grid (FLOAT).

import { paintRow, rowPart } from './paint.js';

const DRAG_PIXELS_PER_STEP = 6;

export function normalizeNumber(def, value) {
  let v = Number(value);
  if (!Number.isFinite(v)) return null;
  if (def.kind === 'INT') {
    const step = def.step || 1;
    // Snap to multiples of the step counted from zero, as ComfyUI's INT widget does.
    v = Math.round(v / step) * step;
  } else if (def.round) {
    v = Math.round((v + Number.EPSILON) / def.round) * def.round;
    v = Number(v.toFixed(def.precision ?? 6));
  }
  v = Math.min(def.max ?? Infinity, Math.max(def.min ?? -Infinity, v));
  return def.kind === 'INT' ? Math.round(v) : v;
}

export function formatNumber(def, value) {
  if (typeof value !== 'number') return String(value ?? '');
  return def.kind === 'FLOAT' ? value.toFixed(def.precision ?? 2) : String(value);
}

export const numberWidget = {
  draw(ctx, w) {
    paintRow(ctx, w, { value: formatNumber(w.def, w.value), arrows: true });
  },

  pointerDown(env, w, event) {
    const part = rowPart(w, w.localX);
    if (part !== 'middle') {
      const step = w.def.step || 1;
      const next = normalizeNumber(w.def, Number(w.value) + (part === 'left' ? -step : step));
      env.history.run(() => env.doc.setWidgetValue(w.node.id, w.index, next));
      return null;
    }
    const startX = event.clientX;
    const startValue = Number(w.value);
    let dragged = false;
    env.history.begin();
    return {
      move(e) {
        const dx = e.clientX - startX;
        if (!dragged && Math.abs(dx) < 3) return;
        dragged = true;
        const steps = Math.round(dx / DRAG_PIXELS_PER_STEP);
        const next = normalizeNumber(w.def, startValue + steps * (w.def.step || 1));
        if (next !== w.node.widgets_values[w.index]) env.doc.setWidgetValue(w.node.id, w.index, next);
      },
      end() {
        env.history.commit();
        if (dragged) return;
        env.ui.editInline({
          rect: env.view.widgetClientRect(w.node.id, w.index),
          value: formatNumber(w.def, w.value),
          numeric: true,
          commit: (text) => {
            const next = normalizeNumber(w.def, text);
            if (next != null) env.history.run(() => env.doc.setWidgetValue(w.node.id, w.index, next));
          },
        });
      },
      cancel() { env.history.commit(); },
    };
  },
};
