"""``comfy.controlnet``: ControlNet, Control-LoRA and T2I-Adapter objects — not in Weft yet.

Packs import these at module level (Advanced-ControlNet subclasses ``ControlNet`` and
``ControlBase``, efficiency-nodes and TiledDiffusion test ``isinstance`` with them), so the names
exist: the classes are real and subclassable, match no Weft object, and raise
:class:`_weft_absent.NotInWeftError` when constructed; the loaders raise when called. Only the
two plain helpers packs use, :class:`StrengthType` and :func:`broadcast_image_to`, work.
"""

from __future__ import annotations

import enum

import torch

from _weft_absent import CONTROLNET, absent_class, absent_function


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

load_controlnet = absent_function(CONTROLNET, __name__, "load_controlnet")
load_controlnet_state_dict = absent_function(CONTROLNET, __name__, "load_controlnet_state_dict")
load_t2i_adapter = absent_function(CONTROLNET, __name__, "load_t2i_adapter")
controlnet_config = absent_function(CONTROLNET, __name__, "controlnet_config")
controlnet_load_state_dict = absent_function(CONTROLNET, __name__, "controlnet_load_state_dict")
