// Node definitions parsed from /object_info (ComfyUI's V1 schema, facts §1.4).
// A definition says which inputs are sockets and which are widgets, and the positional layout of
// `widgets_values` — including the two frontend-only widgets ComfyUI adds: `control_after_generate`
// after a seed (or any INT/COMBO declaring it) and the `upload` button after an `image_upload` combo.
// Nothing here knows about a particular node: every built-in node is described by the server.

import { COMBO, isCombo, typeName } from './types.js';

export const BUILTIN_WIDGET_TYPES = new Set(['INT', 'FLOAT', 'STRING', 'BOOLEAN', COMBO]);
/** Types ComfyUI's frontend also draws as widgets. They hold a widgets_values slot (the server's
 * converter counts them), so they are widgets here too; TEXTAREA and MARKDOWN edit as multi-line
 * text, the rest show their value unless an extension brings a widget for them. */
export const OTHER_WIDGET_TYPES = new Set(['MARKDOWN', 'COLOR', 'TEXTAREA', 'IMAGECOMPARE', 'BOUNDING_BOX',
  'BOUNDING_BOXES', 'CHART', 'GALLERIA', 'PAINTER', 'COMPOSITOR', 'CURVE', 'RANGE', 'VIDEO_EDIT',
  'RESOLUTION_PREVIEW', 'COLORS']);
const UPLOAD_OPTIONS = ['image_upload', 'video_upload', 'animated_image_upload'];
export const CONTROL_MODES = ['fixed', 'increment', 'decrement', 'randomize'];
const SEED_NAMES = new Set(['seed', 'noise_seed']);
/** Weft's own editors for a STRING input, chosen by its `weft_widget` option, with the height of their
 * row. The input stays a STRING (same slot, same value; ComfyUI's frontend shows a text field). */
const STRING_EDITORS = new Map([['layout_boxes', { height: 250 }]]);

/** Numeric widget limits when the schema leaves them out (ComfyUI's frontend uses the same). */
export const NUMBER_FALLBACKS = Object.freeze({ min: 0, max: 2048, intStep: 1, floatStep: 0.5 });

function decimalsOf(step) {
  const text = String(step);
  if (text.includes('e-')) return Number(text.split('e-')[1]);
  return text.includes('.') ? text.split('.')[1].length : 0;
}

function numberOptions(kind, opts) {
  const step = Number(opts.step ?? (kind === 'INT' ? NUMBER_FALLBACKS.intStep : NUMBER_FALLBACKS.floatStep));
  const out = {
    min: Number(opts.min ?? NUMBER_FALLBACKS.min),
    max: Number(opts.max ?? NUMBER_FALLBACKS.max),
    step,
  };
  if (kind === 'FLOAT') {
    // `round` is the grid a float snaps to; `false` turns snapping off (facts §1.4).
    out.round = opts.round === false ? 0 : Number(opts.round ?? 10 ** -Math.min(decimalsOf(step), 8));
    out.precision = out.round ? decimalsOf(out.round) : Math.max(decimalsOf(step), 2);
  }
  return out;
}

function defaultValue(kind, opts, values) {
  switch (kind) {
    case 'INT':
    case 'FLOAT':
      return Number(opts.default ?? 0);
    case 'STRING':
      return String(opts.default ?? '');
    case 'BOOLEAN':
      return Boolean(opts.default ?? false);
    case COMBO:
      return values.includes(opts.default) ? opts.default : (values[0] ?? '');
    default:
      return opts.default ?? null;
  }
}

/** Split `[TYPE, options?]` into the socket type, the combo choices and the options. */
export function readInputSpec(spec) {
  const [rawType, rawOptions] = Array.isArray(spec) ? spec : [spec, {}];
  const options = rawOptions && typeof rawOptions === 'object' ? rawOptions : {};
  if (Array.isArray(rawType)) return { type: COMBO, values: rawType.map(String), options };
  if (rawType === COMBO) return { type: COMBO, values: (options.options ?? []).map(String), options };
  return { type: String(rawType), values: null, options };
}

function widgetFor(name, parsed, customWidgets) {
  const { type, values, options } = parsed;
  if (options.forceInput) return null;
  if (customWidgets.has(type)) {
    const custom = customWidgets.get(type);
    return { name, kind: type, options, default: custom.defaultValue?.(options) ?? options.default ?? null, socketType: type };
  }
  if (OTHER_WIDGET_TYPES.has(type)) {
    const text = type === 'TEXTAREA' || type === 'MARKDOWN';
    return { name, kind: text ? 'STRING' : 'UNKNOWN', multiline: text, options, default: options.default ?? (text ? '' : null), socketType: type };
  }
  if (!BUILTIN_WIDGET_TYPES.has(type)) return null;
  const widget = { name, kind: type, options, socketType: typeName(type) };
  if (type === 'INT' || type === 'FLOAT') Object.assign(widget, numberOptions(type, options));
  if (type === COMBO) widget.values = values;
  if (type === 'STRING') {
    widget.multiline = Boolean(options.multiline);
    const editor = STRING_EDITORS.get(options.weft_widget);
    if (editor) Object.assign(widget, { editor: options.weft_widget, multiline: false, height: editor.height });
  }
  if (type === 'BOOLEAN') Object.assign(widget, { labelOn: options.label_on ?? 'true', labelOff: options.label_off ?? 'false' });
  widget.default = defaultValue(type, options, values ?? []);
  return widget;
}

