"""Input signatures: the cache key of a node's result.

``signature(node) = H(class_type, IS_CHANGED value, [node id if NOT_IDEMPOTENT or it takes
UNIQUE_ID], sorted inputs)``, where a linked input contributes ``(signature(source), slot)``. So
two nodes anywhere, in any prompt, share a result exactly when their whole upstream subgraph —
values and structure — is the same. Computed iteratively (no recursion limit on deep graphs).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import uuid
from typing import Any

from .prompt import DynamicPrompt, is_link, unwrap_literal
from .registry import NodeRegistry


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))


def _call_is_changed(node_class: type[Any], literals: dict) -> Any:
    fn = node_class.IS_CHANGED
    try:
        params = inspect.signature(fn).parameters.values()
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            names = {p.name for p in params}
            literals = {k: v for k, v in literals.items() if k in names}
        if next(iter(inspect.signature(fn).parameters), None) == "self":
            return fn(node_class(), **literals)
        return fn(**literals)
    except Exception:
        return float("nan")  # an exception means "always changed", like ComfyUI


class SignatureBuilder:
    """Signatures for the nodes of one run; IS_CHANGED is called at most once per node."""

    def __init__(self, registry: NodeRegistry, dynprompt: DynamicPrompt) -> None:
        self._registry = registry
        self._dynprompt = dynprompt
        self._signatures: dict[str, str] = {}
        self._keeps_id: dict[str | None, bool] = {}

    def _keeps_node_id(self, class_type: str | None) -> bool:
        """NOT_IDEMPOTENT nodes, and nodes told their own id, never share a result with another node."""
        if class_type not in self._keeps_id:
            definition = self._registry.get(class_type)
            self._keeps_id[class_type] = definition is not None and (
                definition.not_idempotent
                or "UNIQUE_ID" in (definition.node_class.INPUT_TYPES().get("hidden") or {}).values())
        return self._keeps_id[class_type]

    def _is_changed(self, node_id: str, node: dict) -> Any:
        definition = self._registry.get(node["class_type"])
        if definition is None or not definition.has_is_changed:
            return None
        literals = {k: unwrap_literal(v) for k, v in node.get("inputs", {}).items() if not is_link(v)}
        value = _call_is_changed(definition.node_class, literals)
        if isinstance(value, float) and math.isnan(value):
            return f"always-changed:{uuid.uuid4().hex}"  # NaN never equals itself: never reuse
        return value

    def _own_parts(self, node_id: str, node: dict) -> tuple[list, list[str]]:
        keep_id = self._keeps_node_id(node.get("class_type"))
        inputs: list[tuple] = []
        sources: list[str] = []
        for name, value in sorted(node.get("inputs", {}).items()):
            if is_link(value):
                sources.append(str(value[0]))
                inputs.append((name, "link", str(value[0]), value[1]))
            else:
                inputs.append((name, "value", _canonical(unwrap_literal(value))))
        head = [node.get("class_type"), _canonical(self._is_changed(node_id, node)), node_id if keep_id else None]
        return [head, inputs], sources

    def signature(self, node_id: str) -> str:
        if node_id in self._signatures:
            return self._signatures[node_id]
        parts: dict[str, list] = {}
        stack = [node_id]
        visiting: set[str] = set()
        while stack:
            current = stack[-1]
            if current in self._signatures:
                stack.pop()
                continue
            node = self._dynprompt.get(current)
            if node is None:  # a dangling link: the signature says so, and the run will fail on it
                self._signatures[current] = f"missing:{current}"
                stack.pop()
                continue
            if current not in parts:
                parts[current], sources = self._own_parts(current, node)
                visiting.add(current)
                todo = [s for s in sources if s not in self._signatures and s not in visiting]
                if todo:
                    stack.extend(todo)
                    continue
            stack.pop()
            visiting.discard(current)
            head, inputs = parts.pop(current)
            resolved = [(i[0], "link", self._signatures.get(i[2], f"cycle:{i[2]}"), i[3]) if i[1] == "link" else i
                        for i in inputs]
            digest = hashlib.sha256(_canonical([head, resolved]).encode()).hexdigest()
            self._signatures[current] = digest
        return self._signatures[node_id]
