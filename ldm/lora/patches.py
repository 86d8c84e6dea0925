"""LoRA (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", 2021) and LoCon for
the UNet and the text encoders, as patches on handles.

A LoRA file holds, per adapted layer, ``down`` ``[r, in(, kh, kw)]`` and ``up``
``[out, r(, 1, 1)]`` (optionally a Tucker ``mid`` ``[r, r, kh, kw]`` and an ``alpha``); the layer
becomes ``W + s · (alpha / r) · up @ down`` for strength ``s`` (any sign).

Loading never touches weights: :func:`load_lora_for_models` returns clones of the MODEL and CLIP
handles whose ``patches`` (``{weight key: [WeightPatch, …]}``) list the adapters. The weights
change only inside :func:`patched` (apply, run, restore), or per module through
:func:`patched_weight` when the memory manager streams layers. Restoring is bit-exact: the
touched weights are backed up before they change and copied back afterwards.

Names in LoRA files (facts from kohya sd-scripts, diffusers/PEFT and ComfyUI's loader):
- kohya / A1111: ``lora_unet_<module path with _>``, where the path is diffusers-style for SD1/SD2
  (``down_blocks_0_attentions_0_…``) and CompVis-style for SDXL (``input_blocks_4_1_…``);
  ``lora_te_…`` (one text encoder), ``lora_te1_…`` / ``lora_te2_…`` (SDXL's CLIP-L / bigG), with
  Hugging Face text-model paths (``text_model_encoder_layers_0_self_attn_q_proj``);
- diffusers / PEFT: ``unet.<diffusers path>``, ``text_encoder.<HF path>``, ``text_encoder_2.…``,
  with tensors ``.lora_A/.lora_B``, ``.lora.down/.lora.up``, ``.lora_linear_layer.down/.up`` or the
  attention-processor form ``…attn1.processor.to_q_lora.down``;
- kohya / LyCORIS tensors: ``.lora_down``, ``.lora_up``, ``.lora_mid``, ``.alpha``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

import torch
from torch import nn

from ldm.networks.onednn import pack_weight

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- adapters


@dataclass(frozen=True)
class LoraAdapter:
    """One low-rank update: ``(alpha / rank) · up @ down`` (through ``mid`` for Tucker LoCon)."""

    up: torch.Tensor
    down: torch.Tensor
    alpha: float | None = None
    mid: torch.Tensor | None = None

    @property
    def rank(self) -> int:
        return self.down.shape[0]

    @property
    def scale(self) -> float:
        return 1.0 if self.alpha is None else self.alpha / self.rank

    def delta(self, shape: torch.Size, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        up = self.up.to(dtype).flatten(start_dim=1)  # [out, r]
        down = self.down.to(dtype)
        if self.mid is not None:
            # Tucker: down [r, in, 1, 1] and mid [r, r, kh, kw] make a [r, in, kh, kw] down.
            down = torch.einsum("abhw,bc->achw", self.mid.to(dtype), down.flatten(start_dim=1))
        product = up @ down.flatten(start_dim=1)  # [out, in·kh·kw]
        return (product * self.scale).reshape(shape)


@dataclass(frozen=True)
class DiffAdapter:
    """A full-size difference (``.diff`` / ``.diff_b`` tensors in a LoRA file)."""

    diff: torch.Tensor

    def delta(self, shape: torch.Size, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return self.diff.to(dtype).reshape(shape)


@dataclass(frozen=True)
class ScaleOnly:
    """No difference: a patch that only scales the weight by its ``strength_model`` (ComfyUI's
    ``(None,)`` patch at strength 0, how its attention-multiply nodes scale q/k/v/out)."""

    def delta(self, shape: torch.Size, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.zeros(shape, dtype=dtype)


@dataclass(frozen=True)
class WeightPatch:
    """``weight · strength_model + strength · adapter.delta`` (``strength_model`` is 1 for a LoRA;
    model merging, ComfyUI's ``add_patches(..., strength_model=r)``, scales the original)."""

    strength: float
    adapter: LoraAdapter | DiffAdapter | ScaleOnly
    strength_model: float = 1.0


Patches = Mapping[str, list[WeightPatch]]

# --------------------------------------------------------------------------- file parsing

# (role, suffix) pairs; the module name is what precedes the suffix.
_TENSOR_SUFFIXES = (
    ("up", ".lora_up.weight"), ("down", ".lora_down.weight"), ("mid", ".lora_mid.weight"),
    ("up", ".lora_B.weight"), ("down", ".lora_A.weight"),
    ("up", ".lora.up.weight"), ("down", ".lora.down.weight"),
    ("up", ".lora_linear_layer.up.weight"), ("down", ".lora_linear_layer.down.weight"),
    ("up", "_lora.up.weight"), ("down", "_lora.down.weight"),
    ("alpha", ".alpha"), ("diff", ".diff"), ("diff_b", ".diff_b"),
)
_PEFT_WRAPPER = "base_model.model."


def group_lora_tensors(lora_sd: Mapping[str, torch.Tensor]) -> tuple[dict[str, dict], list[str]]:
    """``{module name: {role: tensor}}`` and the keys that fit no known form."""
    groups: dict[str, dict] = {}
    unknown: list[str] = []
    for key, tensor in lora_sd.items():
        for role, suffix in _TENSOR_SUFFIXES:
            if key.endswith(suffix):
                name = key[: -len(suffix)]
                if name.startswith(_PEFT_WRAPPER):
                    name = name[len(_PEFT_WRAPPER):]
                groups.setdefault(name, {})[role] = tensor
                break
        else:
            unknown.append(key)
    return groups, unknown


def _bias_key(weight_key: str) -> str:
    return weight_key[: -len(".weight")] + ".bias"


def load_lora(lora_sd: Mapping[str, torch.Tensor], key_map: Mapping[str, str]
              ) -> tuple[dict[str, LoraAdapter | DiffAdapter], list[str]]:
    """Adapters by target weight key, for the LoRA modules ``key_map`` knows; plus the names of
    the LoRA's modules that matched nothing (for a warning)."""
    groups, unknown = group_lora_tensors(lora_sd)
    adapters: dict[str, LoraAdapter | DiffAdapter] = {}
    unmatched = list(unknown)
    for name, parts in groups.items():
        target = key_map.get(name)
        if target is None:
            unmatched.append(name)
            continue
        if "up" in parts and "down" in parts:
            alpha = parts.get("alpha")
            adapters[target] = LoraAdapter(up=parts["up"], down=parts["down"],
                                           alpha=None if alpha is None else float(alpha),
                                           mid=parts.get("mid"))
        elif "diff" in parts:
            adapters[target] = DiffAdapter(parts["diff"])
        if "diff_b" in parts:
            adapters[_bias_key(target)] = DiffAdapter(parts["diff_b"])
    return adapters, unmatched


# --------------------------------------------------------------------------- UNet names

# ResNet block: diffusers sub-module -> CompVis sub-module.
_RESNET_PARTS = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                 "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
# Top-level diffusers module -> CompVis module.
_UNET_TOP = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0",
             "time_embedding.linear_2": "time_embed.2", "add_embedding.linear_1": "label_emb.0.0",
             "add_embedding.linear_2": "label_emb.0.2", "conv_norm_out": "out.0", "conv_out": "out.2"}


