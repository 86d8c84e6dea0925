"""``comfy.lora``: a LoRA file as patches, the way packs that build their own LoRA loaders call it.

The usual pack code (Inspire's block-weight loader, KJNodes, Easy-Use)::

    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    key_map = comfy.lora.model_lora_keys_clip(clip, key_map)
    patches = comfy.lora.load_lora(comfy.utils.load_torch_file(path), key_map)
    model = model.clone(); model.add_patches(patches, strength)

runs on Weft's parser (:mod:`ldm.lora.patches`): the key maps are Weft's (every kohya / diffusers / PEFT
naming it knows), targets are ``diffusion_model.<UNet weight key>`` for the UNet and the CLIP
handle's own weight keys (``clip_l.text_model.…``) for text encoders, and the patches are Weft's
adapters (as :class:`LoRAAdapter`, which also has ComfyUI's ``weights`` tuple), which
``add_patches`` takes as they are. The result equals Weft's built-in LoraLoader on the same file.

Adapter kinds Weft cannot apply (LoHa, LoKr, OFT/BOFT, GLoRA, DoRA, ``set_weight``) raise
``NotImplementedError`` instead of being dropped with a warning: their effect would be missing.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn

from ldm.lora import patches as weft_lora
from ldm.lora.patches import DiffAdapter, LoraAdapter, WeightPatch
from ldm.model_patching import DIFFUSION_PREFIX, weight_patch_from_comfy
from ldm.text.handle import ClipHandle

log = logging.getLogger(__name__)

__all__ = ["LORA_CLIP_MAP", "LoRAAdapter", "calculate_weight", "load_lora", "model_lora_keys_clip",
           "model_lora_keys_unet", "pad_tensor_to_shape"]

#: Hugging Face CLIP module -> kohya's flattened name (ComfyUI's table; packs read it).
LORA_CLIP_MAP = {
    "mlp.fc1": "mlp_fc1",
    "mlp.fc2": "mlp_fc2",
    "self_attn.k_proj": "self_attn_k_proj",
    "self_attn.q_proj": "self_attn_q_proj",
    "self_attn.v_proj": "self_attn_v_proj",
    "self_attn.out_proj": "self_attn_out_proj",
}

#: Tensor-name endings of adapter kinds ComfyUI applies and Weft does not.
_UNSUPPORTED_KINDS = {
    ".hada_w1_a": "LoHa", ".hada_w1_b": "LoHa",
    ".lokr_w1": "LoKr", ".lokr_w1_a": "LoKr", ".lokr_w2": "LoKr", ".lokr_w2_a": "LoKr",
    ".oft_blocks": "OFT", ".oft_diag": "BOFT",
    ".a1.weight": "GLoRA", ".b1.weight": "GLoRA",
    ".dora_scale": "DoRA (weight decomposition)",
    ".set_weight": "set_weight (replace a weight)",
    ".reshape_weight": "reshape_weight",
}


class LoRAAdapter(LoraAdapter):
    """Weft's low-rank adapter with ComfyUI's ``weights`` tuple
    ``(up, down, alpha, mid, dora_scale, reshape)`` (KJNodes rewrites ``weights[2]``, the alpha)."""

    name = "lora"

    @classmethod
    def of(cls, adapter: LoraAdapter) -> "LoRAAdapter":
        return cls(up=adapter.up, down=adapter.down, alpha=adapter.alpha, mid=adapter.mid)

    @property
    def weights(self) -> tuple:
        return (self.up, self.down, self.alpha, self.mid, None, None)

    @weights.setter
    def weights(self, value: tuple) -> None:
        up, down, alpha, mid = (tuple(value) + (None,) * 4)[:4]
        extra = tuple(value)[4:]
        if any(item is not None for item in extra):
            raise NotImplementedError("LoRA dora_scale / reshape entries: Weft's adapters have neither")
        # A frozen dataclass: the fields are replaced in place, as ComfyUI's mutable adapter is.
        for name, item in (("up", up), ("down", down), ("mid", mid)):
            object.__setattr__(self, name, item)
        object.__setattr__(self, "alpha", None if alpha is None else float(alpha))

    @property
    def loaded_keys(self) -> set:
        return set()


def _refuse_unsupported(lora_sd: Mapping[str, Any]) -> None:
    kinds = sorted({kind for key in lora_sd for ending, kind in _UNSUPPORTED_KINDS.items() if key.endswith(ending)})
    if kinds:
        raise NotImplementedError(f"LoRA adapter kind(s) {', '.join(kinds)}: Weft applies LoRA/LoCon "
                                  "(up/down/alpha/mid) and full differences (diff, diff_b, w_norm, b_norm) only")


def load_lora(lora: Mapping[str, torch.Tensor], to_load: Mapping[str, Any], log_missing: bool = True
              ) -> dict[str, Any]:
    """``{target key: adapter}`` for the LoRA modules named in ``to_load`` (LoRA module name ->
    target weight key, as the ``model_lora_keys_*`` functions build it)."""
    _refuse_unsupported(lora)
    offsets = [name for name, target in to_load.items() if not isinstance(target, str)]
    if offsets:
        raise NotImplementedError(f"targets with offsets ({offsets[0]!r} …): Weft patches whole weights only")
    adapters, unmatched = weft_lora.load_lora(lora, to_load)
    patches: dict[str, Any] = {key: LoRAAdapter.of(a) if isinstance(a, LoraAdapter) else a
                               for key, a in adapters.items()}
    used = set()
    for name, target in to_load.items():
        for norm, key in ((f"{name}.w_norm", target), (f"{name}.b_norm", target[: -len(".weight")] + ".bias")):
            if norm in lora:
                patches[key] = DiffAdapter(lora[norm])
                used.add(norm)
    if log_missing:
        for name in unmatched:
            if name not in used:
                log.warning("lora key not loaded: %s", name)
    return patches


def _unet_of(model: Any) -> nn.Module:
    """The UNet of ``model.model`` (ComfyUI's BaseModel, Weft's view), of a MODEL, or a UNet itself."""
    for attribute in ("diffusion_model", "unet"):
        found = getattr(model, attribute, None)
        if isinstance(found, nn.Module):
            return found
    if isinstance(model, nn.Module) and hasattr(model, "input_blocks"):
        return model
    raise TypeError(f"model_lora_keys_unet needs a MODEL's .model (or the MODEL); got {type(model).__name__}")


def model_lora_keys_unet(model: Any, key_map: dict | None = None) -> dict[str, str]:
    """Add ``{LoRA module name: "diffusion_model.<weight key>"}`` for ``model``'s UNet to ``key_map``
    (kohya ``lora_unet_…`` in CompVis and diffusers naming, diffusers/PEFT ``unet.…``,
    ``lycoris_…``, generic ``diffusion_model.<module>``) and return it."""
    key_map = {} if key_map is None else key_map
    keys = list(_unet_of(model).state_dict().keys())
    for name, key in weft_lora.unet_key_map(keys).items():
        key_map[name] = DIFFUSION_PREFIX + key
    for key in keys:
        if not key.endswith(".weight"):  # generic names of biases and other tensors
            key_map[DIFFUSION_PREFIX + key] = DIFFUSION_PREFIX + key
    return key_map


def _encoders_of(model: Any) -> nn.Module:
    if isinstance(model, ClipHandle):
        return model.encoders
    encoders = getattr(model, "encoders", None)
    if isinstance(encoders, nn.Module):
        return encoders
    if isinstance(model, nn.Module):
        return model
    raise TypeError(f"model_lora_keys_clip needs a CLIP (or its encoders); got {type(model).__name__}")


def model_lora_keys_clip(model: Any, key_map: dict | None = None) -> dict[str, str]:
    """Add ``{LoRA module name: text-encoder weight key}`` for a CLIP's encoders to ``key_map``
    (``lora_te_`` / ``lora_te1_`` / ``lora_te2_``, ``text_encoder(_2).…``, ``text_encoders.…``);
    the keys are the CLIP handle's own (``clip_l.text_model.encoder.layers.0.mlp.fc1.weight``)."""
    key_map = {} if key_map is None else key_map
    key_map.update(weft_lora.clip_key_map(_encoders_of(model).state_dict().keys()))
    return key_map


