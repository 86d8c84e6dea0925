// `control_after_generate`: what happens to a seed (or a combo that declares it) after each queued
// run — fixed, increment, decrement or randomize — as in ComfyUI's editor.

import { COMBO } from './types.js';

/** Random seeds stay below 2**50 (ComfyUI does the same): exact in a JS number, ample variety. */
export const RANDOM_LIMIT = 2 ** 50;

function comboChoices(values, filter) {
  if (!filter) return values;
  let match;
  const regex = /^\/(.*)\/([a-z]*)$/.exec(filter);
  if (regex) {
    try {
      const pattern = new RegExp(regex[1], regex[2]);
      match = (v) => pattern.test(v);
    } catch {
      match = () => true;
    }
  } else {
    const needle = filter.toLowerCase();
    match = (v) => v.toLowerCase().includes(needle);
  }
  const chosen = values.filter(match);
  return chosen.length ? chosen : values;
}

/**
 * The value that follows `value` under `mode`.
 * @param {object} widget  the controlled widget's definition (kind, min, max, step, values)
 * @param {() => number} random  a [0, 1) source, injected so tests are deterministic
 */
export function nextControlledValue(widget, value, mode, { random = Math.random, filter = '' } = {}) {
  if (mode === 'fixed' || !mode) return value;
  if (widget.kind === COMBO) {
    const choices = comboChoices(widget.values ?? [], filter);
    if (!choices.length) return value;
    const at = choices.indexOf(value);
    if (mode === 'increment') return choices[Math.min(choices.length - 1, at + 1)];
    if (mode === 'decrement') return choices[Math.max(0, at < 0 ? 0 : at - 1)];
    if (mode === 'randomize') return choices[Math.floor(random() * choices.length)];
    return value;
  }
  const step = widget.step || 1;
  const min = Math.max(widget.min ?? 0, -RANDOM_LIMIT);
  const max = Math.min(widget.max ?? RANDOM_LIMIT, RANDOM_LIMIT);
  if (mode === 'increment') return Math.min(max, value + step);
  if (mode === 'decrement') return Math.max(min, value - step);
  if (mode === 'randomize') {
    const slots = Math.floor((max - min) / step);
    const picked = min + Math.floor(random() * (slots + 1)) * step;
    return widget.kind === 'INT' ? Math.round(picked) : picked;
  }
  return value;
}

/** Apply every control widget of the document once (after a queued run). */
export function applyControlsAfterQueue(doc, options = {}) {
  for (const node of doc.nodes.values()) {
    const def = doc.defOf(node);
    def.widgets.forEach((control, index) => {
      if (control.kind !== 'CONTROL') return;
      const target = def.widgets[control.controls];
      if (!target || doc.isWidgetLinked(node, target.name)) return;
      const filterIndex = def.widgets.findIndex((w) => w.name === 'control_filter_list');
      const filter = filterIndex >= 0 ? node.widgets_values[filterIndex] : '';
      const current = node.widgets_values[control.controls];
      const next = nextControlledValue(target, current, node.widgets_values[index], { ...options, filter });
      if (next !== current) doc.setWidgetValue(node.id, control.controls, next);
    });
  }
}
