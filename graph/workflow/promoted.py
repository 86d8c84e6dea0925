"""The widget values a subgraph instance shows for its inputs ("promoted" widgets).

A subgraph input that feeds a widget input of an inner node (directly, or through a nested
instance that shows it in turn) makes the instance show a widget for it; while nothing is linked
to that input on the instance, the widget's value is what the inner node receives. Each instance
saves its own values, in one of three forms editors have written (facts from ComfyUI's frontend,
SubgraphNode.serialize/_applyPromotedWidgetValues and core/graph/subgraph/proxyWidget.ts):

- ``widgets_values``: one value per such input, in input order; some older saves also hold the
  seed's control_after_generate value after it, recognised by the list being longer;
- ``widgets_values_named``: subgraph input name -> value;
- with ``properties.proxyWidgets`` (``[[inner node id, widget name], ...]``) the values line up
  with that list; only ``["-1", input name]`` entries are the instance's own.
"""

from __future__ import annotations

from typing import Any

from .model import Graph, Link
from .widgets import has_control_companion


def instance_input(instance: dict, definition: Graph, index: int) -> dict | None:
    """The instance's input slot for subgraph input ``index``. Saved instances may leave out
    unconnected widget inputs, so the slot is found by name; the index is the fallback."""
    entries = [e for e in instance.get("inputs") or [] if isinstance(e, dict)]
    if not 0 <= index < len(definition.inputs):
        return None
    name = definition.inputs[index].get("name")
    if index < len(entries) and entries[index].get("name") == name:
        return entries[index]
    for entry in entries:
        if entry.get("name") == name:
            return entry
    return None


def promoted_values(definition: Graph, instance: dict | None, subgraphs: dict[str, Graph],
                    object_info: dict) -> dict[int, Any]:
    """Subgraph input index -> the value the instance's widget for that input holds."""
    instance = instance or {}
    promoted = [i for i in range(len(definition.inputs))
                if first_widget_target(definition, i, subgraphs, set()) is not None]
    saved = instance.get("widgets_values")
    named = instance.get("widgets_values_named")
    if isinstance(saved, dict):
        named, saved = saved, None
    proxies = (instance.get("properties") or {}).get("proxyWidgets")
    if isinstance(proxies, list) and proxies and isinstance(saved, list):
        return _by_proxy_widgets(definition, proxies, saved)
    if isinstance(saved, list) and (len(saved) == len(promoted) or not isinstance(named, dict)):
        return _by_position(definition, promoted, saved, subgraphs, object_info)
    if isinstance(named, dict):
        names = {index: definition.inputs[index].get("name") for index in promoted}
        return {index: named[name] for index, name in names.items() if name in named}
    return {}


def first_widget_target(definition: Graph, index: int, subgraphs: dict[str, Graph],
                        seen: set) -> tuple[str, str] | None:
    """``(node type, input name)`` of the first inner widget input that subgraph input ``index``
    feeds, following the definition's link order as the frontend does when it picks the widget
    to show; None when the input feeds no widget."""
    if (definition.id, index) in seen:
        return None
    seen.add((definition.id, index))
    for link in definition.links_from_input_slot(index):
        target = definition.nodes.get(link.target_id)
        if target is None:
            continue
        entry = _input_fed_by(target, link)
        if entry is None:
            continue
        if isinstance(entry.get("widget"), dict):
            return target["type"], entry["name"]
        nested = subgraphs.get(target["type"])
        if nested is not None:
            names = [io.get("name") for io in nested.inputs]
            nested_index = names.index(entry["name"]) if entry.get("name") in names else None
            if nested_index is not None:
                found = first_widget_target(nested, nested_index, subgraphs, seen)
                if found is not None:
                    return found
    return None


def _by_position(definition: Graph, promoted: list[int], saved: list, subgraphs: dict[str, Graph],
                 object_info: dict) -> dict[int, Any]:
    with_controls = len(saved) > len(promoted)
    values: dict[int, Any] = {}
    position = 0
    for index in promoted:
        if position >= len(saved):
            break
        values[index] = saved[position]
        position += 1
        if with_controls and _feeds_control_widget(definition, index, subgraphs, object_info):
            position += 1
    return values


def _feeds_control_widget(definition: Graph, index: int, subgraphs: dict[str, Graph],
                          object_info: dict) -> bool:
    target = first_widget_target(definition, index, subgraphs, set())
    if target is None:
        return False
    schema = object_info.get(target[0])
    return isinstance(schema, dict) and has_control_companion(schema, target[1])


def _by_proxy_widgets(definition: Graph, proxies: list, saved: list) -> dict[int, Any]:
    """Entries ``["-1", input name]`` carry the instance's value; the others only mirror an
    inner node's widget, whose own saved value counts (the frontend ignores theirs on load)."""
    index_by_name = {io.get("name"): index for index, io in enumerate(definition.inputs)}
    values: dict[int, Any] = {}
    for position, entry in enumerate(proxies):
        if position >= len(saved) or saved[position] is None:
            continue
        if (isinstance(entry, (list, tuple)) and len(entry) >= 2 and str(entry[0]) == "-1"
                and entry[1] in index_by_name):
            values[index_by_name[entry[1]]] = saved[position]
    return values


def _input_fed_by(node: dict, link: Link) -> dict | None:
    entries = [e for e in node.get("inputs") or [] if isinstance(e, dict)]
    for entry in entries:
        if entry.get("link") is not None and str(entry["link"]) == link.id:
            return entry
    if 0 <= link.target_slot < len(entries):
        return entries[link.target_slot]
    return None
