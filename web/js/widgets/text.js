// STRING widgets. Single-line: a row whose click opens an inline editor. Multi-line: a textarea in
// the canvas' DOM layer (view/dom-widgets.js); the canvas only paints its frame when zoomed far out.

import { paintRow, roundRect, fitText } from './paint.js';
import { FONT, TEXT_DIM, WIDGET_BG, WIDGET_BORDER } from '../view/theme.js';

export const textWidget = {
  draw(ctx, w) {
    if (!w.def.multiline) {
      paintRow(ctx, w, { value: w.value ?? '' });
      return;
    }
    const { x, y, w: width, h } = w.rect;
    roundRect(ctx, x, y, width, h, 6);
    ctx.fillStyle = WIDGET_BG;
    ctx.fill();
    ctx.strokeStyle = WIDGET_BORDER;
    ctx.stroke();
    if (w.domActive || w.lowDetail) return;
    ctx.font = FONT;
    ctx.fillStyle = TEXT_DIM;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    const lines = String(w.value ?? '').split('\n').slice(0, Math.floor((h - 8) / 16));
    lines.forEach((line, i) => ctx.fillText(fitText(ctx, line, width - 12), x + 6, y + 5 + i * 16));
  },

  pointerDown(env, w) {
    if (w.def.multiline) return null;
    env.ui.editInline({
      rect: env.view.widgetClientRect(w.node.id, w.index),
      value: String(w.value ?? ''),
      placeholder: w.def.options?.placeholder ?? '',
      commit: (text) => env.history.run(() => env.doc.setWidgetValue(w.node.id, w.index, text)),
    });
    return null;
  },
};
