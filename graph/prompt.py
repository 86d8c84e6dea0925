"""The API prompt format: ``{node_id: {"class_type", "inputs", "_meta"?}}``.

An input value that is a two-element list ``[source_node_id, output_index]`` is a link; anything
else is a literal. A literal list is sent wrapped as ``{"__value__": [...]}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def is_link(value: Any) -> bool:
    """ComfyUI's rule: a list of length 2 whose first item is a node id and second an index."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))


def looks_like_link(value: Any) -> bool:
    """Any bare list: either a link or a malformed one (a literal list must be wrapped)."""
    return isinstance(value, list)


def unwrap_literal(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__value__"}:
        return value["__value__"]
    return value


def node_links(node: dict) -> Iterator[tuple[str, str, int]]:
    """(input name, source id, output index) for each well-formed link of a node."""
    inputs = node.get("inputs") if isinstance(node, dict) else None
    if not isinstance(inputs, dict):
        return
    for name, value in inputs.items():
        if is_link(value):
            yield name, str(value[0]), value[1]


class NodeNotFoundError(KeyError):
    """A node id that is neither in the prompt nor added by expansion."""


class DynamicPrompt:
    """The submitted prompt plus the nodes that node expansion adds while it runs.

    Expanded ("ephemeral") nodes remember their parent, so events and errors can point the user
    at the node they actually placed (``display_node_id``).
    """

    def __init__(self, prompt: dict) -> None:
        self.original = prompt
        self._ephemeral: dict[str, dict] = {}
        self._parent: dict[str, str] = {}
        self._display: dict[str, str] = {}

    def get(self, node_id: str) -> dict | None:
        return self._ephemeral.get(node_id) or self.original.get(node_id)

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._ephemeral or node_id in self.original

    def add_ephemeral(self, node_id: str, node: dict, parent_id: str, display_id: str) -> None:
        self._ephemeral[node_id] = node
        self._parent[node_id] = parent_id
        self._display[node_id] = display_id

    def parent_of(self, node_id: str) -> str | None:
        return self._parent.get(node_id)

    def display_id(self, node_id: str) -> str:
        return self._display.get(node_id, node_id)

    def real_node_id(self, node_id: str) -> str:
        """The id of the node in the submitted prompt that this node descends from."""
        while node_id in self._parent:
            node_id = self._parent[node_id]
        return node_id

    def all_ids(self) -> list[str]:
        return list(self.original) + list(self._ephemeral)

    # ComfyUI's names for the same things: node packs receive this object as the DYNPROMPT
    # hidden input and call these (loop and control-flow packs).
    def get_node(self, node_id: str) -> dict:
        node = self.get(node_id)
        if node is None:
            raise NodeNotFoundError(f"Node {node_id} not found")
        return node

    def has_node(self, node_id: str) -> bool:
        return node_id in self

    def add_ephemeral_node(self, node_id: str, node_info: dict, parent_id: str, display_id: str) -> None:
        self.add_ephemeral(node_id, node_info, parent_id, display_id)

    def get_real_node_id(self, node_id: str) -> str:
        return self.real_node_id(node_id)

    def get_parent_node_id(self, node_id: str) -> str | None:
        return self.parent_of(node_id)

    def get_display_node_id(self, node_id: str) -> str:
        seen = set()
        while node_id in self._display and node_id not in seen:  # a display id may itself be expanded
            seen.add(node_id)
            node_id = self._display[node_id]
        return node_id

    def all_node_ids(self) -> set[str]:
        return set(self.all_ids())

    def get_original_prompt(self) -> dict:
        return self.original
