"""Reading a litegraph UI workflow (what ComfyUI's and Weft's editors save) into plain records.

Both serialisations are accepted and read into the same shape:

- schema 0.4: ``links`` is a list of arrays ``[id, origin_id, origin_slot, target_id,
  target_slot, type]``, counters in ``last_node_id`` / ``last_link_id``, native reroutes (if
  any) in ``extra.reroutes`` with ``extra.linkExtensions``;
- schema 1: ``links`` is a list of objects ``{id, origin_id, origin_slot, target_id,
  target_slot, type, parentId?}``, counters in ``state``, top-level ``reroutes`` and
  ``floatingLinks``.

Subgraph definitions (``definitions.subgraphs``, possibly nested inside a definition's own
``definitions``) are graphs of the schema-1 shape plus ``inputs`` / ``outputs`` lists; their
boundary is the pseudo node ``-10`` (links *from* it carry the instance's inputs) and ``-20``
(links *into* it feed the instance's outputs).

Native reroutes and floating links need nothing here: a link that passes through native
reroutes still runs from the real origin node to the real target node (``parentId`` only names
the reroute it is drawn through), and floating links are connected at one end only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import WorkflowError

#: Node ids of a subgraph's boundary pseudo nodes (litegraph's SUBGRAPH_INPUT_ID / OUTPUT_ID).
SUBGRAPH_INPUT_NODE = "-10"
SUBGRAPH_OUTPUT_NODE = "-20"

#: Node modes (litegraph's LGraphEventMode) that keep a node, or a subgraph instance with all its
#: contents, from running.
MODE_NEVER = 2  # "muted": never runs
MODE_BYPASS = 4


@dataclass(frozen=True)
class Link:
    id: str
    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int
    type: Any


@dataclass
class Graph:
    """One graph: the root workflow or one subgraph definition.

    ``nodes`` keeps the file's order (node id as a string -> the node's JSON object);
    ``inputs`` / ``outputs`` are a subgraph's boundary slots (empty for the root)."""

    nodes: dict[str, dict]
    links: dict[str, Link]
    id: str | None = None
    name: str = ""
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)

    def links_from_input_slot(self, index: int) -> list[Link]:
        """The links that carry subgraph input ``index`` to inner nodes, in the order the
        definition lists them (its ``linkIds``), else in file order."""
        ordered = _listed_links(self, self.inputs, index)
        if ordered is not None:
            return [link for link in ordered if link.origin_id == SUBGRAPH_INPUT_NODE and link.origin_slot == index]
        return [link for link in self.links.values()
                if link.origin_id == SUBGRAPH_INPUT_NODE and link.origin_slot == index]

    def link_to_output_slot(self, index: int) -> Link | None:
        """The link that feeds subgraph output ``index`` (an output slot takes one link)."""
        ordered = _listed_links(self, self.outputs, index)
        candidates = ordered if ordered is not None else self.links.values()
        for link in candidates:
            if link.target_id == SUBGRAPH_OUTPUT_NODE and link.target_slot == index:
                return link
        return None


@dataclass
class Workflow:
    root: Graph
    subgraphs: dict[str, Graph]  # subgraph id (the instance node's type) -> definition
    group_nodes: frozenset[str] = frozenset()  # legacy group-node type names (unsupported)


def is_ui_workflow(data: Any) -> bool:
    """True for a litegraph UI workflow (a dict with a ``nodes`` list), false for an API prompt."""
    return isinstance(data, dict) and isinstance(data.get("nodes"), list)


def node_label(node_id: str, node: dict) -> str:
    """How messages name a node: ``node 3 (KSampler)``."""
    return f"node {node_id} ({node.get('type', '?')})"


