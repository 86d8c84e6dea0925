"""UI workflow -> API prompt: the one conversion, as ComfyUI's frontend does it when it queues.

Facts followed (Comfy-Org/ComfyUI_frontend: ``graphToPrompt`` in src/utils/executionUtil.ts and
``ExecutableNodeDTO.resolveInput`` / ``resolveOutput`` in litegraph's subgraph code):

- every node that runs on the server becomes ``{"inputs", "class_type", "_meta": {"title"}}``
  under its id; a node inside a subgraph instance gets the colon path of instance ids above it
  (``"5:12"``, nested ``"5:12:3"``);
- inputs hold the node's widget values by name, then each connected input replaces its widget
  value with ``[origin_id, origin_slot]`` of the server node that really produces the value;
- resolving that producer walks through legacy ``Reroute`` nodes, bypassed nodes (mode 4: the
  consumer takes the bypassed node's input of the matching type), subgraph boundaries and
  subgraph instances; a ``PrimitiveNode`` (frontend only) gives its widget value instead;
- an input whose producer is muted (mode 2) is removed altogether, so validation reports it;
- a literal list is wrapped as ``{"__value__": [...]}`` (a bare 2-list would read as a link);
- ``Note``, ``MarkdownNote``, groups, native reroutes and floating links never reach the prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import WorkflowError
from .limits import DEFAULT_MAX_NODES, MAX_SUBGRAPH_DEPTH, check_expansion, too_deep, too_many_nodes
from .model import MODE_BYPASS, MODE_NEVER, SUBGRAPH_INPUT_NODE, Graph, Workflow, node_label, parse_workflow
from .promoted import instance_input, promoted_values
from .widgets import split_spec, widget_values

#: Frontend-only node types of the editor itself (virtual nodes: never sent to the server).
NOTE_TYPES = frozenset({"Note", "MarkdownNote"})
REROUTE_TYPE = "Reroute"
PRIMITIVE_TYPE = "PrimitiveNode"
VIRTUAL_TYPES = NOTE_TYPES | {REROUTE_TYPE, PRIMITIVE_TYPE}

#: PrimitiveNode property that makes the frontend run its %-replacements over the value.
PRIMITIVE_REPLACE_PROPERTY = "Run widget replace on values"


def workflow_to_prompt(workflow: dict, object_info: dict, *,
                       max_nodes: int = DEFAULT_MAX_NODES) -> tuple[dict, list[str]]:
    """Convert a UI workflow (schema 0.4 or 1, with subgraphs) into an API prompt.

    ``object_info`` is the ``/object_info`` dict (``registry.object_info()``); it names the
    widget inputs behind each node's positional ``widgets_values``. ``max_nodes`` bounds the
    workflow flattened (the server passes ``--max-prompt-nodes``; see graph/workflow/limits.py).
    Returns ``(prompt, warnings)``; raises WorkflowError naming the node for what cannot be
    converted (a node type the server does not know, a malformed or self-containing graph, one
    that expands past the limits)."""
    if not isinstance(object_info, dict):
        raise WorkflowError("object_info must be the /object_info dict")
    warnings: list[str] = []
    parsed = parse_workflow(workflow, warnings)
    check_expansion(parsed, max_nodes)  # before anything is expanded
    prompt = _Converter(parsed, object_info, warnings, max_nodes).run()
    return prompt, warnings


# -- what a connected input resolves to -------------------------------------------------------
@dataclass(frozen=True)
class _Output:
    """An output of a node that runs on the server: the prompt link ``[node_id, slot]``."""

    node_id: str
    slot: int


@dataclass(frozen=True)
class _Literal:
    """A value given by the editor itself (a PrimitiveNode, a widget shown on a subgraph)."""

    value: Any


@dataclass(frozen=True)
class _Muted:
    """The producer is muted: the consumer's input is left out, as the frontend does."""

    node_id: str


_Resolved = _Output | _Literal | _Muted | None  # None: nothing connected, keep the widget value


