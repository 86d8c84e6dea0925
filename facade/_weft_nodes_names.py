"""ComfyUI's public names in its ``nodes`` module, answered by Weft's ``nodes`` package.

ComfyUI's built-in nodes live in one module called ``nodes``; Weft's are a package of the same
name. Packs do ``import nodes`` / ``from nodes import MAX_RESOLUTION, LoraLoader,
NODE_CLASS_MAPPINGS, common_ksampler``. :func:`install` gives Weft's package a module
``__getattr__`` (PEP 562) that answers those names from the bound server's registry, so nothing in
Weft's own ``nodes`` code knows about them.

A ComfyUI core node Weft's registry lacks (``GLIGENLoader`` …)
is answered by a placeholder class (:func:`_weft_absent.absent_node`): ComfyUI's ``FUNCTION`` and
``RETURN_TYPES``, subclassable, and calling its function raises an error naming the missing
feature. ``NODE_CLASS_MAPPINGS`` stays exactly the registry: placeholders are never nodes there.
"""

from __future__ import annotations

import functools
from collections.abc import MutableMapping
from types import ModuleType
from typing import Any, Iterator

import _weft_absent as absent
from _weft_binding import host
from graph.context import current_context

MAX_RESOLUTION = 16384


class NodeClassMappings(MutableMapping):
    """``nodes.NODE_CLASS_MAPPINGS``: every registered node class by name, live. Assigning a
    class registers it (as a pack's node); core nodes cannot be replaced or removed."""

    def __getitem__(self, name: str) -> type:
        definition = host().registry.get(name)
        if definition is None:
            raise KeyError(name)
        return definition.node_class

    def __setitem__(self, name: str, node_class: type) -> None:
        host().registry.register(name, node_class, python_module="custom_nodes")

    def __delitem__(self, name: str) -> None:
        raise TypeError("node classes cannot be unregistered in Weft")

    def __iter__(self) -> Iterator[str]:
        return iter(host().registry.names())

    def __len__(self) -> int:
        return len(host().registry.names())


class NodeDisplayNames(MutableMapping):
    """``nodes.NODE_DISPLAY_NAME_MAPPINGS``: display names by node name (read-only in Weft)."""

    def __getitem__(self, name: str) -> str:
        definition = host().registry.get(name)
        if definition is None:
            raise KeyError(name)
        return definition.display_name

    def __setitem__(self, name: str, value: str) -> None:
        """Accepted and ignored: display names come from each pack's own mapping."""

    def __delitem__(self, name: str) -> None:
        raise TypeError("display names cannot be removed")

    def __iter__(self) -> Iterator[str]:
        return iter(host().registry.names())

    def __len__(self) -> int:
        return len(host().registry.names())


def interrupt_processing(value: bool = True) -> None:
    """Ask the running job to stop (``False`` withdraws the request)."""
    ctx = current_context()
    flag = ctx.interrupt if ctx is not None and ctx.prompt_id else host().interrupt
    flag.request() if value else flag.clear()


def before_node_execution() -> None:
    ctx = current_context()
    if ctx is not None:
        ctx.check_interrupted()


def common_ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent, denoise=1.0,
                    disable_noise=False, start_step=None, last_step=None, force_full_denoise=False):
    """ComfyUI's shared KSampler body: ``(LATENT,)`` — Weft's KSampler run, progress included."""
    from nodes.sampling import ksample
    return (ksample(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent,
                    denoise=denoise, disable_noise=disable_noise, start_step=start_step, last_step=last_step,
                    force_full_denoise=force_full_denoise),)


_NAMES = {
    "MAX_RESOLUTION": MAX_RESOLUTION,
    "NODE_CLASS_MAPPINGS": NodeClassMappings(),
    "NODE_DISPLAY_NAME_MAPPINGS": NodeDisplayNames(),
    "EXTENSION_WEB_DIRS": {},
    "LOADED_MODULE_DIRS": {},
    "interrupt_processing": interrupt_processing,
    "before_node_execution": before_node_execution,
    "common_ksampler": common_ksampler,
}


#: ComfyUI's core nodes (its ``nodes.py``; class name = node id), names only.
COMFYUI_CORE_NODES = frozenset({
    "CLIPLoader", "CLIPSetLastLayer", "CLIPTextEncode", "CLIPVisionEncode", "CLIPVisionLoader",
    "CheckpointLoader", "CheckpointLoaderSimple", "ConditioningAverage", "ConditioningCombine",
    "ConditioningConcat", "ConditioningSetArea", "ConditioningSetAreaPercentage",
    "ConditioningSetAreaStrength", "ConditioningSetMask", "ConditioningSetTimestepRange",
    "ConditioningZeroOut", "ControlNetApply", "ControlNetApplyAdvanced", "ControlNetLoader",
    "DiffControlNetLoader", "DiffusersLoader", "DualCLIPLoader", "EmptyImage", "EmptyLatentImage",
    "GLIGENLoader", "GLIGENTextBoxApply", "ImageBatch", "ImageInvert", "ImagePadForOutpaint",
    "ImageScale", "ImageScaleBy", "InpaintModelConditioning", "KSampler", "KSamplerAdvanced",
    "LatentBlend", "LatentComposite", "LatentCrop", "LatentFlip", "LatentFromBatch", "LatentRotate",
    "LatentUpscale", "LatentUpscaleBy", "LoadImage", "LoadImageMask", "LoadImageOutput", "LoadLatent",
    "LoraLoader", "LoraLoaderModelOnly", "PreviewImage", "RepeatLatentBatch", "SaveImage", "SaveLatent",
    "SetLatentNoiseMask", "StyleModelApply", "StyleModelLoader", "UNETLoader", "VAEDecode",
    "VAEDecodeTiled", "VAEEncode", "VAEEncodeForInpaint", "VAEEncodeTiled", "VAELoader",
    "unCLIPCheckpointLoader", "unCLIPConditioning",
})

#: The core nodes Weft does not have: the feature each needs, ComfyUI's FUNCTION and RETURN_TYPES.
ABSENT_CORE_NODES: dict[str, tuple[absent.Feature, str, tuple[str, ...]]] = {
}


@functools.cache
def placeholder_node(name: str) -> type:
    """The placeholder class for ComfyUI's core node ``name`` (one class per name)."""
    feature, function, return_types = ABSENT_CORE_NODES.get(name, (absent.COMFY_NODE, "run", ()))
    return absent.absent_node(feature, "nodes", name, (function,), return_types)


def lookup(name: str) -> Any:
    """A ComfyUI ``nodes`` name: the table above, else a core node class by its node name, else a
    placeholder for a ComfyUI core node Weft lacks."""
    if name in _NAMES:
        return _NAMES[name]
    registry = host().registry
    if registry.is_core(name):
        return registry.get(name).node_class
    if name in COMFYUI_CORE_NODES:
        return placeholder_node(name)
    raise AttributeError(f"module 'nodes' has no attribute {name!r} (not one of ComfyUI's names Weft provides)")


def install(nodes_package: ModuleType) -> None:
    nodes_package.__getattr__ = lookup
