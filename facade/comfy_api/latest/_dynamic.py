"""Dynamic inputs (``Autogrow``, ``DynamicCombo``) between ComfyUI's prompt and a V3 ``execute``.

ComfyUI's editor writes a dynamic input's parts into the API prompt under dotted keys: a
DynamicCombo ``method`` gives ``"method": "<chosen key>"`` plus ``"method.<sub-input>"`` for the
chosen option's inputs; an Autogrow ``values`` gives ``"values.<name>"`` per grown input (the
template's names, or ``<prefix>0``, ``<prefix>1``, …). Nested ones nest the prefix
(``"method.inner.x"``). ``execute`` receives each dynamic input as one dict: a DynamicCombo as
``{<own id>: key, <sub-input id>: value, …}`` holding only the chosen option's inputs, an Autogrow
as ``{<name>: value}`` for the names the prompt has (``{}`` when none).

Weft's registry reads a flat V1 spec, so :func:`flat_sections` lists every dotted key a prompt
may carry: the combo itself (its keys as choices), each option's inputs as optional (they are
needed only when their option is chosen; :func:`nest_values` checks that when the node runs), and
the grown inputs, the first ``min`` required when the template input is. :func:`nest_values`
turns the flat keyword arguments back into ComfyUI's shape.
"""

from __future__ import annotations

from typing import Any

from ._types import Autogrow, DynamicCombo, Input


class MissingDynamicInput(ValueError):
    """A chosen DynamicCombo option's required input is not in the prompt."""


def _leaf_spec(item: Input) -> tuple:
    options = item.as_dict()
    options.pop("optional", None)
    if getattr(item, "multiselect", False):
        options.pop("options", None)  # Weft would look the list value up among them (see INPUT_TYPES)
    return item.get_io_type(), options


def _merge(old: tuple, new: tuple) -> tuple:
    """One V1 spec for a dotted key that several options declare: the same spec, or a permissive
    one when they differ (each option's own ranges still hold in its node's ``execute``)."""
    if old == new:
        return old
    if old[0] != new[0] or str(old[0]) != str(new[0]):
        return "*", {}
    merged = {k: v for k, v in old[1].items() if new[1].get(k) == v}
    if "options" in old[1] and "options" in new[1]:
        merged["options"] = list(dict.fromkeys([*old[1]["options"], *new[1]["options"]]))
    return old[0], merged


def _flatten(inputs: list, prefix: str, conditional: bool, out: dict) -> None:
    for item in inputs:
        key = prefix + item.id
        if isinstance(item, DynamicCombo.Input):
            options = item.as_dict()
            options.pop("optional", None)
            options["options"] = [option.key for option in item.options]
            _put(out, key, ("COMBO", options), optional=item.optional or conditional)
            for option in item.options:
                _flatten(option.inputs, key + ".", True, out)
        elif isinstance(item, Autogrow.Input):
            template = item.template
            for index, grown in enumerate(template.get_all()):
                required = index < template.min and not template.input.optional and not conditional
                _put(out, f"{key}.{grown.id}", _leaf_spec(grown), optional=not required)
        else:
            _put(out, key, _leaf_spec(item), optional=item.optional or conditional)


def _put(out: dict, key: str, spec: tuple, optional: bool) -> None:
    required, optional_section = out["required"], out.setdefault("optional", {})
    if key in required or key in optional_section:
        section = required if key in required else optional_section
        spec = _merge(section.pop(key), spec)
        optional = optional or section is optional_section
    (optional_section if optional else required)[key] = spec


def flat_sections(inputs: list) -> dict:
    """Weft's V1 ``{"required": …, "optional": …}`` for a schema's inputs, dynamic ones flattened."""
    out: dict = {"required": {}}
    _flatten(inputs, "", False, out)
    if not out.get("optional"):
        out.pop("optional", None)
    return out


def has_dynamic(inputs: list) -> bool:
    return any(isinstance(item, (DynamicCombo.Input, Autogrow.Input)) for item in inputs)


def _selected(value: Any, input_is_list: bool) -> Any:
    if input_is_list and isinstance(value, list):
        return value[0] if value else None
    return value


def _nest(inputs: list, prefix: str, values: dict, input_is_list: bool, strict: bool) -> dict:
    """The nested values of ``inputs`` (keys under ``prefix``), taken out of ``values``."""
    nested: dict = {}
    for item in inputs:
        key = prefix + item.id
        if isinstance(item, DynamicCombo.Input):
            if key not in values:
                continue
            raw = values.pop(key)
            chosen = _selected(raw, input_is_list)
            option = next((o for o in item.options if o.key == chosen), None)
            group = {item.id: raw}
            if option is not None:
                for sub in option.inputs:
                    sub_key = f"{key}.{sub.id}"
                    if strict and not isinstance(sub, (DynamicCombo.Input, Autogrow.Input)) \
                            and sub_key not in values and not sub.optional:
                        raise MissingDynamicInput(f"Required input is missing: {sub_key} "
                                                  f"(option '{chosen}' of {key})")
                group |= _nest(option.inputs, key + ".", values, input_is_list, strict)
            nested[item.id] = group
        elif isinstance(item, Autogrow.Input):
            grown = {g.id: values.pop(f"{key}.{g.id}") for g in item.template.get_all() if f"{key}.{g.id}" in values}
            nested[item.id] = grown
        elif key in values:
            nested[item.id] = values.pop(key)
    return nested


def nest_values(inputs: list, values: dict, input_is_list: bool = False, strict: bool = True) -> dict:
    """``values`` (flat keyword arguments) with each dynamic input as ComfyUI passes it to
    ``execute``; dotted keys of options not chosen are dropped, as ComfyUI ignores them. With
    ``strict``, a required input of a chosen option must be among ``values`` (``execute``; not so
    for ``validate_inputs`` / ``fingerprint_inputs``, which get no linked values)."""
    if not has_dynamic(inputs):
        return values
    values = dict(values)
    dynamic = [item for item in inputs if isinstance(item, (DynamicCombo.Input, Autogrow.Input))]
    nested = _nest(dynamic, "", values, input_is_list, strict)
    prefixes = tuple(item.id + "." for item in dynamic)
    rest = {key: value for key, value in values.items() if not key.startswith(prefixes)}
    return rest | nested
