"""``comfy_execution.graph``: ``ExecutionBlocker``, ``DynamicPrompt`` under ComfyUI's method
names, ``get_input_info`` and the graph errors.

Not provided: ``TopologicalSort`` and ``ExecutionList``, ComfyUI's scheduler. Weft's executor
(graph.executor) schedules with a demand-driven walk of its own and never hands a node an
execution list, so a pack could only use them to drive ComfyUI's own loop.
"""

from __future__ import annotations

from typing import Any

from graph.executor import ExecutionBlocker
from graph.prompt import DynamicPrompt as _WeftDynamicPrompt
from graph.prompt import NodeNotFoundError
from graph.protocol import read_input_types

from .graph_utils import is_link

__all__ = ["DynamicPrompt", "ExecutionBlocker", "get_input_info", "is_link", "DependencyCycleError",
           "NodeInputError", "NodeNotFoundError"]


class DependencyCycleError(Exception):
    pass


class NodeInputError(Exception):
    pass


class DynamicPrompt(_WeftDynamicPrompt):
    """Weft's prompt-plus-expanded-nodes under ComfyUI's names."""

    @property
    def original_prompt(self) -> dict:
        return self.original

    @property
    def ephemeral_prompt(self) -> dict:
        return self._ephemeral

    @property
    def ephemeral_parents(self) -> dict:
        return self._parent

    @property
    def ephemeral_display(self) -> dict:
        return self._display


def get_input_info(class_def: type, input_name: str, valid_inputs: dict | None = None
                   ) -> tuple[Any, str | None, dict | None]:
    """``(type, "required" | "optional" | "hidden", options)`` of one input, or three Nones."""
    valid_inputs = valid_inputs or read_input_types(class_def)
    for category in ("required", "optional", "hidden"):
        section = valid_inputs.get(category) or {}
        if input_name in section:
            info = section[input_name]
            if not isinstance(info, (list, tuple)):  # hidden inputs are bare names: "UNIQUE_ID"
                return info, category, {}
            options = info[1] if len(info) > 1 and isinstance(info[1], dict) else {}
            return info[0], category, options
    return None, None, None
