// BOOLEAN widget: a click anywhere on the row flips it; shows label_on / label_off.

import { paintRow } from './paint.js';

export const toggleWidget = {
  draw(ctx, w) {
    const on = Boolean(w.value);
    paintRow(ctx, w, { value: on ? w.def.labelOn ?? 'true' : w.def.labelOff ?? 'false', valueColor: on ? '#8fe3a8' : '#b0b0b8' });
  },

  pointerDown(env, w) {
    env.history.run(() => env.doc.setWidgetValue(w.node.id, w.index, !w.value));
    return null;
  },
};
