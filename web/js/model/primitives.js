// PrimitiveNode (a frontend-only node) takes its widget from the first widget input it feeds, the
// way ComfyUI's frontend does: numbers and combos get a `control_after_generate` widget (default
// "fixed"), combos also a `control_filter_list` text that limits which choices the control visits.
// So a primitive's `widgets_values` is [value], [value, mode] or [value, mode, filter].

import { VIRTUAL_NODE_DEFS } from './virtual-nodes.js';
import { CONTROL_MODES } from './node-defs.js';
import { COMBO } from './types.js';

/** The widget of `targetDef` that the input `widgetName` drives, or null. */
function targetWidget(targetDef, widgetName) {
  return targetDef?.widgets.find((w) => w.name === widgetName && !w.frontendOnly) ?? null;
}

/**
 * The definition of one PrimitiveNode, derived from the widget it drives.
 * @param {object} node        the primitive
 * @param {(link) => {node, def}|null} firstTarget  the node/definition fed by its first link
 */
export function primitiveDef(node, firstTarget) {
  const base = VIRTUAL_NODE_DEFS.PrimitiveNode;
  const target = firstTarget();
  const widgetName = node.outputs[0]?.widget?.name ?? target?.input?.widget?.name;
  const source = target ? targetWidget(target.def, widgetName) : null;
  if (!source) return base;
  const value = { ...source, optional: false, frontendOnly: false };
  const widgets = [value];
  if (source.kind === 'INT' || source.kind === 'FLOAT' || source.kind === COMBO) {
    widgets.push({ name: 'control_after_generate', kind: 'CONTROL', values: CONTROL_MODES, default: 'fixed',
      controls: 0, options: {}, socketType: COMBO, frontendOnly: true });
  }
  if (source.kind === COMBO) {
    widgets.push({ name: 'control_filter_list', kind: 'STRING', multiline: false, default: '', options: {},
      socketType: null, frontendOnly: true });
  }
  return { ...base, widgets, outputs: [{ ...base.outputs[0], type: source.socketType }] };
}
