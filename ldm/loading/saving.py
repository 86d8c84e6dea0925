"""Writing models back to files, in the key layouts ComfyUI writes, with their patches baked in.

What each kind of file holds (facts from ComfyUI's ``comfy/sd.py`` ``save_checkpoint``,
``nodes_model_merging.py`` and ``nodes_lora_extract.py``):

* a checkpoint (``CheckpointSave``, ``ModelSave`` with only the UNet): ``model.diffusion_model.…``,
  ``first_stage_model.…``, and the text encoders where the family's checkpoints keep them — CLIP-L
  in Hugging Face layout under ``<slot prefix>transformer.``, OpenCLIP-H / bigG in OpenCLIP layout
  under ``<slot prefix>model.``; a v-prediction model gets an empty ``v_pred`` tensor (and
  ``ztsnr`` for zero terminal SNR) and ``modelspec.*`` metadata;
* a text-encoder file (``CLIPSave``): one per tower, Hugging Face layout without prefix;
* a VAE file (``VAESave``): the autoencoder's CompVis keys without prefix;
* an extracted LoRA (``LoraSave``): ``diffusion_model.<module>.lora_up/.lora_down.weight`` (or
  ``.diff``) and ``text_encoders.<tower>.transformer.<module>…``, fp16, from a truncated SVD of
  each weight whose rows are output channels; both factors clamped at the 99th percentile of
  their entries' values, as ComfyUI does.

Weights are read as stored (not a memory manager's device copies) and patched in float32.
"""

from __future__ import annotations

import logging
import os
from typing import Mapping

import torch

from ldm.loading.checkpoint import save_state_dict
from ldm.loading.detect import META_PREDICTION, UNET_PREFIX, VAE_PREFIX, head_metadata
from ldm.loading.merging import stored_weights
from ldm.lora.patches import patched_weight
from ldm.text.handle import COMFY_TOWER
from ldm.text.layouts import hf_to_openclip

log = logging.getLogger(__name__)

#: ``modelspec.architecture`` by family (ComfyUI writes one for SDXL models only).
MODELSPEC_ARCHITECTURES = {"sdxl": "stable-diffusion-xl-v1-base", "sdxl_v": "stable-diffusion-xl-v1-base",
                           "sdxl_inpaint": "stable-diffusion-xl-v1-base",
                           "sdxl_refiner": "stable-diffusion-xl-v1-refiner"}
#: Towers kept in Hugging Face layout inside a checkpoint; the others are OpenCLIP's.
HF_TOWERS = ("clip_l",)
#: ComfyUI's LoRA extraction clamps both factors at this quantile of their entries.
CLAMP_QUANTILE = 0.99
LORA_TYPES = ("standard", "full_diff")


def effective_weights(module: torch.nn.Module, patches: Mapping[str, list]) -> dict[str, torch.Tensor]:
    """``module``'s stored weights with ``patches`` applied (each patched one a new tensor)."""
    weights = stored_weights(module)
    return {key: patched_weight(value, patches[key]) if patches.get(key) else value
            for key, value in weights.items()}


# --------------------------------------------------------------------------- checkpoints


def unet_state_dict(model) -> dict[str, torch.Tensor]:
    return {UNET_PREFIX + k: v for k, v in effective_weights(model.unet, model.patches).items()}


def vae_state_dict(vae) -> dict[str, torch.Tensor]:
    """The autoencoder's CompVis keys, no prefix (what ``VAESave`` writes)."""
    return stored_weights(vae.model)


def clip_towers(clip) -> dict[str, dict[str, torch.Tensor]]:
    """``{tower kind: weights in Hugging Face layout}`` with the handle's patches applied."""
    towers: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in effective_weights(clip.encoders, clip.patches).items():
        kind, _, rest = key.partition(".")
        towers.setdefault(kind, {})[rest] = value
    return towers


def clip_checkpoint_state_dict(clip) -> dict[str, torch.Tensor]:
    """The text encoders under the family's checkpoint prefixes, each in its checkpoint layout."""
    towers = clip_towers(clip)
    out: dict[str, torch.Tensor] = {}
    for slot in clip.family.slots:
        weights = towers[slot.kind]
        if slot.kind in HF_TOWERS:
            out.update({f"{slot.prefix}{COMFY_TOWER}{k}": v for k, v in weights.items()})
        else:
            out.update({f"{slot.prefix}model.{k}": v for k, v in hf_to_openclip(weights).items()})
    return out