@dataclass(frozen=True)
class _Scope:
    """A graph as seen from one place: the root, or one subgraph instance (nested ones too)."""

    graph: Graph
    path: tuple[str, ...] = ()  # ids of the instances from the root down to this graph
    instance: dict | None = None  # the instance node (it lives in ``parent``)
    parent: _Scope | None = None

    def execution_id(self, node_id: str) -> str:
        return ":".join(self.path + (node_id,))

    def label(self, node_id: str, subgraphs: dict[str, Graph]) -> str:
        """``node 5:12 (KSampler) in subgraph 'Sampler'``; an instance is named by its subgraph."""
        node = self.graph.nodes.get(node_id, {})
        definition = subgraphs.get(node.get("type", ""))
        if definition is not None:
            node = {"type": f"subgraph '{definition.name}'"}
        where = f" in subgraph '{self.graph.name}'" if self.path else ""
        return node_label(self.execution_id(node_id), node) + where

    def enter(self, instance_id: str, instance: dict, definition: Graph) -> _Scope:
        return _Scope(definition, self.path + (instance_id,), instance, self)

    def subgraph_chain(self) -> list[str]:
        chain: list[str] = []
        scope: _Scope | None = self
        while scope is not None and scope.graph.id is not None:
            chain.append(scope.graph.id)
            scope = scope.parent
        return chain