/** The frontend-only widgets that follow `widget` (ComfyUI's value-control companions). */
function companions(widget, widgetIndex) {
  const option = widget.options.control_after_generate;
  let wanted;
  if (widget.kind === 'INT') wanted = option ?? SEED_NAMES.has(widget.name); // `??`: only an absent option falls back to the name
  else wanted = (widget.kind === 'FLOAT' || widget.kind === COMBO) && option;
  if (!wanted) return [];
  const mode = CONTROL_MODES.includes(option) ? option : 'randomize';
  const out = [{ name: 'control_after_generate', kind: 'CONTROL', values: CONTROL_MODES, default: mode,
    controls: widgetIndex, options: {}, socketType: COMBO, frontendOnly: true }];
  if (widget.kind === COMBO) {
    out.push({ name: 'control_filter_list', kind: 'STRING', multiline: false, default: '', options: {},
      socketType: null, frontendOnly: true });
  }
  return out;
}

/**
 * Parse one /object_info entry.
 * @param {string} name
 * @param {object} info  the schema entry
 * @param {Map<string, object>} customWidgets  extension widget kinds by type name
 */
export function parseNodeDef(name, info, customWidgets = new Map()) {
  const inputs = [];
  const sockets = [];
  const widgets = [];
  const legacy = [];
  for (const category of ['required', 'optional']) {
    const specs = info.input?.[category] ?? {};
    const order = info.input_order?.[category] ?? Object.keys(specs);
    const names = [...order.filter((n) => n in specs), ...Object.keys(specs).filter((n) => !order.includes(n))];
    let uploadFor = -1;
    for (const inputName of names) {
      const parsed = readInputSpec(specs[inputName]);
      const optional = category === 'optional';
      const widget = widgetFor(inputName, parsed, customWidgets);
      if (!widget && parsed.options.forceInput) {
        // Saves from ComfyUI frontends before 1.16 hold a dummy value (and its companions) here.
        const dummy = widgetFor(inputName, { ...parsed, options: { ...parsed.options, forceInput: false } }, customWidgets);
        if (dummy) legacy.push({ at: widgets.length, count: 1 + companions(dummy, 0).length });
      }
      if (widget) {
        widget.optional = optional;
        const index = widgets.push(widget) - 1;
        widgets.push(...companions(widget, index));
        if (!optional && uploadFor < 0 && widget.kind === COMBO && UPLOAD_OPTIONS.some((o) => widget.options[o] === true)) uploadFor = index;
        inputs.push({ name: inputName, type: widget.socketType, optional, widget: inputName, options: parsed.options });
      } else {
        const socket = { name: inputName, type: typeName(parsed.type), optional, options: parsed.options };
        sockets.push(socket);
        inputs.push(socket);
      }
    }
    // The upload button's slot comes after the last required widget (ComfyUI's uploadImage extension).
    if (uploadFor >= 0) {
      widgets.push({ name: 'upload', kind: 'IMAGEUPLOAD', default: 'image', controls: uploadFor,
        folder: widgets[uploadFor].options.image_folder ?? 'input', options: {}, socketType: null, frontendOnly: true });
    }
  }
  const outputTypes = info.output ?? [];
  const outputs = outputTypes.map((type, i) => ({
    name: info.output_name?.[i] ?? typeName(type),
    type: typeName(type),
    isList: Boolean(info.output_is_list?.[i]),
    tooltip: info.output_tooltips?.[i] ?? null,
  }));
  return {
    name,
    displayName: info.display_name || name,
    category: info.category ?? '',
    description: info.description ?? '',
    pythonModule: info.python_module ?? '',
    outputNode: Boolean(info.output_node),
    deprecated: Boolean(info.deprecated),
    experimental: Boolean(info.experimental),
    virtual: false,
    inputs,
    sockets,
    widgets,
    outputs,
    legacyForcedSlots: legacy,
  };
}

/**
 * `widgets_values` as this editor lays them out, from what a file holds: a dict by name (some
 * packs), a pre-1.16 save with dummy slots for forceInput inputs (recognised by its length, as the
 * server's converter does), or a list too short for the current schema (padded with defaults).
 */
export function normalizeWidgetValues(def, saved) {
  const clone = (v) => structuredClone(v);
  if (saved && typeof saved === 'object' && !Array.isArray(saved)) {
    return def.widgets.map((w) => (w.name in saved ? saved[w.name] : clone(w.default)));
  }
  let values = Array.isArray(saved) ? saved : [];
  const dummies = (def.legacyForcedSlots ?? []).reduce((n, d) => n + d.count, 0);
  if (dummies && values.length === def.widgets.length + dummies) {
    const skip = new Set();
    let shift = 0;
    for (const { at, count } of def.legacyForcedSlots) {
      for (let i = 0; i < count; i++) skip.add(at + shift + i);
      shift += count;
    }
    values = values.filter((_, i) => !skip.has(i));
  }
  if (values.length < def.widgets.length) values = [...values, ...def.widgets.slice(values.length).map((w) => clone(w.default))];
  return values;
}

/** The widget definition behind widget index `i`, and the value a node holds for it. */
export function widgetIndexByName(def, widgetName) {
  return def.widgets.findIndex((w) => w.name === widgetName && !w.frontendOnly);
}

export { isCombo };
