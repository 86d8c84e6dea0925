"""Validation of an API prompt, with ComfyUI's error types and shapes.

Every error is ``{type, message, details, extra_info}``; errors of nodes are gathered into
``node_errors = {node_id: {"errors": [...], "dependent_outputs": [...], "class_type": ...}}``.
Outputs whose upstream graph is valid survive; the rest are dropped. If none survive the whole
prompt fails with ``prompt_outputs_failed_validation``.

The walk over the graph is iterative, so cycles, dangling links and graphs of tens of thousands
of nodes give errors, never a hang or a RecursionError.
"""

from __future__ import annotations

import copy
import inspect
import math
import traceback
from dataclasses import dataclass, field
from typing import Any, cast

from .prompt import is_link, looks_like_link, unwrap_literal
from .protocol import NODE_FAILURES, InputSpec, NodeDefinition
from .registry import NodeRegistry
from .types import PRIMITIVE_TYPES, is_combo, type_name, types_compatible

COMBO_LIST_LIMIT = 20  # longer combo lists are summarised in error details, as ComfyUI does


def make_error(error_type: str, message: str, details: str = "", **extra_info: Any) -> dict:
    return {"type": error_type, "message": message, "details": details, "extra_info": extra_info}


@dataclass
class ValidationResult:
    ok: bool
    error: dict | None
    outputs: list[str]
    node_errors: dict
    prompt: dict = field(default_factory=dict)  # the prompt with literals coerced to their types


class _NodeCheck:
    """What validating one node found: its own errors and the nodes it links to."""

    def __init__(self) -> None:
        self.errors: list[dict] = []
        self.sources: list[str] = []


def _coerce(input_type: Any, value: Any) -> Any:
    if input_type == "INT":
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a finite number")
        return int(value)
    if input_type == "FLOAT":
        result = float(value)
        if not math.isfinite(result):
            raise ValueError("not a finite number")
        return result
    if input_type == "STRING":
        return str(value)
    if input_type == "BOOLEAN":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return bool(value)
    return value


def _validate_function_inputs(definition: NodeDefinition) -> tuple[set[str], bool, bool]:
    """The inputs a VALIDATE_INPUTS declares, whether it takes **kwargs, and input_types."""
    fn = definition.validate_inputs
    if fn is None:
        return set(), False, False
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set(), True, False
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    has_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    return names - {"self", "cls"}, has_kwargs, "input_types" in names


def _call_validate_inputs(definition: NodeDefinition, kwargs: dict) -> Any:
    fn = definition.validate_inputs
    assert fn is not None  # called only for a node that declares VALIDATE_INPUTS
    params = list(inspect.signature(fn).parameters)
    if params and params[0] == "self":  # declared as a plain method: call it on an instance
        return fn(definition.node_class(), **kwargs)
    return fn(**kwargs)


def _check_literal(spec: InputSpec, value: Any, skip_builtin: bool, errors: list[dict]) -> tuple[bool, Any]:
    name, input_type, options = spec.name, spec.type, spec.options
    info = dict(input_name=name, input_config=[type_name(input_type), options])
    value = unwrap_literal(value)
    if input_type in PRIMITIVE_TYPES:
        try:
            value = _coerce(input_type, value)
        except (TypeError, ValueError, OverflowError) as exc:
            errors.append(make_error("invalid_input_type",
                                     f"Failed to convert an input value to a {input_type} value",
                                     f"{name}, {value!r}, {exc}", **info, received_value=value,
                                     exception_message=str(exc)))
            return False, value
    if skip_builtin:
        return True, value
    if input_type in ("INT", "FLOAT"):
        low, high = options.get("min"), options.get("max")
        if low is not None and value < low:
            errors.append(make_error("value_smaller_than_min", f"Value {value} smaller than min of {low}",
                                     name, **info, received_value=value))
            return False, value
        if high is not None and value > high:
            errors.append(make_error("value_bigger_than_max", f"Value {value} bigger than max of {high}",
                                     name, **info, received_value=value))
            return False, value
    if is_combo(input_type) and isinstance(input_type, (list, tuple)):
        choices = list(input_type)
        try:
            found = value in choices
        except TypeError:
            found = False
        if not found:
            shown = f"(list of length {len(choices)})" if len(choices) > COMBO_LIST_LIMIT else choices
            info["input_config"] = [shown if len(choices) > COMBO_LIST_LIMIT else choices, options]
            errors.append(make_error("value_not_in_list", "Value not in list", f"{name}: '{value}' not in {shown}",
                                     **info, received_value=value))
            return False, value
    return True, value