class _Converter:
    def __init__(self, workflow: Workflow, object_info: dict, warnings: list[str], max_nodes: int):
        self.workflow = workflow
        self.object_info = object_info
        self.warnings = warnings
        self.max_nodes = max_nodes
        self.walked = 0  # nodes met while flattening, counted as check_expansion measures them
        self._promoted_cache: dict[tuple[str, ...], dict[int, Any]] = {}

    def _label(self, scope: _Scope, node_id: str) -> str:
        return scope.label(node_id, self.workflow.subgraphs)

    def run(self) -> dict:
        prompt: dict = {}
        self._emit_graph(_Scope(self.workflow.root), prompt)
        return prompt

    # -- emitting nodes -------------------------------------------------------------------
    def _emit_graph(self, scope: _Scope, prompt: dict) -> None:
        if len(scope.path) > MAX_SUBGRAPH_DEPTH:
            assert scope.parent is not None  # a scope below the root has the one it was entered from
            raise too_deep(self._label(scope.parent, scope.path[-1]))
        self.walked += len(scope.graph.nodes)
        if self.walked > self.max_nodes:
            raise too_many_nodes(self.max_nodes)
        for node_id, node in scope.graph.nodes.items():
            node_type, mode = node["type"], node.get("mode", 0)
            if node_type in VIRTUAL_TYPES:
                continue
            definition = self.workflow.subgraphs.get(node_type)
            if definition is not None:
                if mode in (MODE_NEVER, MODE_BYPASS):
                    continue  # a muted or bypassed instance runs none of its contents
                if definition.id in scope.subgraph_chain():
                    raise WorkflowError(f"{self._label(scope, node_id)}: subgraph '{definition.name}' "
                                        "contains itself")
                self._emit_graph(scope.enter(node_id, node, definition), prompt)
                continue
            if mode in (MODE_NEVER, MODE_BYPASS):
                continue
            schema = self.object_info.get(node_type)
            if not isinstance(schema, dict):
                raise WorkflowError(self._unknown_type_message(scope, node_id, node_type))
            prompt[scope.execution_id(node_id)] = self._prompt_entry(scope, node_id, node, schema)

    def _unknown_type_message(self, scope: _Scope, node_id: str, node_type: str) -> str:
        message = f"{self._label(scope, node_id)}: node type '{node_type}' is not known to this server"
        if node_type in self.workflow.group_nodes or node_type.startswith(("workflow>", "workflow/")):
            message += (" (a legacy group node; convert it to a subgraph in the editor, "
                        "group nodes are not supported)")
        else:
            message += " (a missing custom node pack, or a frontend-only node of an extension)"
        return message

    def _prompt_entry(self, scope: _Scope, node_id: str, node: dict, schema: dict) -> dict:
        label = self._label(scope, node_id)
        inputs: dict[str, Any] = {}
        for name, value in widget_values(node, schema, label, self.warnings).items():
            inputs[name] = _literal(value)
        for entry in node.get("inputs") or []:
            if not isinstance(entry, dict) or entry.get("link") is None or not entry.get("name"):
                continue
            name = entry["name"]
            resolved = self._resolve_input(scope, node_id, entry, set())
            if isinstance(resolved, _Output):
                inputs[name] = [resolved.node_id, resolved.slot]
            elif isinstance(resolved, _Literal):
                inputs[name] = _literal(resolved.value)
            elif isinstance(resolved, _Muted):
                inputs.pop(name, None)
                self.warnings.append(f"{label}: input '{name}' comes from muted node "
                                     f"{resolved.node_id}; left out")
        self._warn_frontend_text(schema, inputs, label)
        title = node.get("title") or schema.get("display_name") or node["type"]
        return {"inputs": inputs, "class_type": node["type"], "_meta": {"title": title}}

    def _warn_frontend_text(self, schema: dict, inputs: dict, label: str) -> None:
        """Text the ComfyUI frontend rewrites at queue time and we send as saved."""
        specs = {**(schema.get("input") or {}).get("required", {}),
                 **(schema.get("input") or {}).get("optional", {})}
        for name, value in inputs.items():
            if not isinstance(value, str) or name not in specs:
                continue
            _, options = split_spec(specs[name])
            if options.get("dynamicPrompts") and _DYNAMIC_PROMPT.search(value):
                self.warnings.append(f"{label}: '{name}' uses {{a|b}} choices or // comments, which "
                                     "the ComfyUI frontend resolves when it queues; sent verbatim")
            if _FRONTEND_REPLACEMENT.search(value):
                self.warnings.append(f"{label}: '{name}' has a %date:...% or %Node.widget% "
                                     "pattern, which only the frontend replaces; sent verbatim")

    # -- resolving a connected input to its producer -------------------------------------------
    def _resolve_input(self, scope: _Scope, node_id: str, entry: dict, visited: set,
                       wanted_type: Any = None) -> _Resolved:
        """What feeds input ``entry`` of node ``node_id`` in ``scope``."""
        link_id = entry.get("link")
        if link_id is None:
            return None
        link = scope.graph.links.get(str(link_id))
        if link is None:
            self.warnings.append(f"{self._label(scope, node_id)}: input '{entry.get('name')}' names "
                                 f"link {link_id}, which the graph lacks; treated as unconnected")
            return None
        target_type = wanted_type if wanted_type is not None else entry.get("type")
        if link.origin_id == SUBGRAPH_INPUT_NODE:
            return self._resolve_subgraph_input(scope, link.origin_slot, visited)
        origin = scope.graph.nodes.get(link.origin_id)
        if origin is None:
            self.warnings.append(f"{self._label(scope, node_id)}: input '{entry.get('name')}' comes from "
                                 f"node {link.origin_id}, which the graph lacks; treated as unconnected")
            return None
        return self._resolve_output(scope, link.origin_id, link.origin_slot, target_type, visited)

    def _resolve_output(self, scope: _Scope, node_id: str, slot: int, target_type: Any,
                        visited: set) -> _Resolved:
        """What output ``slot`` of node ``node_id`` really is, for an input of ``target_type``."""
        key = (scope.path, node_id, slot)
        if key in visited:
            raise WorkflowError(f"{self._label(scope, node_id)}: links through reroutes or bypassed "
                                "nodes form a loop")
        visited.add(key)
        node = scope.graph.nodes[node_id]
        node_type, mode = node["type"], node.get("mode", 0)
        if node_type == PRIMITIVE_TYPE:  # its value was copied into every target widget
            return self._primitive_value(scope, node_id, node)
        if mode == MODE_BYPASS:
            return self._resolve_bypass(scope, node_id, node, slot, target_type, visited)
        if node_type == REROUTE_TYPE:
            inputs = node.get("inputs") or []
            if slot < len(inputs) and isinstance(inputs[slot], dict):
                return self._resolve_input(scope, node_id, inputs[slot], visited, target_type)
            return None
        if node_type in NOTE_TYPES:
            return None
        definition = self.workflow.subgraphs.get(node_type)
        if definition is not None:
            if mode == MODE_NEVER:
                return _Muted(scope.execution_id(node_id))
            return self._resolve_subgraph_output(scope, node_id, node, definition, slot,
                                                 target_type, visited)
        if mode == MODE_NEVER:
            return _Muted(scope.execution_id(node_id))
        return _Output(scope.execution_id(node_id), slot)

    def _resolve_bypass(self, scope: _Scope, node_id: str, node: dict, slot: int,
                        target_type: Any, visited: set) -> _Resolved:
        inputs = [entry for entry in node.get("inputs") or [] if isinstance(entry, dict)]
        index = bypass_input_index(inputs, node.get("outputs") or [], slot, target_type)
        if index < 0 or index >= len(inputs):
            self.warnings.append(f"{self._label(scope, node_id)} is bypassed but has no input of type "
                                 f"{target_type} to pass on to output {slot}; its consumers get nothing")
            return None
        return self._resolve_input(scope, node_id, inputs[index], visited)

    def _resolve_subgraph_output(self, scope: _Scope, instance_id: str, instance: dict,
                                 definition: Graph, slot: int, target_type: Any,
                                 visited: set) -> _Resolved:
        if definition.id in scope.subgraph_chain():
            raise WorkflowError(f"{self._label(scope, instance_id)}: subgraph '{definition.name}' "
                                "contains itself")
        inner = scope.enter(instance_id, instance, definition)
        link = definition.link_to_output_slot(slot)
        if link is None:
            self.warnings.append(f"{self._label(scope, instance_id)}: output {slot} of subgraph "
                                 f"'{definition.name}' is not connected inside it")
            return None
        if link.origin_id == SUBGRAPH_INPUT_NODE:  # an input passed straight through
            return self._resolve_subgraph_input(inner, link.origin_slot, visited)
        if link.origin_id not in definition.nodes:
            self.warnings.append(f"{self._label(scope, instance_id)}: output {slot} of subgraph "
                                 f"'{definition.name}' comes from a node the subgraph lacks")
            return None
        return self._resolve_output(inner, link.origin_id, link.origin_slot, target_type, visited)

    def _resolve_subgraph_input(self, scope: _Scope, index: int, visited: set) -> _Resolved:
        """Subgraph input ``index`` seen from inside: the instance's link, else the value of the
        widget the instance shows for it, else nothing (the inner widget keeps its value)."""
        if scope.instance is None or scope.parent is None:
            self.warnings.append(f"a link from subgraph input {index} outside any subgraph is ignored")
            return None
        instance_id = scope.path[-1]
        entry = instance_input(scope.instance, scope.graph, index)
        if entry is not None and entry.get("link") is not None:
            return self._resolve_input(scope.parent, instance_id, entry, visited)
        if scope.path not in self._promoted_cache:
            self._promoted_cache[scope.path] = promoted_values(
                scope.graph, scope.instance, self.workflow.subgraphs, self.object_info)
        promoted = self._promoted_cache[scope.path]
        if index in promoted:
            return _Literal(promoted[index])
        return None

    # -- values the editor supplies ---------------------------------------------------------------
    def _primitive_value(self, scope: _Scope, node_id: str, node: dict) -> _Resolved:
        saved = node.get("widgets_values")
        if isinstance(saved, list) and saved:
            value = saved[0]
        elif isinstance(saved, dict) and "value" in saved:
            value = saved["value"]
        else:
            self.warnings.append(f"{self._label(scope, node_id)} has no saved value; its targets keep theirs")
            return None
        properties = node.get("properties") or {}
        if properties.get(PRIMITIVE_REPLACE_PROPERTY) and isinstance(value, str) and "%" in value:
            self.warnings.append(f"{self._label(scope, node_id)}: the frontend would run %-replacements over "
                                 "this value; sent verbatim")
        return _Literal(value)


