// COMBO widgets (and the control_after_generate selector, which is a combo of modes): arrows step
// through the choices, a click opens the list with a filter box.

import { paintRow, rowPart } from './paint.js';

function choicesOf(def) {
  return def.values ?? [];
}

export const comboWidget = {
  draw(ctx, w) {
    const missing = w.def.kind === 'COMBO' && w.value !== '' && !choicesOf(w.def).includes(w.value);
    paintRow(ctx, w, { value: w.value ?? '', arrows: true, valueColor: missing ? '#ff8a80' : undefined });
  },

  pointerDown(env, w) {
    const choices = choicesOf(w.def);
    const set = (value) => env.history.run(() => env.doc.setWidgetValue(w.node.id, w.index, value));
    const part = rowPart(w, w.localX);
    if (part !== 'middle') {
      if (!choices.length) return null;
      const at = choices.indexOf(w.value);
      const next = part === 'left' ? Math.max(0, at - 1) : Math.min(choices.length - 1, at + 1);
      set(choices[at < 0 ? 0 : next]);
      return null;
    }
    const rect = env.view.widgetClientRect(w.node.id, w.index);
    env.ui.pickFromList({
      x: rect.x, y: rect.y + rect.h, minWidth: rect.w, items: choices, current: w.value,
      title: w.def.name, onPick: set,
    });
    return null;
  },
};
