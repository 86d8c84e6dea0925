"""Calling one node: list mapping of its inputs and merging of its results.

Inside the executor every value travels as a list. A node without ``INPUT_IS_LIST`` is called once
per index up to the longest input list (shorter lists repeat their last item); with it, once with
the whole lists. Results are merged per output slot: an ``OUTPUT_IS_LIST`` slot concatenates the
lists each call returned, any other slot collects one item per call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .protocol import NodeDefinition


class NodeResultError(TypeError):
    """A node returned something that is not a valid result for its declaration."""


@dataclass
class NodeResult:
    outputs: list[list]  # one list per output slot
    ui: dict | None = None
    expand: Any = None  # an API-format graph to add at run time
    expand_result: tuple | None = None  # outputs of the expansion: links into it or literals
    extra: dict = field(default_factory=dict)


def map_over_lists(inputs: dict[str, list], input_is_list: bool, call: Callable[..., Any]) -> list:
    """Call ``call(**kwargs)`` once per list index (or once with whole lists)."""
    if input_is_list:
        return [call(**inputs)]
    if not inputs:
        return [call()]
    longest = max(len(v) for v in inputs.values())
    results = []
    for index in range(longest):
        kwargs = {name: values[min(index, len(values) - 1)] if values else None
                  for name, values in inputs.items()}
        results.append(call(**kwargs))
    return results


def merge_results(definition: NodeDefinition, returned: list) -> NodeResult:
    """Turn what a node's function returned (one item per call) into a NodeResult."""
    n_outputs = len(definition.return_types)
    outputs: list[list] = [[] for _ in range(n_outputs)]
    ui: dict | None = None
    for item in returned:
        if isinstance(item, dict):
            if "expand" in item:
                if len(returned) != 1:
                    raise NodeResultError(f"{definition.name}: node expansion with list inputs is not supported")
                result = tuple(item.get("result") or ())
                if len(result) != n_outputs:
                    raise NodeResultError(f"{definition.name}: expansion result has {len(result)} values "
                                          f"for {n_outputs} outputs")
                return NodeResult(outputs, item.get("ui"), item["expand"], result)
            if item.get("ui") is not None:
                ui = ui or {}
                for key, value in item["ui"].items():
                    ui.setdefault(key, []).extend(value if isinstance(value, (list, tuple)) else [value])
            values = item.get("result", ())
        elif item is None:
            values = ()
        else:
            values = item
        if not isinstance(values, (tuple, list)):
            raise NodeResultError(f"{definition.name}: must return a tuple of outputs, got {type(values).__name__}")
        if values and len(values) != n_outputs:
            raise NodeResultError(f"{definition.name}: returned {len(values)} values for {n_outputs} outputs")
        for slot, value in enumerate(values):
            if definition.output_is_list[slot]:
                if not isinstance(value, (list, tuple)):
                    raise NodeResultError(f"{definition.name}: output {slot} is declared a list, got "
                                          f"{type(value).__name__}")
                outputs[slot].extend(value)
            else:
                outputs[slot].append(value)
    return NodeResult(outputs, ui)