def bypass_input_index(inputs: list[dict], outputs: list, slot: int, target_type: Any) -> int:
    """Which input a bypassed node passes on to output ``slot``, for a consumer of
    ``target_type`` (litegraph's rule): the input at the same index when its type fits both the
    output and the consumer, else the first input of exactly the consumer's type, else the first
    input that fits both; -1 when none does. A wildcard consumer takes the same index or 0."""
    if target_type in ("*", "", None):
        return slot if 0 <= slot < len(inputs) else 0
    output = outputs[slot] if 0 <= slot < len(outputs) and isinstance(outputs[slot], dict) else {}
    output_type = output.get("type")
    if 0 <= slot < len(inputs):
        same = inputs[slot].get("type")
        if slot_types_match(same, output_type) and slot_types_match(same, target_type):
            return slot
    for index, entry in enumerate(inputs):
        if entry.get("type") == target_type:
            return index
    for index, entry in enumerate(inputs):
        fits_output = slot_types_match(entry.get("type"), output_type)
        if fits_output and slot_types_match(entry.get("type"), target_type):
            return index
    return -1


def slot_types_match(a: Any, b: Any) -> bool:
    """litegraph's connection rule: wildcards and empty types match anything; otherwise the
    names match case-insensitively, comma lists when any members match."""
    if a in ("", "*"):
        a = None
    if b in ("", "*"):
        b = None
    if not a or not b or a == b:
        return True
    a, b = str(a).lower(), str(b).lower()
    if "," not in a and "," not in b:
        return a == b
    return any(slot_types_match(x, y) for x in a.split(",") for y in b.split(","))


def _literal(value: Any) -> Any:
    """Lists in an API prompt mean links; a literal list travels wrapped."""
    return {"__value__": value} if isinstance(value, list) else value


_DYNAMIC_PROMPT = re.compile(r"\{[^{}]*\|[^{}]*\}|/\*|(?<!:)//")
_FRONTEND_REPLACEMENT = re.compile(r"%date:[^%]*%|%[^%\s.]+\.[^%\s]+%")
