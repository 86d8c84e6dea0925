"""``comfy.controlnet``: loading ControlNets, control-LoRAs and T2I-Adapters; ComfyUI's classes.

The loaders are Weft's (:mod:`ldm.control.loading`): ``load_controlnet(path, model=None)`` and
``load_controlnet_state_dict`` return Weft's ``CONTROL_NET`` object, which the core apply nodes
(``nodes.ControlNetApplyAdvanced`` …) take, as ComfyUI's do. ComfyUI's own classes are not Weft's
objects: packs import them at module level (Advanced-ControlNet subclasses ``ControlNet`` and
``ControlBase``, efficiency-nodes and TiledDiffusion test ``isinstance`` with them), so the names
exist, are real and subclassable, match no Weft object, and raise
:class:`_weft_absent.NotInWeftError` when constructed. The plain helpers :class:`StrengthType`
and :func:`broadcast_image_to` work.
"""

from __future__ import annotations

import enum

import torch

from _weft_absent import CONTROLNET, absent_class, absent_function
from ldm.control.detect import ControlDetectionError
from ldm.control.loading import control_model_from_state_dict, load_control_model


class StrengthType(enum.Enum):
    """How a ControlNet's strength is applied across its outputs (ComfyUI's values)."""

    CONSTANT = 1
    LINEAR_UP = 2


def broadcast_image_to(tensor: torch.Tensor, target_batch_size: int, batched_number: int) -> torch.Tensor:
    """Fit a hint batch ``[N, …]`` to ``target_batch_size`` = ``batched_number`` conds × a per-cond
    batch: a single image is returned as is (it broadcasts); otherwise the first per-cond images,
    cycled when there are fewer, repeated once per cond."""
    if tensor.shape[0] == 1:
        return tensor
    per_cond = target_batch_size // batched_number
    kept = tensor[:per_cond]
    hint = kept[torch.arange(per_cond, device=kept.device) % kept.shape[0]]
    if hint.shape[0] == target_batch_size:
        return hint
    return torch.cat([hint] * batched_number)


def _absent(name: str, base: type = object) -> type:
    return absent_class(CONTROLNET, __name__, name, (base,))


ControlBase = _absent("ControlBase")
ControlNet = _absent("ControlNet", ControlBase)
ControlLora = _absent("ControlLora", ControlNet)
ControlNetSD35 = _absent("ControlNetSD35", ControlNet)
T2IAdapter = _absent("T2IAdapter", ControlBase)


def load_controlnet(ckpt_path, model=None, model_options=None):
    """Weft's CONTROL_NET from a ControlNet / control-LoRA / T2I-Adapter file; ``model`` (a MODEL)
    is what a diff ControlNet's weights are added to. ``model_options`` is accepted and unused."""
    return load_control_model(ckpt_path, unet=model.unet if model is not None else None)


def load_controlnet_state_dict(state_dict, model=None, model_options=None):
    """:func:`load_controlnet` for weights already in memory."""
    return control_model_from_state_dict(dict(state_dict), unet=model.unet if model is not None else None)


def load_t2i_adapter(t2i_data, model_options=None):
    """A T2I-Adapter's CONTROL_NET, or None when the weights are not one (as ComfyUI answers)."""
    try:
        control = control_model_from_state_dict(dict(t2i_data))
    except ControlDetectionError:
        return None
    return control if control.kind == "t2i_adapter" else None


controlnet_config = absent_function(CONTROLNET, __name__, "controlnet_config")
controlnet_load_state_dict = absent_function(CONTROLNET, __name__, "controlnet_load_state_dict")