def parse_workflow(data: Any, warnings: list[str]) -> Workflow:
    """Read a UI workflow; raise WorkflowError when it is not one."""
    if not is_ui_workflow(data):
        if isinstance(data, dict) and data and all(
                isinstance(v, dict) and "class_type" in v for v in data.values()):
            raise WorkflowError("this is an API prompt already, not a UI workflow: queue it as 'prompt'")
        raise WorkflowError("not a UI workflow: expected a JSON object with a 'nodes' list")
    root = _parse_graph(data, warnings, where="workflow")
    subgraphs: dict[str, Graph] = {}
    for definition in _definitions(data):
        sub_id = definition.get("id")
        if not isinstance(sub_id, str) or not sub_id:
            raise WorkflowError("a subgraph definition has no id")
        if sub_id in subgraphs:
            continue  # the same definition may be carried at several nesting levels
        graph = _parse_graph(definition, warnings, where=f"subgraph {definition.get('name') or sub_id}")
        graph.id = sub_id
        graph.name = str(definition.get("name") or sub_id)
        graph.inputs = _slots(definition.get("inputs"))
        graph.outputs = _slots(definition.get("outputs"))
        subgraphs[sub_id] = graph
    extra = data.get("extra")
    extra = extra if isinstance(extra, dict) else {}
    group_nodes = extra.get("groupNodes")
    group_nodes = group_nodes if isinstance(group_nodes, dict) else {}
    return Workflow(root=root, subgraphs=subgraphs,
                    group_nodes=frozenset(str(name) for name in group_nodes))


def _definitions(graph: dict) -> Iterable[dict]:
    """Every subgraph definition, depth first (definitions may nest inside definitions)."""
    definitions = graph.get("definitions")
    if not isinstance(definitions, dict):
        return
    for definition in _list(definitions.get("subgraphs")):
        if isinstance(definition, dict):
            yield definition
            yield from _definitions(definition)


def _list(value: Any) -> list:
    """A field that should be a list, or no entries (a hand-made file may hold anything there)."""
    return value if isinstance(value, list) else []


def _slots(value: Any) -> list[dict]:
    """Input/output slot entries: objects with a string name (others cannot be linked by name)."""
    return [entry for entry in _list(value) if isinstance(entry, dict) and isinstance(entry.get("name", ""), str)]


def _normal_node(node: dict) -> dict:
    """The node with its slot lists and properties in the shapes the converter reads (a copy:
    the caller's workflow is never changed)."""
    return {**node, "inputs": _slots(node.get("inputs")), "outputs": _slots(node.get("outputs")),
            "properties": node["properties"] if isinstance(node.get("properties"), dict) else {}}


def _parse_graph(data: dict, warnings: list[str], where: str) -> Graph:
    nodes: dict[str, dict] = {}
    for node in _list(data.get("nodes")):
        if not isinstance(node, dict) or "id" not in node:
            raise WorkflowError(f"{where}: a node without an id: {str(node)[:80]}")
        if not isinstance(node.get("type"), str) or not node["type"]:
            raise WorkflowError(f"{where}: node {node['id']} has no type")
        node_id = str(node["id"])
        if node_id in nodes:
            raise WorkflowError(f"{where}: two nodes share the id {node_id}")
        nodes[node_id] = _normal_node(node)
    links: dict[str, Link] = {}
    raw_links = data.get("links") or []
    if isinstance(raw_links, dict):  # some writers key links by id
        raw_links = list(raw_links.values())
    elif not isinstance(raw_links, list):
        warnings.append(f"{where}: ignored links that are not a list")
        raw_links = []
    for raw in raw_links:
        link = _parse_link(raw)
        if link is None:
            if raw is not None:
                warnings.append(f"{where}: ignored a malformed link {str(raw)[:80]}")
            continue
        links[link.id] = link
    return Graph(nodes=nodes, links=links)


def _parse_link(raw: Any) -> Link | None:
    try:
        if isinstance(raw, (list, tuple)) and len(raw) >= 5:  # schema 0.4 array
            link_id, origin_id, origin_slot, target_id, target_slot = raw[:5]
            link_type = raw[5] if len(raw) > 5 else None
        elif isinstance(raw, dict):  # schema 1 object
            link_id, origin_id, origin_slot = raw["id"], raw["origin_id"], raw["origin_slot"]
            target_id, target_slot, link_type = raw["target_id"], raw["target_slot"], raw.get("type")
        else:
            return None
        return Link(id=str(link_id), origin_id=str(origin_id), origin_slot=int(origin_slot),
                    target_id=str(target_id), target_slot=int(target_slot), type=link_type)
    except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: an infinite slot
        return None


def _listed_links(graph: Graph, slots: list[dict], index: int) -> list[Link] | None:
    """The links a boundary slot lists in ``linkIds``, or None when it lists none."""
    if not 0 <= index < len(slots):
        return None
    link_ids = slots[index].get("linkIds")
    if not isinstance(link_ids, list) or not link_ids:
        return None
    listed = [graph.links.get(str(link_id)) for link_id in link_ids]
    return [link for link in listed if link is not None] or None