def _check_node(node_id: str, node: dict, prompt: dict, registry: NodeRegistry, coerced: dict) -> _NodeCheck:
    check = _NodeCheck()
    definition = registry.get(node["class_type"])
    assert definition is not None  # validate_prompt checked every class_type first
    inputs = node.get("inputs", {})
    if not isinstance(inputs, dict):
        check.errors.append(make_error("invalid_prompt", "Node inputs must be an object", f"Node ID '#{node_id}'"))
        return check
    try:
        specs = definition.inputs()
    except NODE_FAILURES as exc:  # a pack's INPUT_TYPES/VALIDATE_INPUTS may even sys.exit()
        check.errors.append(make_error("exception_during_validation", "Exception when validating node", str(exc),
                                       exception_type=type(exc).__name__,
                                       traceback=traceback.format_exc().splitlines()))
        return check
    declared, takes_kwargs, wants_types = _validate_function_inputs(definition)
    literals: dict[str, Any] = {}
    received_types: dict[str, Any] = {}

    for name, value in inputs.items():  # undeclared links still run (their values are passed on)
        if name not in specs and looks_like_link(value):
            _check_link(node_id, name, value, None, prompt, registry, check, received_types, wants_types)

    for name, spec in specs.items():
        if spec.category == "hidden":
            continue
        if name not in inputs:
            if spec.category == "required":
                check.errors.append(make_error("required_input_missing", "Required input is missing", name,
                                               input_name=name))
            continue
        value = inputs[name]
        if looks_like_link(value):
            _check_link(node_id, name, value, spec, prompt, registry, check, received_types, wants_types)
            continue
        skip_builtin = name in declared or takes_kwargs
        ok, value = _check_literal(spec, value, skip_builtin, check.errors)
        if ok:
            literals[name] = value
            coerced[node_id]["inputs"][name] = value

    if definition.validate_inputs is not None and not check.errors:
        kwargs = dict(literals) if takes_kwargs else {k: v for k, v in literals.items() if k in declared}
        if wants_types:
            kwargs["input_types"] = received_types
        try:
            verdict = _call_validate_inputs(definition, kwargs)
        except NODE_FAILURES as exc:
            check.errors.append(make_error("exception_during_validation", "Exception when validating node",
                                           str(exc), exception_type=type(exc).__name__,
                                           traceback=traceback.format_exc().splitlines()))
        else:
            if verdict is not True:
                check.errors.append(make_error("custom_validation_failed", "Custom validation failed for node",
                                               str(verdict), input_config=None))
    return check


