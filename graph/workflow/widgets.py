"""Which input each entry of a node's ``widgets_values`` belongs to.

The editor saves widget values by position, in the order it created the widgets from the node's
``/object_info`` schema; the names are not saved (except by recent ComfyUI frontends, which also
write ``widgets_values_named``). Facts of that order, read from ComfyUI's frontend
(Comfy-Org/ComfyUI_frontend: useIntWidget, useFloatWidget, useComboWidget, valueControlWidgets,
uploadImage, litegraphUtil.migrateWidgetsValues, nodeDefOrderingUtil):

- inputs are walked ``required`` then ``optional``, each in ``input_order``; hidden inputs and
  socket types (MODEL, LATENT, ...) make no widget;
- an input whose type is a widget type and that is not ``forceInput`` takes one slot, whether
  or not a link feeds it (a widget turned into an input keeps its saved value);
- frontend-only companions follow their widget and take slots of their own, though they are
  never sent to the server: an INT gets a ``control_after_generate`` value (fixed / increment /
  decrement / randomize) when its options say ``control_after_generate`` (true or a string),
  or, when the option is absent, when the input is named ``seed`` or ``noise_seed``; a FLOAT
  gets one when the option is set; a combo with the option gets the control value and a
  ``control_filter_list`` string;
- the first required combo with ``image_upload``, ``video_upload`` or
  ``animated_image_upload`` gets an upload button whose value (``"image"``) takes a slot at the
  end of the required widgets;
- workflows saved before frontend 1.16 also hold a dummy slot for each widget-typed
  ``forceInput`` input; the frontend drops those when the count matches, and so do we.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..types import is_combo

#: Input types the frontend renders as widgets (its ComfyWidgets table); combos are lists too.
WIDGET_TYPES = frozenset({
    "INT", "FLOAT", "BOOLEAN", "STRING", "COMBO", "MARKDOWN", "COLOR", "TEXTAREA",
    "IMAGECOMPARE", "BOUNDING_BOX", "BOUNDING_BOXES", "CHART", "GALLERIA", "PAINTER",
    "COMPOSITOR", "CURVE", "RANGE", "VIDEO_EDIT", "RESOLUTION_PREVIEW", "COLORS",
})

#: INT inputs that get a control widget even without the option (the frontend's legacy rule).
SEED_INPUT_NAMES = ("seed", "noise_seed")

#: Combo options that make the frontend add an upload button (uploadImage extension).
UPLOAD_OPTIONS = ("image_upload", "video_upload", "animated_image_upload")

VALUE, CONTROL, FILTER, UPLOAD, FORCED = "value", "control", "filter", "upload", "forced"


@dataclass(frozen=True)
class WidgetSlot:
    """One entry of ``widgets_values``: the input it belongs to and what it holds. Only VALUE
    slots become prompt inputs; the others are frontend-only."""

    input_name: str
    kind: str


def split_spec(spec: Any) -> tuple[Any, dict]:
    """``(TYPE, options)`` of an ``/object_info`` input spec (a list, or a tuple in memory)."""
    if isinstance(spec, (list, tuple)) and spec:
        options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        return spec[0], options
    return spec, {}


def is_widget_type(input_type: Any) -> bool:
    return is_combo(input_type) or (isinstance(input_type, str) and input_type in WIDGET_TYPES)


def ordered_inputs(schema: dict, category: str) -> list[tuple[str, Any]]:
    """``(name, spec)`` of one input category in ``input_order`` (then any the order omits)."""
    section = (schema.get("input") or {}).get(category) or {}
    order = (schema.get("input_order") or {}).get(category) or []
    names = [n for n in order if n in section] + [n for n in section if n not in order]
    return [(name, section[name]) for name in names]


def companions(name: str, input_type: Any, options: dict) -> list[str]:
    """The frontend-only widgets that follow widget ``name``."""
    control = options.get("control_after_generate")
    if is_combo(input_type):
        return [CONTROL, FILTER] if control else []
    if input_type == "INT":
        if control is None:  # the frontend's `??`: only an absent option falls back to the name
            control = name in SEED_INPUT_NAMES
        return [CONTROL] if control else []
    if input_type == "FLOAT":
        return [CONTROL] if control else []
    return []


def widget_layout(schema: dict, *, legacy_force_input: bool = False) -> list[WidgetSlot]:
    """The slots of ``widgets_values`` for a node of this schema, in order."""
    slots: list[WidgetSlot] = []
    for category in ("required", "optional"):
        upload_for: str | None = None
        for name, spec in ordered_inputs(schema, category):
            input_type, options = split_spec(spec)
            if not is_widget_type(input_type):
                continue
            if options.get("forceInput"):
                if legacy_force_input:
                    slots.append(WidgetSlot(name, FORCED))
                    slots.extend(WidgetSlot(name, kind) for kind in companions(name, input_type, options))
                continue
            slots.append(WidgetSlot(name, VALUE))
            slots.extend(WidgetSlot(name, kind) for kind in companions(name, input_type, options))
            if (category == "required" and upload_for is None and is_combo(input_type)
                    and any(options.get(flag) is True for flag in UPLOAD_OPTIONS)):
                upload_for = name
        if upload_for is not None:
            slots.append(WidgetSlot(upload_for, UPLOAD))
    return slots


def value_names(schema: dict) -> list[str]:
    """The inputs that hold a widget value, in slot order."""
    return [slot.input_name for slot in widget_layout(schema) if slot.kind == VALUE]


def default_value(spec: Any) -> tuple[bool, Any]:
    """``(found, value)``: the value a freshly created widget starts with, where the schema says."""
    input_type, options = split_spec(spec)
    if "default" in options:
        return True, options["default"]
    if is_combo(input_type):
        choices = input_type if isinstance(input_type, (list, tuple)) else options.get("options") or []
        if choices:
            return True, choices[0]
    return False, None


def widget_values(node: dict, schema: dict, label: str, warnings: list[str]) -> dict[str, Any]:
    """Input name -> saved widget value for one node, read from its ``widgets_values`` (a list by
    position, or a dict by name) or, when the list does not fit the schema, from the
    ``widgets_values_named`` map recent frontends write beside it."""
    layout = widget_layout(schema)
    names = [slot.input_name for slot in layout if slot.kind == VALUE]
    saved = node.get("widgets_values")
    named = node.get("widgets_values_named")
    if isinstance(saved, dict):
        named, saved = saved, None
    if not isinstance(named, dict):  # by position; absent or malformed (not a list) values: none saved
        return _by_position(saved if isinstance(saved, list) else [], layout, schema, label, warnings)
    if isinstance(saved, list) and len(saved) == len(layout):
        return _by_position(saved, layout, schema, label, warnings)
    values = {name: named[name] for name in names if name in named}
    _fill_defaults(values, names, schema, label, warnings)
    return values


def _by_position(saved: list, layout: list[WidgetSlot], schema: dict, label: str,
                 warnings: list[str]) -> dict[str, Any]:
    if len(saved) != len(layout):
        legacy = widget_layout(schema, legacy_force_input=True)
        if len(legacy) == len(saved):
            layout = legacy  # saved by a frontend older than 1.16: skip the forceInput dummies
        elif len(saved) > len(layout):
            warnings.append(f"{label}: widgets_values has {len(saved)} values where the schema has "
                            f"{len(layout)} widget slots; the extra values are ignored")
    values = {slot.input_name: value for slot, value in zip(layout, saved, strict=False)
              if slot.kind == VALUE}
    names = [slot.input_name for slot in layout if slot.kind == VALUE]
    _fill_defaults(values, names, schema, label, warnings)
    return values


def _fill_defaults(values: dict, names: list[str], schema: dict, label: str, warnings: list[str]) -> None:
    """Widgets the file has no value for start at their default, as they would in the editor."""
    missing = [name for name in names if name not in values]
    if not missing:
        return
    specs = dict(ordered_inputs(schema, "required") + ordered_inputs(schema, "optional"))
    defaulted = []
    for name in missing:
        found, value = default_value(specs[name])
        if found:
            values[name] = value
            defaulted.append(name)
    left = [n for n in missing if n not in defaulted]
    message = f"{label}: no saved value for widget(s) {', '.join(missing)}"
    if defaulted:
        message += f"; using the schema default for {', '.join(defaulted)}"
    if left:
        message += f"; {', '.join(left)} left unset"
    warnings.append(message)


def has_control_companion(schema: dict, input_name: str) -> bool:
    """True when the widget of ``input_name`` is followed by a control_after_generate value."""
    layout = widget_layout(schema)
    for index, slot in enumerate(layout):
        if slot.input_name == input_name and slot.kind == VALUE:
            return index + 1 < len(layout) and layout[index + 1].kind == CONTROL
    return False
