"""ComfyUI's public names in its ``nodes`` module, answered by Weft's ``nodes`` package.

ComfyUI's built-in nodes live in one module called ``nodes``; Weft's are a package of the same
name. Packs do ``import nodes`` / ``from nodes import MAX_RESOLUTION, LoraLoader,
NODE_CLASS_MAPPINGS, common_ksampler``. :func:`install` gives Weft's package a module
``__getattr__`` (PEP 562) that answers those names from the bound server's registry, so nothing in
Weft's own ``nodes`` code knows about them.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from types import ModuleType
from typing import Any, Iterator

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


def lookup(name: str) -> Any:
    """A ComfyUI ``nodes`` name: the table above, else a core node class by its node name."""
    if name in _NAMES:
        return _NAMES[name]
    registry = host().registry
    if registry.is_core(name):
        return registry.get(name).node_class
    raise AttributeError(f"module 'nodes' has no attribute {name!r} (not one of ComfyUI's names Weft provides)")


def install(nodes_package: ModuleType) -> None:
    nodes_package.__getattr__ = lookup
