"""``comfy_execution.utils``: which node is running, read from Weft's execution context."""

from __future__ import annotations

from typing import NamedTuple

from graph.context import current_context

__all__ = ["ExecutionContext", "get_executing_context"]


class ExecutionContext(NamedTuple):
    prompt_id: str
    node_id: str
    list_index: int | None


def get_executing_context() -> ExecutionContext | None:
    """The running node's prompt id, node id and list call index; None outside a running node."""
    context = current_context()
    if context is None or not context.node_id:
        return None
    return ExecutionContext(context.prompt_id, context.node_id, context.extra.get("call_index"))
