"""``comfy_extras.nodes_*``: ComfyUI's extra node modules, answered from Weft's core nodes.

Packs import node classes from these modules (``from comfy_extras.nodes_custom_sampler import
SamplerCustom``, ``comfy_extras.nodes_mask.GrowMask``). Each module of ComfyUI's list
(``_comfyui_nodes.NODES``) exists here as a module whose attributes are, by ComfyUI's class name:

- Weft's core node class of that node id (``nodes_post_processing.Blend`` is Weft's ``ImageBlend``);
  any Weft core node is also found by its node id. Where ComfyUI's class is a V3 node that packs
  call directly (``ImageUpscaleWithModel.execute(upscale_model, image)``, :data:`V3_CALLED`), it is
  a subclass of Weft's class whose ``execute`` runs the node and returns a ``NodeOutput``;
- a helper packs import that is not a node (``nodes_mask.composite``, ``Noise_RandomNoise`` …,
  ``_helpers.HELPERS``): Weft's where Weft has the algorithm, else a placeholder that raises;
- for a ComfyUI node of that module Weft does not have, a placeholder class
  (``_weft_absent.absent_node``) whose methods raise an error naming the node.

Any other name raises AttributeError (ImportError for ``from … import``).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
import types

import _weft_absent as absent
from comfy_extras._comfyui_nodes import NODES

#: ComfyUI's ``comfy_extras`` node modules (names only).
MODULES = frozenset(NODES)

#: Modules whose nodes all need one feature Weft lacks (others are named as plain missing nodes).
MODULE_FEATURES = {
    "nodes_stable3d": absent.VIDEO,
    "nodes_video_model": absent.VIDEO,
    "nodes_lt": absent.VIDEO,
    "nodes_wan": absent.VIDEO,
    "nodes_mochi": absent.VIDEO,
    "nodes_hunyuan": absent.VIDEO,
    "nodes_cosmos": absent.VIDEO,
    "nodes_camera_trajectory": absent.VIDEO,
}

#: ComfyUI V3 node classes packs call directly (``cls.execute(...)``), by module: Weft's node
#: function takes the same inputs, by the same names and in the same order.
V3_CALLED = {
    "nodes_upscale_model": frozenset({"UpscaleModelLoader", "ImageUpscaleWithModel"}),
}


@functools.cache
def _v3_called(node_class: type) -> type:
    """``node_class`` with ComfyUI's V3 entry point: ``execute(*inputs)`` calls the node's
    function on a new instance and returns its outputs as a ``NodeOutput`` (``[0]``, ``.result``)."""
    from comfy_api.latest import io

    def execute(cls, *args, **kwargs):
        return io.NodeOutput(*getattr(cls(), cls.FUNCTION)(*args, **kwargs))

    return type(node_class.__name__, (node_class,), {"execute": classmethod(execute),
                                                     "__module__": node_class.__module__,
                                                     "__doc__": node_class.__doc__})


@functools.cache
def _placeholder(leaf: str, class_name: str) -> type:
    node_id, methods = NODES[leaf][class_name]
    return absent.absent_node(MODULE_FEATURES.get(leaf, absent.COMFY_NODE), f"{__name__}.{leaf}", node_id,
                              methods, class_name=class_name)


def _attribute(module_name: str, name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    from _weft_binding import host
    from comfy_extras._helpers import HELPERS

    leaf = module_name.rpartition(".")[2]
    registry = host().registry
    comfy_class = NODES[leaf].get(name)
    for node_id in ((comfy_class[0],) if comfy_class else ()) + (name,):
        if registry.is_core(node_id):
            node_class = registry.get(node_id).node_class
            return _v3_called(node_class) if name in V3_CALLED.get(leaf, ()) else node_class
    helper = HELPERS.get(leaf, {}).get(name)
    if helper is not None:
        return helper
    if comfy_class is not None:
        return _placeholder(leaf, name)
    raise AttributeError(f"module {module_name!r} has no attribute {name!r} (neither one of ComfyUI's nodes "
                         f"of that module nor a helper Weft provides)")


class _ExtrasModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        prefix, _, leaf = fullname.partition(".")
        if prefix == __name__ and leaf in MODULES:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name, f"ComfyUI's {spec.name}: Weft's core node classes by node name.")
        module.__getattr__ = lambda name, _module=spec.name: _attribute(_module, name)
        return module

    def exec_module(self, module):
        """Nothing to run: attributes are looked up on use."""


def _install_finder() -> None:
    """Put the finder right after the standard path finder (so the facade's real files, such as
    ``comfy_extras.chainner_models``, come first), ahead of any last-resort finder added before
    this package was first imported."""
    if any(isinstance(finder, _ExtrasModules) for finder in sys.meta_path):
        return
    after = next((i + 1 for i, finder in enumerate(sys.meta_path) if finder is importlib.machinery.PathFinder),
                 len(sys.meta_path))
    sys.meta_path.insert(after, _ExtrasModules())


_install_finder()