def pad_tensor_to_shape(tensor: torch.Tensor, new_shape: Iterable[int]) -> torch.Tensor:
    """``tensor`` in the corner of a zero tensor of ``new_shape`` (no dimension may shrink)."""
    new_shape = list(new_shape)
    if len(new_shape) != tensor.ndim:
        raise ValueError("The new shape must have the same number of dimensions as the original tensor")
    if any(n < s for n, s in zip(new_shape, tensor.shape)):
        raise ValueError("The new shape must be larger than the original tensor in all dimensions")
    out = torch.zeros(new_shape, dtype=tensor.dtype, device=tensor.device)
    out[tuple(slice(0, s) for s in tensor.shape)] = tensor
    return out


def _identity(value: torch.Tensor) -> torch.Tensor:
    return value


@torch.no_grad()
def calculate_weight(patches: Iterable[Any], weight: torch.Tensor, key: str,
                     intermediate_dtype: torch.dtype = torch.float32, original_weights: Mapping | None = None
                     ) -> torch.Tensor:
    """``weight`` with ComfyUI-style patches applied, in place where the shape allows, and returned.

    A patch is ``(strength, value, strength_model, offset, function)`` (the last three optional)
    or Weft's :class:`~ldm.lora.patches.WeightPatch`. ``value`` is anything ``add_patches`` takes (Weft's
    adapters, a tensor, ``("diff", (t,))``, ``("lora", (up, down, alpha, mid))``),
    ``("set", (t,))``, ``("model_as_lora", (t,))`` (with ``original_weights``), or ComfyUI's nested
    list ``[(tensor, convert), *patches]``. ``offset`` ``(dim, start, length)`` patches a slice;
    ``function`` maps the scaled difference before it is added.
    """
    for patch in patches:
        if isinstance(patch, WeightPatch):
            patch = (patch.strength, patch.adapter, patch.strength_model)
        strength, value = patch[0], patch[1]
        strength_model = patch[2] if len(patch) > 2 else 1.0
        offset = patch[3] if len(patch) > 3 else None
        function: Callable = (patch[4] if len(patch) > 4 else None) or _identity
        target = weight.narrow(*offset) if offset is not None else weight
        if isinstance(value, list):  # a patched weight computed from its own patch list
            base, convert = value[0]
            value = (calculate_weight(value[1:], convert(base.to(weight.device, intermediate_dtype, copy=True),
                                                         inplace=True), key, intermediate_dtype),)
        kind = value[0] if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) else None
        if kind == "set":
            target.copy_(value[1][0])
            continue
        if kind == "model_as_lora":
            if original_weights is None or key not in original_weights:
                raise ValueError(f"model_as_lora patch for {key!r} needs original_weights[{key!r}]")
            value = (value[1][0].to(weight.device, intermediate_dtype)
                     - original_weights[key][0][0].to(weight.device, intermediate_dtype),)
        if kind == "diff" and len(value[1]) > 1 and isinstance(value[1][1], dict) \
                and value[1][1].get("pad_weight") and value[1][0].shape != weight.shape:
            raise NotImplementedError(f"diff patch with pad_weight for {key!r}: growing a weight is not "
                                      "supported in Weft (a patch cannot change a layer's shape)")
        found = weight_patch_from_comfy(value, strength, strength_model)
        if found is None:
            raise NotImplementedError(f"patch kind {kind or type(value).__name__!r} for {key!r}: Weft applies "
                                      "LoRA/LoCon, differences, set and model_as_lora patches")
        adapter = found.adapter
        if isinstance(adapter, DiffAdapter) and adapter.diff.shape != target.shape:
            log.warning("WARNING SHAPE MISMATCH %s WEIGHT NOT MERGED %s != %s", key, tuple(adapter.diff.shape),
                        tuple(target.shape))
            continue
        if function is _identity:
            target.copy_(weft_lora.patched_weight(target, [found]))
            continue
        if strength_model != 1.0:
            target *= strength_model
        if strength != 0.0:
            delta = adapter.delta(target.shape, intermediate_dtype).to(target.device)
            target += function(strength * delta).to(target.dtype)
    return weight
