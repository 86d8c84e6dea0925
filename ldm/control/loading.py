"""Control models from files: which kind a state dict holds, and the network built from it.

Detection by keys, in ComfyUI's order (``comfy.controlnet.load_controlnet_state_dict``):

1. ``lora_controlnet`` present: a control-LoRA (Stability's SDXL files) — low-rank deltas and a
   few full tensors over a copy of the sampled model's UNet encoder, built when sampling starts;
2. ``controlnet_cond_embedding.conv_in.weight``: diffusers layout (union models too), renamed;
3. ``zero_convs.0.0.weight`` with or without ``control_model.``: the original layout; a
   ``difference`` key marks a diff ControlNet whose weights are added to the model's UNet;
4. otherwise a T2I-Adapter (TencentARC or diffusers layout), or nothing known.

Networks are built on the meta device and adopt the file's tensors (no copy, storage dtype kept);
the engine places them on the device when sampling lends them.
"""

from __future__ import annotations

import logging
import os

from torch import nn

from ldm.control.apply import ControlModel
from ldm.control.detect import ControlDetectionError, controlnet_config, hint_block, with_encoder_of
from ldm.control.keys import diffusers_controlnet_to_original, is_diffusers_controlnet
from ldm.control.network import ControlNetModel
from ldm.control.t2i_adapter import (AdapterError, T2IAdapterModel, adapter_config,
                                     diffusers_adapter_to_original)
from ldm.loading.checkpoint import load_state_dict
from ldm.loading.weights import adopt_weights, strip_prefix

log = logging.getLogger(__name__)

ORIGINAL_PREFIX = "control_model."
CONTROL_LORA_MARKER = "lora_controlnet"
DIFF_MARKER = "difference"


def _build_controlnet(state_dict: dict, metadata: dict | None) -> ControlNetModel:
    network = ControlNetModel(controlnet_config(state_dict, metadata))
    adopt_weights(network, state_dict, what="ControlNet")
    return network


def _with_model_weights(state_dict: dict, unet: nn.Module) -> dict:
    """A diff ControlNet's tensors plus the model's own UNet weights of the same names."""
    own = unet.state_dict()
    out = {}
    for key, value in state_dict.items():
        base = own.get(key)
        out[key] = value + base.to(device=value.device, dtype=value.dtype) if base is not None else value
    return out


def control_lora_builder(weights: dict):
    """``build(unet)`` for a control-LoRA: a ControlNet shaped like ``unet``'s encoder whose weights
    are the UNet's, replaced by the file's full tensors and shifted by its ``up @ down`` deltas."""
    hint_channels, hint_widths = hint_block(weights)

    def build(unet: nn.Module) -> ControlNetModel:
        network = ControlNetModel(with_encoder_of(unet.config, hint_channels, hint_widths))
        own = network.state_dict(keep_vars=True)
        base = unet.state_dict()
        dtype = next(t.dtype for t in base.values() if t.is_floating_point())
        tensors = {key: base[key] for key in own if key in base}
        for key, value in weights.items():
            if key in own and (key.endswith(".weight") or key.endswith(".bias")):
                tensors[key] = value.to(dtype)
        for key in own:
            module = key.rsplit(".", 1)[0]
            up, down = weights.get(module + ".up"), weights.get(module + ".down")
            if key.endswith(".weight") and up is not None and down is not None:
                delta = (up.flatten(start_dim=1).float() @ down.flatten(start_dim=1).float()).reshape(own[key].shape)
                tensors[key] = (tensors[key].float() + delta.to(tensors[key].device)).to(dtype)
        adopt_weights(network, tensors, what="control-LoRA ControlNet")
        return network

    return build


def _adapter(state_dict: dict) -> ControlModel:
    if "adapter" in state_dict and isinstance(state_dict["adapter"], dict):
        state_dict = state_dict["adapter"]
    state_dict = diffusers_adapter_to_original(state_dict)
    network = T2IAdapterModel(adapter_config(state_dict))
    adopt_weights(network, state_dict, what="T2I-Adapter")
    return ControlModel(kind="t2i_adapter", network=network, image_channels=network.config.image_channels)


def control_model_from_state_dict(state_dict: dict, metadata: dict | None = None, *, unet: nn.Module | None = None,
                                  global_average_pooling: bool = False) -> ControlModel:
    """The :class:`ControlModel` in ``state_dict``; ``unet`` (the model's UNet module) is what a
    diff ControlNet's weights are added to. Raises ``ControlDetectionError`` for unknown files."""
    if CONTROL_LORA_MARKER in state_dict:
        return ControlModel(kind="control_lora", build=control_lora_builder(state_dict),
                            global_average_pooling=global_average_pooling)
    if is_diffusers_controlnet(state_dict):
        state_dict = diffusers_controlnet_to_original(state_dict, metadata)
    elif f"{ORIGINAL_PREFIX}zero_convs.0.0.weight" in state_dict:
        is_diff = DIFF_MARKER in state_dict
        state_dict = strip_prefix(state_dict, ORIGINAL_PREFIX)
        if is_diff:
            if unet is None:
                log.warning("a diff ControlNet loaded without a model (use DiffControlNetLoader); "
                            "its weights are differences and will not work alone")
            else:
                state_dict = _with_model_weights(state_dict, unet)
    elif "zero_convs.0.0.weight" not in state_dict:
        try:
            return _adapter(state_dict)
        except AdapterError as error:
            raise ControlDetectionError(f"neither a ControlNet nor a T2I-Adapter: {error}") from None
    network = _build_controlnet(state_dict, metadata)
    return ControlModel(kind="controlnet", network=network, global_average_pooling=global_average_pooling)


def load_control_model(path: str | os.PathLike, *, unet: nn.Module | None = None) -> ControlModel:
    """A ControlNet / T2I-Adapter / control-LoRA file. Files named ``*_shuffle`` pool their residuals
    globally, as ComfyUI decides for the shuffle ControlNet."""
    state_dict, metadata = load_state_dict(path)
    stem = os.path.splitext(os.fspath(path))[0]
    pooling = stem.endswith("_shuffle") or stem.endswith("_shuffle_fp16")
    try:
        model = control_model_from_state_dict(state_dict, metadata, unet=unet, global_average_pooling=pooling)
    except ControlDetectionError as error:
        raise ControlDetectionError(f"{path}: {error}") from None
    log.info("loaded %s: %s", path, model.kind)
    return model


__all__ = ("ControlDetectionError", "control_model_from_state_dict", "load_control_model")
