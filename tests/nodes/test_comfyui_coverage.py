"""Every ComfyUI core node of the Stable Diffusion family, or of no model family, is in Weft.

ComfyUI's current core set is read from the pinned ``comfyui-embedded-docs`` package; the nodes
Weft leaves out are classified by family in ``nodes/coverage.py``. A node that is neither
registered nor classified fails here, and so does a classification that no longer matches.
"""

from __future__ import annotations

from graph.registry import NodeRegistry
from nodes import register_builtin_nodes
from nodes.coverage import (DOCUMENTATION_ONLY, FRONTEND_ONLY, OTHER_FAMILIES, comfyui_core_node_names,
                            other_family)


def _registry() -> NodeRegistry:
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    return registry


def test_every_sd_family_and_model_agnostic_core_node_is_registered():
    registry = _registry()
    missing = [name for name in comfyui_core_node_names()
               if name not in registry and other_family(name) is None and name not in FRONTEND_ONLY
               and name not in DOCUMENTATION_ONLY]
    assert not missing, f"{len(missing)} ComfyUI core nodes of the SD family or of no family are not in Weft: {missing}"


def test_classification_names_only_current_core_nodes_that_weft_lacks():
    core = set(comfyui_core_node_names())
    classified = [name for names in OTHER_FAMILIES.values() for name in names]
    assert len(classified) == len(set(classified)), "a node is classified under two families"
    stale = sorted(set(classified) - core)
    assert not stale, f"classified nodes that are not in ComfyUI's current core set: {stale}"
    registry = _registry()
    both = sorted(name for name in classified if name in registry)
    assert not both, f"registered in Weft yet classified as another family's: {both}"
    assert FRONTEND_ONLY <= core and set(DOCUMENTATION_ONLY) <= core
    # A documentation-only page documents a node Weft has under its real id.
    assert all(real in registry and name not in registry for name, real in DOCUMENTATION_ONLY.items())


def test_core_set_is_the_full_documented_list():
    # The package documents ComfyUI's whole core set (about a thousand nodes), not a sample.
    names = comfyui_core_node_names()
    assert len(names) > 900 and {"KSampler", "CheckpointLoaderSimple", "ControlNetApplyAdvanced"} <= set(names)
