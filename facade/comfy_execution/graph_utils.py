"""``comfy_execution.graph_utils``: build the API-format graph a node returns as
``{"result": (...), "expand": graph.finalize()}``; graph.executor adds it to the running prompt.

Node ids of a built graph are ``<prefix><n>`` with a prefix ``"<root>.<call>.<graph>."``. While a
node runs, the root is that node's id and the call index the index of the call (a node mapped
over a list is called once per item), read from the executor's context; the graph index counts
the builders made in one call. So ids differ between nodes, calls and builders, and repeat
exactly when the same node runs again, which keeps expanded nodes' cache signatures stable.
"""

from __future__ import annotations

from typing import Any

from graph.context import current_context
from graph.executor import ExecutionBlocker

__all__ = ["GraphBuilder", "Node", "ExecutionBlocker", "is_link", "add_graph_prefix"]


def is_link(obj: Any) -> bool:
    """ComfyUI's test for a link: ``[node_id: str, output_index: int | float]``."""
    return (isinstance(obj, list) and len(obj) == 2 and isinstance(obj[0], str)
            and isinstance(obj[1], (int, float)) and not isinstance(obj[1], bool))


class Node:
    """One node of a GraphBuilder: its id, class and inputs (literals, or links from ``out``)."""

    def __init__(self, id: str, class_type: str, inputs: dict) -> None:
        self.id = id
        self.class_type = class_type
        self.inputs = inputs
        self.override_display_id: str | None = None

    def out(self, index: int) -> list:
        return [self.id, index]

    def set_input(self, key: str, value: Any) -> None:
        """Set an input; ``None`` removes it."""
        if value is None:
            self.inputs.pop(key, None)
        else:
            self.inputs[key] = value

    def get_input(self, key: str) -> Any:
        return self.inputs.get(key)

    def set_override_display_id(self, override_display_id: str) -> None:
        self.override_display_id = override_display_id

    def serialize(self) -> dict:
        data = {"class_type": self.class_type, "inputs": self.inputs}
        if self.override_display_id is not None:
            data["override_display_id"] = self.override_display_id
        return data


class GraphBuilder:
    _default_prefix_root = ""
    _default_prefix_call_index = 0
    _default_prefix_graph_index = 0
    # (execution context, call index) the defaults above were last set for; nodes run on the one
    # worker thread, one call at a time.
    _prefix_owner: tuple | None = None

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = GraphBuilder.alloc_prefix() if prefix is None else prefix
        self.nodes: dict[str, Node] = {}
        self.id_gen = 1

    @staticmethod
    def _running_call() -> tuple | None:
        context = current_context()
        if context is None or not context.node_id:
            return None
        return context, context.extra.get("call_index", 0)

    @classmethod
    def _follow_running_node(cls) -> None:
        """Reset the defaults when a different node call than last time is running."""
        running = cls._running_call()
        owner = GraphBuilder._prefix_owner
        if running is None or (owner is not None and owner[0] is running[0] and owner[1] == running[1]):
            return
        GraphBuilder.set_default_prefix(running[0].node_id, running[1], 0)

    @classmethod
    def set_default_prefix(cls, prefix_root: str, call_index: int, graph_index: int = 0) -> None:
        GraphBuilder._default_prefix_root = prefix_root
        GraphBuilder._default_prefix_call_index = call_index
        GraphBuilder._default_prefix_graph_index = graph_index
        GraphBuilder._prefix_owner = cls._running_call()

    @classmethod
    def alloc_prefix(cls, root: str | None = None, call_index: int | None = None,
                     graph_index: int | None = None) -> str:
        cls._follow_running_node()
        root = GraphBuilder._default_prefix_root if root is None else root
        call_index = GraphBuilder._default_prefix_call_index if call_index is None else call_index
        graph_index = GraphBuilder._default_prefix_graph_index if graph_index is None else graph_index
        GraphBuilder._default_prefix_graph_index += 1
        return f"{root}.{call_index}.{graph_index}."

    def node(self, class_type: str, id: str | None = None, **kwargs: Any) -> Node:
        """Add a node (or return the one already under ``id``); keyword arguments are its inputs."""
        if id is None:
            id = str(self.id_gen)
            self.id_gen += 1
        full_id = self.prefix + id
        if full_id not in self.nodes:
            self.nodes[full_id] = Node(full_id, class_type, kwargs)
        return self.nodes[full_id]

    def lookup_node(self, id: str) -> Node | None:
        return self.nodes.get(self.prefix + id)

    def remove_node(self, id: str) -> None:
        del self.nodes[self.prefix + id]

    def replace_node_output(self, node_id: str, index: int, new_value: Any) -> None:
        """Point every input linked to output ``index`` of ``node_id`` at ``new_value`` (None: unlink)."""
        source = self.prefix + node_id
        for node in self.nodes.values():
            for key, value in list(node.inputs.items()):
                if is_link(value) and value[0] == source and value[1] == index:
                    node.set_input(key, new_value)

    def finalize(self) -> dict:
        """The API-format graph: ``{id: {"class_type", "inputs"}}``."""
        return {node_id: node.serialize() for node_id, node in self.nodes.items()}


def add_graph_prefix(graph: dict, outputs, prefix: str) -> tuple[dict, tuple]:
    """``graph`` and its ``outputs`` with ``prefix`` before every node id and every link into it."""
    def moved(value):
        return [prefix + value[0], value[1]] if is_link(value) else value

    new_graph = {prefix + node_id: {"class_type": node["class_type"],
                                    "inputs": {name: moved(v) for name, v in node.get("inputs", {}).items()}}
                 for node_id, node in graph.items()}
    return new_graph, tuple(moved(o) for o in outputs)
