"""Hypernetworks in the AUTOMATIC1111 format: small MLPs that rewrite attention keys and values.

A file maps an attention input width (768 for SD1's context, 320/640/1280 for its feature maps)
to two MLPs, one for keys and one for values; each is ``x + strength · mlp(x)``. The MLP is a
chain of ``Linear`` layers, each followed by the activation (except the last, unless
``activate_output``; with layer norms ComfyUI activates the last one too, and so does this) and,
with ``is_layer_norm``, a ``LayerNorm``; dropout layers are training-only and left out (ComfyUI
leaves its dropout layers in training mode, so its output is random where a file asks for
dropout). As ComfyUI's ``HypernetworkLoader`` does, the patch runs before self- and
cross-attention alike and rewrites the inputs whose width has an entry.

Files: the ``.pt`` pickle A1111 writes (``{768: [keys_state, values_state], …,
"activation_func": "relu", "is_layer_norm": False, "activate_output": False, …}``, states named
``linear.N.weight``), read with ``weights_only``; or a safetensors file with the same tensors flat
(``768.0.linear.0.weight``) and the options as metadata strings.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Mapping

import torch
from torch import nn

from ldm.loading.checkpoint import load_object, read_safetensors_header, sniff_format
from ldm.networks import ops

log = logging.getLogger(__name__)

#: A1111's activation names -> layers (its "swish" is the hard variant).
ACTIVATIONS = {
    "linear": None, "relu": nn.ReLU, "leakyrelu": nn.LeakyReLU, "elu": nn.ELU, "swish": nn.Hardswish,
    "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "softsign": nn.Softsign, "mish": nn.Mish,
}
_FLAT_KEY = re.compile(r"(\d+)\.([01])\.(.+)")


class HypernetworkError(ValueError):
    """A hypernetwork file this build cannot read."""


def _flag(options: Mapping[str, Any], name: str) -> bool:
    value = options.get(name, False)
    return value.strip().lower() == "true" if isinstance(value, str) else bool(value)


def build_mlp(state: Mapping[str, torch.Tensor], activation: str, layer_norm: bool,
              activate_output: bool) -> nn.Sequential:
    """One key- or value-MLP from its state (``linear.N.weight`` / ``.bias``, in file order)."""
    names = [k[: -len(".weight")] for k in state if k.endswith(".weight")]
    layers: list[nn.Module] = []
    position = 0
    while position < len(names):
        weight, bias = state[f"{names[position]}.weight"], state[f"{names[position]}.bias"]
        linear = ops.Linear(weight.shape[1], weight.shape[0])
        linear.load_state_dict({"weight": weight.float(), "bias": bias.float()})
        layers.append(linear)
        # ComfyUI counts the norms in "last", so with layer norms the final Linear is activated
        # too (A1111 would not); its output is what workflows were tuned on.
        last = position == len(names) - 1
        if ACTIVATIONS[activation] is not None and (not last or activate_output):
            layers.append(ACTIVATIONS[activation]())
        if layer_norm:
            position += 1
            norm_weight, norm_bias = state[f"{names[position]}.weight"], state[f"{names[position]}.bias"]
            norm = ops.LayerNorm(norm_weight.shape[0])
            norm.load_state_dict({"weight": norm_weight.float(), "bias": norm_bias.float()})
            layers.append(norm)
        position += 1
    return nn.Sequential(*layers).eval().requires_grad_(False)


class HypernetworkPatch:
    """An ``attn1_patch`` / ``attn2_patch``: ``(n, context, value, extra) -> (n, context', value')``
    with ``context' = context + strength · mlp_k(context)`` (likewise for values) where the
    width has MLPs. The MLP layers cast their weights to the input's device and dtype per call."""

    def __init__(self, mlps: Mapping[int, tuple[nn.Module, nn.Module]], strength: float):
        self.mlps = dict(mlps)
        self.strength = strength

    def __call__(self, n: torch.Tensor, context: torch.Tensor, value: torch.Tensor, extra: dict):
        pair = self.mlps.get(context.shape[-1])
        if pair is None:
            return n, context, value
        with torch.no_grad():
            context = context + pair[0](context) * self.strength
            value = value + pair[1](value) * self.strength
        return n, context, value


def read_hypernetwork(path: str | os.PathLike) -> tuple[dict[int, list[dict]], dict[str, Any]]:
    """``({width: [keys_state, values_state]}, options)`` from a ``.pt`` or safetensors file."""
    raw = load_object(path)
    if sniff_format(path) == "safetensors":
        options: dict[str, Any] = read_safetensors_header(path)[1]
        widths: dict[int, list[dict]] = {}
        for key, tensor in raw.items():
            match = _FLAT_KEY.fullmatch(key)
            if match is None:
                raise HypernetworkError(f"{path}: unexpected hypernetwork key {key!r}")
            pair = widths.setdefault(int(match.group(1)), [{}, {}])
            pair[int(match.group(2))][match.group(3)] = tensor
        return widths, options
    if not isinstance(raw, dict):
        raise HypernetworkError(f"{path}: holds a {type(raw).__name__}, not a hypernetwork")
    widths = {int(k): v for k, v in raw.items() if isinstance(k, int) or (isinstance(k, str) and k.isdigit())}
    options = {k: v for k, v in raw.items() if isinstance(k, str) and not k.isdigit()}
    return widths, options


def load_hypernetwork(path: str | os.PathLike, strength: float) -> HypernetworkPatch:
    widths, options = read_hypernetwork(path)
    activation = str(options.get("activation_func", "linear"))
    if activation not in ACTIVATIONS:
        raise HypernetworkError(f"{path}: unsupported hypernetwork activation {activation!r} "
                                f"(supported: {', '.join(ACTIVATIONS)})")
    if not widths:
        raise HypernetworkError(f"{path}: the file holds no hypernetwork layers")
    layer_norm, activate_output = _flag(options, "is_layer_norm"), _flag(options, "activate_output")
    mlps = {width: tuple(build_mlp(state, activation, layer_norm, activate_output) for state in pair)
            for width, pair in widths.items()}
    log.info("hypernetwork %s: widths %s, %s", path, sorted(mlps), activation)
    return HypernetworkPatch(mlps, strength)