def diffusers_unet_modules(unet_keys: Iterable[str]) -> dict[str, str]:
    """diffusers module name -> CompVis module name (prefix), read off a CompVis UNet's keys.

    CompVis numbers blocks flat: ``input_blocks.n`` holds a ResNet (``.0``) and maybe a
    transformer (``.1``), or a downsampler (``.0.op``); ``output_blocks.n`` a ResNet, maybe a
    transformer, maybe an upsampler (``.1.conv`` or ``.2.conv``). diffusers groups them in levels:
    ``down_blocks.i.{resnets,attentions}.j``, ``…downsamplers.0.conv``; up levels hold one more
    ResNet than down levels.
    """
    keys = set(unet_keys)
    prefixes = {k.rsplit(".", 1)[0] for k in keys}
    has = lambda module: module in prefixes or any(p.startswith(module + ".") for p in prefixes)  # noqa: E731
    out: dict[str, str] = {d: c for d, c in _UNET_TOP.items() if has(c)}

    def resnet(diffusers: str, compvis: str) -> None:
        for d_part, c_part in _RESNET_PARTS.items():
            if has(f"{compvis}.{c_part}"):
                out[f"{diffusers}.{d_part}"] = f"{compvis}.{c_part}"

    def attention(diffusers: str, compvis: str) -> None:
        if has(f"{compvis}.proj_in") or has(f"{compvis}.transformer_blocks"):
            out[diffusers] = compvis

    def block_ids(name: str) -> list[int]:
        return sorted({int(m.group(1)) for p in prefixes if (m := re.match(rf"{name}\.(\d+)\.", p + "."))})

    level, index, per_level = 0, 0, None
    for n in block_ids("input_blocks"):
        if n == 0:
            continue
        if has(f"input_blocks.{n}.0.op"):
            out[f"down_blocks.{level}.downsamplers.0.conv"] = f"input_blocks.{n}.0.op"
            per_level = index if per_level is None else per_level
            level, index = level + 1, 0
            continue
        resnet(f"down_blocks.{level}.resnets.{index}", f"input_blocks.{n}.0")
        attention(f"down_blocks.{level}.attentions.{index}", f"input_blocks.{n}.1")
        index += 1
    per_level = index if per_level is None else per_level

    resnet("mid_block.resnets.0", "middle_block.0")
    attention("mid_block.attentions.0", "middle_block.1")
    resnet("mid_block.resnets.1", "middle_block.2")

    for n in block_ids("output_blocks"):
        level, index = divmod(n, per_level + 1)
        resnet(f"up_blocks.{level}.resnets.{index}", f"output_blocks.{n}.0")
        attention(f"up_blocks.{level}.attentions.{index}", f"output_blocks.{n}.1")
        for slot in (1, 2):
            if has(f"output_blocks.{n}.{slot}.conv"):
                out[f"up_blocks.{level}.upsamplers.0.conv"] = f"output_blocks.{n}.{slot}.conv"
    return out


