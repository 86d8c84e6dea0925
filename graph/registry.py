"""The node registry: which node classes exist, and their ``/object_info`` schema.

One registry object is built at start-up (built-in packs first, then third-party packs) and
handed to the validator, the executor and the API. Core nodes are frozen: a later pack cannot
replace them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .protocol import INPUT_CATEGORIES, NODE_FAILURES, NodeDefinition, NodeDefinitionError, describe, read_input_types

log = logging.getLogger(__name__)


class NodeRegistry:
    def __init__(self) -> None:
        self._definitions: dict[str, NodeDefinition] = {}
        self._core: set[str] = set()

    # -- registration -------------------------------------------------------------------------
    def register(self, name: str, node_class: type, *, display_name: str | None = None,
                 python_module: str = "nodes", core: bool = False) -> NodeDefinition:
        """Add one node class. Raises NodeDefinitionError for a malformed class or a name that
        would replace a core node."""
        if not isinstance(name, str) or not name:
            raise NodeDefinitionError(f"node name must be a non-empty string, got {name!r}")
        if name in self._core:
            raise NodeDefinitionError(f"{name} is a core node and cannot be replaced")
        definition = describe(name, node_class, display_name, python_module)
        self._definitions[name] = definition
        if core:
            self._core.add(name)
        return definition

    def register_mappings(self, class_mappings: dict, display_names: dict | None = None, *,
                          python_module: str = "nodes", core: bool = False) -> dict[str, str]:
        """Register a pack's ``NODE_CLASS_MAPPINGS``; returns ``{name: error}`` for the rejected ones."""
        display_names = display_names or {}
        rejected: dict[str, str] = {}
        for name, node_class in class_mappings.items():
            try:
                self.register(name, node_class, display_name=display_names.get(name),
                              python_module=python_module, core=core)
            except NodeDefinitionError as exc:
                rejected[str(name)] = str(exc)
            except NODE_FAILURES as exc:  # a pack's INPUT_TYPES may raise anything, sys.exit() included
                rejected[str(name)] = f"{type(exc).__name__}: {exc}"
        return rejected

    # -- lookup ---------------------------------------------------------------------------------
    def get(self, name: object) -> NodeDefinition | None:
        return self._definitions.get(name) if isinstance(name, str) else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._definitions

    def names(self) -> list[str]:
        return list(self._definitions)

    def is_core(self, name: str) -> bool:
        return name in self._core

    def definitions(self) -> Iterable[NodeDefinition]:
        return self._definitions.values()

    # -- /object_info ---------------------------------------------------------------------------
    def node_info(self, name: str) -> dict:
        """One node's schema in ComfyUI's ``/object_info`` shape.

        A class with a callable ``GET_NODE_INFO_V1`` (ComfyUI's V3 nodes) renders its own entry, as
        ComfyUI's server lets it; only its ``name`` and ``python_module`` come from the registration.
        """
        d = self._definitions[name]
        own_info = getattr(d.node_class, "GET_NODE_INFO_V1", None)
        if callable(own_info):
            return {**own_info(), "name": d.name, "python_module": d.python_module}
        raw_inputs = read_input_types(d.node_class)
        info = {
            "input": {k: v for k, v in raw_inputs.items() if k in INPUT_CATEGORIES},
            "input_order": {k: list(v.keys()) for k, v in raw_inputs.items() if k in INPUT_CATEGORIES},
            "output": list(d.return_types),
            "output_is_list": list(d.output_is_list),
            "output_name": list(d.return_names),
            "name": d.name,
            "display_name": d.display_name,
            "description": d.description,
            "python_module": d.python_module,
            "category": d.category,
            "output_node": d.output_node,
        }
        if d.output_tooltips:
            info["output_tooltips"] = list(d.output_tooltips)
        if d.deprecated:
            info["deprecated"] = True
        if d.experimental:
            info["experimental"] = True
        return info

    def object_info(self) -> dict:
        """Every node's schema; a node whose INPUT_TYPES raises is left out, not the whole answer."""
        out = {}
        for name in self._definitions:
            try:
                out[name] = self.node_info(name)
            except NODE_FAILURES:
                log.warning("node %s left out of object_info: its INPUT_TYPES failed", name, exc_info=True)
                continue
        return out