def checkpoint_metadata(model, title: str) -> dict[str, str]:
    """ComfyUI's ``modelspec`` metadata for ``model``, plus Weft's head split (read back on load)."""
    metadata = {}
    architecture = MODELSPEC_ARCHITECTURES.get(model.family)
    if architecture is not None:
        metadata.update({"modelspec.architecture": architecture, "modelspec.sai_model_spec": "1.0.0",
                         "modelspec.implementation": "sgm", "modelspec.title": title})
    metadata["modelspec.predict_key"] = "v" if model.prediction == "v" else "epsilon"
    metadata[META_PREDICTION] = "v" if model.prediction == "v" else "epsilon"
    metadata.update(head_metadata(model.config))
    return metadata


def prediction_markers(model) -> dict[str, torch.Tensor]:
    """ComfyUI's empty marker tensors: ``v_pred`` (and ``ztsnr``) for a v-prediction model."""
    if model.prediction != "v":
        return {}
    from ldm.sampling.from_handle import model_sampling_of
    markers = {"v_pred": torch.tensor([])}
    if model_sampling_of(model).schedule.config.zsnr:
        markers["ztsnr"] = torch.tensor([])
    return markers


def save_checkpoint(path: str | os.PathLike, model, clip=None, vae=None, *,
                    metadata: Mapping[str, str] | None = None, title: str = "") -> None:
    """Write ``model`` (and ``clip`` / ``vae`` when given) as one CompVis-layout checkpoint."""
    state_dict = unet_state_dict(model)
    if vae is not None:
        state_dict.update({VAE_PREFIX + k: v for k, v in vae_state_dict(vae).items()})
    if clip is not None:
        state_dict.update(clip_checkpoint_state_dict(clip))
    state_dict.update(prediction_markers(model))
    save_state_dict(path, state_dict, {**checkpoint_metadata(model, title), **(metadata or {})})


# --------------------------------------------------------------------------- LoRA extraction


def extract_lora(diff: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(up [out, r(, 1, 1)], down [r, in(, kh, kw)])`` with ``up @ down ≈ diff``: the first
    ``r`` singular triplets (``up = U·S``), both clamped to ±the 99th percentile of their values."""
    out_dim, in_dim = diff.shape[:2]
    rank = min(rank, out_dim, in_dim)
    matrix = diff.float().flatten(start_dim=1)  # [out, in·kh·kw]; a 1x1 kernel is [out, in]
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    up, down = u[:, :rank] * s[:rank], vh[:rank]
    high = torch.quantile(torch.cat([up.flatten(), down.flatten()]), CLAMP_QUANTILE)
    up, down = up.clamp(-high, high), down.clamp(-high, high)
    if diff.ndim == 4:
        up, down = up.reshape(out_dim, rank, 1, 1), down.reshape(rank, in_dim, *diff.shape[2:])
    return up, down


def lora_from_weights(weights: Mapping[str, torch.Tensor], rank: int, lora_type: str, bias_diff: bool,
                      prefix: str) -> dict[str, torch.Tensor]:
    """A LoRA state dict (fp16) that adds ``weights`` (a model's difference) to a model whose
    modules are named ``<prefix><module>``."""
    if lora_type not in LORA_TYPES:
        raise ValueError(f"lora_type must be one of {LORA_TYPES}, got {lora_type!r}")
    out: dict[str, torch.Tensor] = {}
    for key, value in weights.items():
        module, _, tensor = key.rpartition(".")
        name = prefix + module
        if tensor == "bias":
            if bias_diff:
                out[f"{name}.diff_b"] = value.half().contiguous()
        elif tensor != "weight":
            continue
        elif lora_type == "full_diff":
            out[f"{name}.diff"] = value.half().contiguous()
        elif value.ndim < 2:
            if bias_diff:  # norm scales have no low-rank form; ComfyUI keeps them whole with the biases
                out[f"{name}.diff"] = value.half().contiguous()
        else:
            up, down = extract_lora(value, rank)
            out[f"{name}.lora_up.weight"] = up.half().contiguous()
            out[f"{name}.lora_down.weight"] = down.half().contiguous()
    return out


def extract_model_lora(model, rank: int, lora_type: str, bias_diff: bool) -> dict[str, torch.Tensor]:
    """LoRA tensors for the UNet of ``model`` (a difference: ModelMergeSubtract's output)."""
    return lora_from_weights(effective_weights(model.unet, model.patches), rank, lora_type, bias_diff,
                             "diffusion_model.")


def extract_clip_lora(clip, rank: int, lora_type: str, bias_diff: bool) -> dict[str, torch.Tensor]:
    """LoRA tensors for the text encoders of ``clip`` (CLIPMergeSubtract's output), named
    ``text_encoders.<tower>.transformer.<module>`` as ComfyUI names them."""
    out: dict[str, torch.Tensor] = {}
    for kind, weights in clip_towers(clip).items():
        out.update(lora_from_weights(weights, rank, lora_type, bias_diff, f"text_encoders.{kind}.{COMFY_TOWER}"))
    return out