def diffusers_unet_weights(unet_keys: Iterable[str]) -> dict[str, str]:
    """diffusers weight key -> CompVis weight key, for every weight of a CompVis UNet."""
    keys = list(unet_keys)
    modules = diffusers_unet_modules(keys)
    by_compvis = sorted(((c, d) for d, c in modules.items()), key=lambda cd: -len(cd[0]))
    out: dict[str, str] = {}
    for key in keys:
        for compvis, diffusers in by_compvis:
            if key.startswith(compvis + "."):
                out[diffusers + key[len(compvis):]] = key
                break
    return out


def unet_key_map(unet_keys: Iterable[str]) -> dict[str, str]:
    """LoRA module name (every known style) -> UNet weight key (CompVis, as in ``handle.unet``)."""
    keys = list(unet_keys)
    key_map: dict[str, str] = {}
    for key in keys:
        if key.endswith(".weight"):
            module = key[: -len(".weight")]
            key_map[f"lora_unet_{module.replace('.', '_')}"] = key
            for generic in (module, f"diffusion_model.{module}", f"model.diffusion_model.{module}"):
                key_map[generic] = key
    for diffusers, key in diffusers_unet_weights(keys).items():
        if not diffusers.endswith(".weight"):
            continue
        module = diffusers[: -len(".weight")]
        flat = module.replace(".", "_")
        key_map[f"lora_unet_{flat}"] = key
        key_map[f"lycoris_{flat}"] = key
        # The old attention-processor form: "…attn1.processor.to_q", "…attn1.processor.to_out".
        processor = module.replace(".to_", ".processor.to_")
        if processor.endswith(".to_out.0"):
            processor = processor[: -len(".0")]
        for prefix in ("", "unet."):
            key_map[f"{prefix}{module}"] = key
            key_map[f"{prefix}{processor}"] = key
    return key_map


# --------------------------------------------------------------------------- text-encoder names

def clip_key_map(encoder_keys: Iterable[str]) -> dict[str, str]:
    """LoRA module name -> text-encoder weight key (``clip_l.text_model.…`` as in a ClipHandle).

    One encoder answers to ``lora_te_`` / ``lora_te1_`` / ``text_encoder.``; with CLIP-L and bigG
    (SDXL), bigG answers to ``lora_te2_`` / ``text_encoder_2.``.
    """
    keys = [k for k in encoder_keys if k.endswith(".weight")]
    kinds = {k.split(".", 1)[0] for k in keys}
    names = {
        "clip_l": (("lora_te_", "lora_te1_"), ("text_encoder.",)),
        "clip_h": (("lora_te_", "lora_te1_"), ("text_encoder.",)),
        "clip_g": ((("lora_te2_",), ("text_encoder_2.",)) if "clip_l" in kinds
                   else (("lora_te_", "lora_te1_"), ("text_encoder.",))),
    }
    key_map: dict[str, str] = {}
    for key in keys:
        kind, path = key.split(".", 1)
        if kind not in names:
            continue
        module = path[: -len(".weight")]
        kohya_prefixes, diffusers_prefixes = names[kind]
        for prefix in kohya_prefixes:
            key_map[prefix + module.replace(".", "_")] = key
        for prefix in diffusers_prefixes:
            key_map[prefix + module] = key
        key_map[f"text_encoders.{key[: -len('.weight')]}"] = key
        key_map[f"text_encoders.{kind}.transformer.{module}"] = key  # as ComfyUI's LoraSave names it
    return key_map


# --------------------------------------------------------------------------- handles

def add_patches(patches: Mapping[str, list[WeightPatch]], adapters: Mapping[str, object],
                strength: float) -> dict[str, list[WeightPatch]]:
    """A new patch table: ``patches`` plus each adapter at ``strength``."""
    out = {key: list(found) for key, found in patches.items()}
    for key, adapter in adapters.items():
        out.setdefault(key, []).append(WeightPatch(float(strength), adapter))
    return out


