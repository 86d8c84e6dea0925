// Widget kinds by name. Built-ins cover the V1 widget types; extensions add kinds through
// getCustomWidgets (see extensions.js). A kind draws one row and may handle a pointer press,
// returning a gesture ({move, end, cancel}) when it wants the drag that follows.

import { numberWidget } from './number.js';
import { comboWidget } from './combo.js';
import { toggleWidget } from './toggle.js';
import { textWidget } from './text.js';
import { uploadWidget } from './upload.js';
import { paintRow } from './paint.js';

const unknownWidget = {
  draw(ctx, w) {
    paintRow(ctx, w, { value: typeof w.value === 'object' ? JSON.stringify(w.value) : String(w.value ?? '') });
  },
  pointerDown() { return null; },
};

export function builtinWidgetKinds() {
  return new Map([
    ['INT', numberWidget], ['FLOAT', numberWidget], ['COMBO', comboWidget], ['CONTROL', comboWidget],
    ['BOOLEAN', toggleWidget], ['STRING', textWidget], ['IMAGEUPLOAD', uploadWidget], ['UNKNOWN', unknownWidget],
  ]);
}

export { unknownWidget };
