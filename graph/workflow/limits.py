"""How big a UI workflow may grow when its subgraph instances are flattened.

A definition holding ten instances of another, ten levels down, is a few kilobytes of JSON and
10**10 nodes once flattened. So before anything is expanded, every definition the workflow uses
is measured once, bottom-up (:func:`check_expansion`): its flattened size — each node it holds,
notes, muted nodes and the instance nodes themselves included, plus the flattened size of every
live (neither muted nor bypassed) instance — and how deep instances nest below it. A workflow
whose flattened size passes the caller's node limit, whose subgraphs nest deeper than
:data:`MAX_SUBGRAPH_DEPTH`, or whose subgraph contains itself (directly or through others) is
refused with a :class:`WorkflowError`. The conversion counts again as it emits (the same
measure), so the limits hold even where the two walks might one day differ.
"""

from __future__ import annotations

from .errors import WorkflowError
from .model import MODE_BYPASS, MODE_NEVER, Graph, Workflow, node_label

#: The node limit where no server passes its own (the server's ``--max-prompt-nodes`` default).
DEFAULT_MAX_NODES = 20_000
#: How many subgraph levels may nest inside one another (the root workflow is level 0).
MAX_SUBGRAPH_DEPTH = 32


def too_many_nodes(max_nodes: int) -> WorkflowError:
    return WorkflowError(f"the workflow expands to more than {max_nodes} nodes (limit --max-prompt-nodes)")


def too_deep(label: str) -> WorkflowError:
    return WorkflowError(f"{label}: subgraphs nest deeper than {MAX_SUBGRAPH_DEPTH}")


def check_expansion(workflow: Workflow, max_nodes: int = DEFAULT_MAX_NODES) -> int:
    """Measure ``workflow`` flattened, without flattening it; return its size in nodes.

    Raises WorkflowError for a size over ``max_nodes``, nesting deeper than
    :data:`MAX_SUBGRAPH_DEPTH` and a subgraph that contains itself. Each definition is measured
    once (cost: the nodes of the file); the walk goes no deeper than the depth limit."""
    return _Measure(workflow.subgraphs, max_nodes).graph(workflow.root, ())[0]


class _Measure:
    def __init__(self, subgraphs: dict[str, Graph], max_nodes: int) -> None:
        self.subgraphs = subgraphs
        self.max_nodes = max_nodes
        self.measured: dict[str, tuple[int, int]] = {}  # definition id -> (size, nesting below it)
        self.open: set[str] = set()  # the definitions being measured: the chain from the root

    def graph(self, graph: Graph, path: tuple[str, ...]) -> tuple[int, int]:
        """``(size, depth)``: the nodes of ``graph`` flattened, and how many levels of instances
        nest inside it. ``path`` is the instance ids from the root down to ``graph``."""
        size, depth = len(graph.nodes), 0
        for node_id, node in graph.nodes.items():
            definition = self.subgraphs.get(node["type"])
            if definition is None or node.get("mode", 0) in (MODE_NEVER, MODE_BYPASS):
                continue
            if definition.id in self.open:
                raise WorkflowError(f"{self._label(graph, path, node_id, definition)}: subgraph "
                                    f"'{definition.name}' contains itself")
            if len(path) >= MAX_SUBGRAPH_DEPTH:
                raise too_deep(self._label(graph, path, node_id, definition))
            assert definition.id is not None  # parse_workflow gives every subgraph definition its id
            if definition.id not in self.measured:
                self.open.add(definition.id)
                self.measured[definition.id] = self.graph(definition, path + (node_id,))
                self.open.discard(definition.id)
            inner_size, inner_depth = self.measured[definition.id]
            if len(path) + 1 + inner_depth > MAX_SUBGRAPH_DEPTH:
                raise too_deep(self._label(graph, path, node_id, definition))
            size += inner_size
            depth = max(depth, inner_depth + 1)
            if size > self.max_nodes:
                raise too_many_nodes(self.max_nodes)
        if size > self.max_nodes:
            raise too_many_nodes(self.max_nodes)
        return size, depth

    @staticmethod
    def _label(graph: Graph, path: tuple[str, ...], node_id: str, definition: Graph) -> str:
        """``node 5:12 (subgraph 'Stage') in subgraph 'Outer'``, as the conversion names it."""
        label = node_label(":".join(path + (node_id,)), {"type": f"subgraph '{definition.name}'"})
        return label + (f" in subgraph '{graph.name}'" if path else "")
