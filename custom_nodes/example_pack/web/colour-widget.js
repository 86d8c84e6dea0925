// The example pack's editor extension: a widget for inputs of type COLOR. It is drawn as a swatch;
// clicking it steps through a small palette (one undo step per click).
import { app } from '../../scripts/app.js';

const PALETTE = ['#ff8800', '#2266ff', '#22aa44', '#aa22aa', '#ffffff', '#000000'];

app.registerExtension({
  name: 'weft.example.colour',
  getCustomWidgets() {
    return {
      COLOR: {
        defaultValue: (options) => options.default ?? '#ff8800',
        draw(ctx, w) {
          const { x, y, w: width, h } = w.rect;
          ctx.fillStyle = w.value;
          ctx.beginPath();
          ctx.roundRect(x, y, width, h, h / 2);
          ctx.fill();
          ctx.fillStyle = w.value === '#000000' ? '#fff' : '#000';
          ctx.font = '12px sans-serif';
          ctx.textBaseline = 'middle';
          ctx.fillText(`${w.label}: ${w.value}`, x + 10, y + h / 2);
        },
        pointerDown(env, w) {
          const next = PALETTE[(PALETTE.indexOf(w.value) + 1) % PALETTE.length];
          env.history.run(() => env.doc.setWidgetValue(w.node.id, w.index, next));
          return null;
        },
      },
    };
  },
});
