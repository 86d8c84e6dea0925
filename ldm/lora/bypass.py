"""LoRA as a forward-pass bypass (ComfyUI's ``LoraLoaderBypass``): ``y = layer(x) + s·Δ(x)``.

A merged LoRA changes the weight (``W + s·ΔW``); a bypassed one leaves every weight as it is and
adds the adapter's own path to the layer's output — for a LoRA on a linear layer
``s·(alpha/r)·up(down(x))``, on a convolution ``down`` convolved with the layer's stride and
padding, then ``up`` as a 1x1 convolution (through ``mid`` for Tucker LoCon); a full difference
runs as a layer of its own; a bias difference is added. Both give the same output up to rounding,
but the bypass keeps the adapter in its own precision beside low-precision (fp8) weights.

Only ``nn.Linear`` and ``nn.Conv2d`` layers have a bypass path; patches on other tensors (norm
scales, embeddings) stay weight patches. The bypass is installed as a ``diffusion_model`` wrapper
(``ldm.networks.unet_patches``): forward hooks on the running network for the duration of one UNet call,
so the network shared by every clone is never changed.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ldm.lora.patches import DiffAdapter, LoraAdapter, WeightPatch

log = logging.getLogger(__name__)

#: The key of the bypass wrappers among a MODEL's ``diffusion_model`` wrappers.
WRAPPER_KEY = "weft_lora_bypass"
BYPASS_LAYERS = (nn.Linear, nn.Conv2d)


@dataclass(frozen=True)
class BypassEntry:
    """One adapter on one layer: ``part`` is ``"weight"`` (a path through the adapter) or
    ``"bias"`` (a difference added to the output)."""

    part: str
    patch: WeightPatch


def _tensor(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return value.to(device=like.device, dtype=like.dtype)


def _conv(layer: nn.Conv2d, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, kernel, None, layer.stride, layer.padding, layer.dilation, layer.groups)


def adapter_path(layer: nn.Module, adapter, x: torch.Tensor) -> torch.Tensor:
    """The adapter's contribution ``ΔW · x`` to ``layer``'s output (strength 1)."""
    weight_shape = layer.weight.shape
    if isinstance(adapter, DiffAdapter):
        kernel = _tensor(adapter.diff, x).reshape(weight_shape)
        return _conv(layer, x, kernel) if isinstance(layer, nn.Conv2d) else F.linear(x, kernel)
    if not isinstance(adapter, LoraAdapter):
        raise TypeError(f"no bypass path for a {type(adapter).__name__}")
    up = _tensor(adapter.up, x).flatten(start_dim=1)  # [out, r]
    down = _tensor(adapter.down, x)
    if isinstance(layer, nn.Linear):
        return F.linear(F.linear(x, down.flatten(start_dim=1)), up) * adapter.scale
    if adapter.mid is None:
        hidden = _conv(layer, x, down.reshape(down.shape[0], weight_shape[1], *weight_shape[2:]))
    else:  # Tucker: a 1x1 down, then mid [r, r, kh, kw] with the layer's geometry
        hidden = F.conv2d(x, down.reshape(down.shape[0], -1, 1, 1))
        hidden = _conv(layer, hidden, _tensor(adapter.mid, x))
    return F.conv2d(hidden, up[:, :, None, None]) * adapter.scale


def bias_path(layer: nn.Module, adapter, output: torch.Tensor) -> torch.Tensor:
    """A bias difference shaped to broadcast over ``output`` (channels last for linear layers)."""
    bias = _tensor(adapter.delta(layer.bias.shape), output)
    return bias.reshape(-1, 1, 1) if isinstance(layer, nn.Conv2d) else bias


def split_patches(network: nn.Module, patches: Mapping[str, list[WeightPatch]]
                  ) -> tuple[dict[str, list[BypassEntry]], dict[str, list[WeightPatch]]]:
    """``(bypass by layer name, weight patches left)``: LoRA and difference patches on the weights
    and biases of linear and convolution layers go to the bypass, the rest stay weight patches."""
    bypass: dict[str, list[BypassEntry]] = {}
    left: dict[str, list[WeightPatch]] = {}
    for key, found in patches.items():
        owner, _, part = key.rpartition(".")
        layer = network.get_submodule(owner) if owner else network
        for patch in found:
            takes = (isinstance(layer, BYPASS_LAYERS) and part in ("weight", "bias") and patch.strength_model == 1.0
                     and (isinstance(patch.adapter, DiffAdapter) or (part == "weight"
                                                                    and isinstance(patch.adapter, LoraAdapter))))
            if takes:
                bypass.setdefault(owner, []).append(BypassEntry(part, patch))
            else:
                left.setdefault(key, []).append(patch)
    return bypass, left


def _hook(entries: list[BypassEntry]):
    def add_paths(layer: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        x = args[0]
        for entry in entries:
            if entry.patch.strength == 0.0:
                continue
            path = (adapter_path(layer, entry.patch.adapter, x) if entry.part == "weight"
                    else bias_path(layer, entry.patch.adapter, output))
            output = output + entry.patch.strength * path
        return output
    return add_paths


@contextlib.contextmanager
def bypassed(network: nn.Module, bypass: Mapping[str, list[BypassEntry]]) -> Iterator[nn.Module]:
    """``network`` with the bypass paths hooked onto its layers for the block."""
    handles = []
    try:
        for name, entries in bypass.items():
            handles.append(network.get_submodule(name).register_forward_hook(_hook(entries)))
        yield network
    finally:
        for handle in handles:
            handle.remove()


@dataclass(frozen=True)
class BypassWrapper:
    """A ``diffusion_model`` wrapper that runs the UNet call with the bypass hooked in."""

    bypass: Mapping[str, list[BypassEntry]]

    def __call__(self, executor, *args, **kwargs):
        with bypassed(executor.class_obj, self.bypass):
            return executor(*args, **kwargs)


def bypass_lora(base, patched):
    """A clone of ``patched`` (``base`` plus a LoRA's weight patches, as
    :func:`ldm.lora.patches.load_lora_for_models` makes it) whose new patches run as a bypass instead."""
    added = {}
    for key, found in patched.patches.items():
        before = len(base.patches.get(key, ()))
        if len(found) > before:
            added[key] = found[before:]
    bypass, left = split_patches(patched.unet, added)
    model = base.clone()
    for key, found in left.items():
        model.patches.setdefault(key, []).extend(found)
    if bypass:
        model.add_wrapper_with_key("diffusion_model", WRAPPER_KEY, BypassWrapper(bypass))
    log.info("LoRA bypass: %d layers bypassed, %d weight patches", len(bypass), sum(map(len, left.values())))
    return model
