// Widget kinds by name. Built-ins cover the V1 widget types; extensions add kinds through
// getCustomWidgets (see extensions.js). A kind draws one row and may handle a pointer press,
// returning a gesture ({move, end, cancel}) when it wants the drag that follows.

import { numberWidget } from './number.js';
import { comboWidget } from './combo.js';
import { toggleWidget } from './toggle.js';
import { textWidget } from './text.js';
import { uploadWidget } from './upload.js';
import { paintRow } from './paint.js';
import { LayoutBoxesWidget } from './layout-boxes.js';

const unknownWidget = {
  draw(ctx, w) {
    paintRow(ctx, w, { value: typeof w.value === 'object' ? JSON.stringify(w.value) : String(w.value ?? '') });
  },
  pointerDown() { return null; },
};

/**
 * STRING widgets: the text widget, or the Weft editor a STRING input names in its `weft_widget`
 * option (`def.editor`, set by model/node-defs.js). The value stays a STRING either way.
 */
function stringWidget(editors) {
  const pick = (w) => editors[w.def.editor] ?? textWidget;
  return {
    editors,
    draw(ctx, w) { pick(w).draw(ctx, w); },
    pointerDown(env, w, event) { return pick(w).pointerDown(env, w, event); },
  };
}

/** A fresh set per editor: some kinds hold view state (the selected layout box). */
export function builtinWidgetKinds() {
  return new Map([
    ['INT', numberWidget], ['FLOAT', numberWidget], ['COMBO', comboWidget], ['CONTROL', comboWidget],
    ['BOOLEAN', toggleWidget], ['STRING', stringWidget({ layout_boxes: new LayoutBoxesWidget() })],
    ['IMAGEUPLOAD', uploadWidget], ['UNKNOWN', unknownWidget],
  ]);
}

export { unknownWidget };