def _check_link(node_id: str, name: str, value: Any, spec: InputSpec | None, prompt: dict,
                registry: NodeRegistry, check: _NodeCheck, received_types: dict, wants_types: bool) -> None:
    info = dict(input_name=name, input_config=[type_name(spec.type), spec.options] if spec else None,
                received_value=value)
    if not is_link(value):
        check.errors.append(make_error("bad_linked_input",
                                       "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                                       name, **info))
        return
    source_id, slot = str(value[0]), value[1]
    source = prompt.get(source_id)
    if not isinstance(source, dict) or registry.get(source.get("class_type")) is None:
        check.errors.append(make_error("bad_linked_input", "Bad linked input, the linked node does not exist",
                                       f"{name}: node '{source_id}'", **info))
        return
    source_definition = registry.get(source["class_type"])
    assert source_definition is not None  # checked just above
    return_types = source_definition.return_types
    if not 0 <= slot < len(return_types):
        check.errors.append(make_error("bad_linked_input",
                                       f"Bad linked input, node '{source_id}' has no output {slot}",
                                       f"{name}: {source['class_type']} has {len(return_types)} outputs", **info))
        return
    received = return_types[slot]
    received_types[name] = received
    if spec is not None and not wants_types and not types_compatible(received, spec.type):
        check.errors.append(make_error(
            "return_type_mismatch", "Return type mismatch between linked nodes",
            f"{name}, received_type({type_name(received)}) mismatch input_type({type_name(spec.type)})",
            input_name=name, input_config=info["input_config"], received_type=type_name(received),
            linked_node=value))
        return
    check.sources.append(source_id)


def _find_cycle_nodes(roots: list[str], checks: dict[str, _NodeCheck]) -> set[str]:
    """Nodes that lie on a dependency cycle (iterative DFS with an explicit stack)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour: dict[str, int] = {}
    on_cycle: set[str] = set()
    for root in roots:
        if colour.get(root, WHITE) != WHITE:
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                colour[node] = GREY
                path.append(node)
            sources = checks[node].sources
            if index < len(sources):
                stack.append((node, index + 1))
                nxt = sources[index]
                state = colour.get(nxt, WHITE)
                if state == WHITE:
                    stack.append((nxt, 0))
                elif state == GREY:  # back edge: every node on the path from nxt is on a cycle
                    on_cycle.update(path[path.index(nxt):])
            else:
                colour[node] = BLACK
                path.pop()
    return on_cycle


def validate_prompt(prompt: Any, registry: NodeRegistry, partial_targets: list | None = None) -> ValidationResult:
    if not isinstance(prompt, dict):
        return ValidationResult(False, make_error("invalid_prompt", "The prompt must be an object of nodes",
                                                  f"got {type(prompt).__name__}"), [], {})
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return ValidationResult(False, make_error(
                "invalid_prompt", "Cannot execute because a node is missing the class_type property.",
                f"Node ID '#{node_id}'"), [], {})
        class_type = node["class_type"]
        if registry.get(class_type) is None:
            title = (node.get("_meta") or {}).get("title") if isinstance(node.get("_meta"), dict) else None
            return ValidationResult(False, make_error(
                "missing_node_type", f"Node '{class_type}' not found. The custom node may not be installed.",
                f"Node ID '#{node_id}'", node_id=node_id, class_type=class_type, node_title=title or class_type),
                [], {})

    if partial_targets is not None:
        missing = [t for t in partial_targets if str(t) not in prompt]
        if missing:
            return ValidationResult(False, make_error("invalid_prompt", "Execution targets are not in the prompt",
                                                      ", ".join(map(str, missing))), [], {})
        outputs = [str(t) for t in partial_targets]
    else:
        outputs = [nid for nid, node in prompt.items()  # every class_type was checked above
                   if cast(NodeDefinition, registry.get(node["class_type"])).output_node]
    if not outputs:
        return ValidationResult(False, make_error("prompt_no_outputs", "Prompt has no outputs"), [], {})

    coerced = copy.deepcopy(prompt)
    checks: dict[str, _NodeCheck] = {}
    pending = list(outputs)
    while pending:  # check every node reachable from an output, once
        node_id = pending.pop()
        if node_id in checks:
            continue
        checks[node_id] = _check_node(node_id, prompt[node_id], prompt, registry, coerced)
        pending.extend(s for s in checks[node_id].sources if s not in checks)

    for node_id in _find_cycle_nodes(outputs, checks):
        checks[node_id].errors.append(make_error("dependency_cycle", "Dependency cycle detected",
                                                 f"Node ID '#{node_id}' depends on its own output"))

    node_errors: dict[str, dict] = {}
    good: list[str] = []
    failed_details: list[str] = []
    for output in outputs:
        ancestors, stack = {output}, [output]
        while stack:
            for source in checks[stack.pop()].sources:
                if source not in ancestors:
                    ancestors.add(source)
                    stack.append(source)
        broken = [n for n in ancestors if checks[n].errors]
        if not broken:
            good.append(output)
            continue
        for node_id in broken:
            entry = node_errors.setdefault(node_id, {"errors": checks[node_id].errors, "dependent_outputs": [],
                                                     "class_type": prompt[node_id]["class_type"]})
            entry["dependent_outputs"].append(output)
        failed_details.append(f"Output node {output} ({prompt[output]['class_type']}) failed validation")

    if not good:
        details = "\n".join(
            f"{e['message']}: {e['details']}" for entry in node_errors.values() for e in entry["errors"])
        return ValidationResult(False, make_error("prompt_outputs_failed_validation",
                                                  "Prompt outputs failed validation", details),
                                [], node_errors, coerced)
    return ValidationResult(True, None, good, node_errors, coerced)