def load_lora_for_models(model, clip, lora_sd: Mapping[str, torch.Tensor],
                         strength_model: float, strength_clip: float):
    """``(model clone, clip clone)`` with the LoRA's patches added; either may be None.

    ``model`` needs ``.unet`` (nn.Module), ``.patches``, ``.clone()``; ``clip`` needs
    ``.encoders`` (nn.Module), ``.patches``, ``.clone()``. Handles are never changed in place.
    """
    key_map: dict[str, str] = {}
    unet_keys = list(model.unet.state_dict().keys()) if model is not None else []
    clip_keys = list(clip.encoders.state_dict().keys()) if clip is not None else []
    key_map.update(unet_key_map(unet_keys))
    key_map.update(clip_key_map(clip_keys))
    adapters, unmatched = load_lora(lora_sd, key_map)
    for name in unmatched:
        log.warning("lora key not loaded: %s", name)
    unet_set, clip_set = set(unet_keys), set(clip_keys)
    new_model = new_clip = None
    if model is not None:
        new_model = model.clone()
        new_model.patches = add_patches(
            model.patches, {k: a for k, a in adapters.items() if k in unet_set}, strength_model)
    if clip is not None:
        new_clip = clip.clone()
        new_clip.patches = add_patches(
            clip.patches, {k: a for k, a in adapters.items() if k in clip_set}, strength_clip)
    return new_model, new_clip


# --------------------------------------------------------------------------- applying

def patched_weight(weight: torch.Tensor, patches: Iterable[WeightPatch]) -> torch.Tensor:
    """``weight`` with its patches added, computed in float32, returned in ``weight``'s dtype."""
    total = weight.detach().to(torch.float32, copy=True)
    for patch in patches:
        if patch.strength_model != 1.0:
            total *= patch.strength_model
        if patch.strength != 0.0:
            total += patch.strength * patch.adapter.delta(weight.shape).to(total.device)
    return total.to(weight.dtype)


def _owner(module: nn.Module, key: str) -> tuple[nn.Module | None, str]:
    owner_name, _, name = key.rpartition(".")
    try:
        return (module.get_submodule(owner_name) if owner_name else module), name
    except AttributeError:
        return None, name


def _tensor(module: nn.Module, key: str) -> torch.Tensor:
    owner, name = _owner(module, key)
    found = getattr(owner, name, None)
    if not isinstance(found, torch.Tensor):
        raise KeyError(f"{key!r} is not a weight of {type(module).__name__}")
    return found


def _packed(module: nn.Module, key: str) -> tuple[nn.Module, torch.Tensor] | None:
    """The layer and its oneDNN-packed weight when ``key`` is a weight the layer computes with in
    packed form (a resident CPU convolution, ``ldm.networks.onednn``); None otherwise."""
    owner, name = _owner(module, key)
    packed = getattr(owner, "packed_weight", None) if name == "weight" else None
    return (owner, packed) if packed is not None else None


@dataclass(frozen=True)
class PackedBackup:
    """A packed weight replaced while patches are applied (the object itself: it is never written)."""

    packed: torch.Tensor


def apply_patches(module: nn.Module, patches: Patches) -> dict[str, torch.Tensor | PackedBackup]:
    """Write the patches into ``module``'s weights in place; returns backups of the touched ones.

    A packed convolution weight is patched by packing the patched values anew (its stored
    ``weight`` is not what the layer computes with, and is left alone)."""
    backups: dict[str, torch.Tensor | PackedBackup] = {}
    try:
        for key, found in patches.items():
            if not found:
                continue
            packed = _packed(module, key)
            with torch.no_grad():
                if packed is not None:
                    layer, weight = packed
                    backups[key] = PackedBackup(weight)
                    layer.packed_weight = pack_weight(layer, patched_weight(weight.to_dense(), found))
                    continue
                tensor = _tensor(module, key)
                backups[key] = tensor.detach().clone()
                tensor.copy_(patched_weight(tensor, found))
    except BaseException:
        restore_weights(module, backups)
        raise
    return backups


def restore_weights(module: nn.Module, backups: Mapping[str, torch.Tensor | PackedBackup]) -> None:
    """Copy backed-up weights back, bit for bit (packed ones: put the original packed tensor back)."""
    with torch.no_grad():
        for key, saved in backups.items():
            if isinstance(saved, PackedBackup):
                owner, _ = _owner(module, key)
                owner.packed_weight = saved.packed
            else:
                _tensor(module, key).copy_(saved)


@contextlib.contextmanager
def patched(module: nn.Module, patches: Patches) -> Iterator[nn.Module]:
    """Run a block with ``patches`` applied to ``module``; the weights are restored afterwards."""
    backups = apply_patches(module, patches) if patches else {}
    try:
        yield module
    finally:
        restore_weights(module, backups)
