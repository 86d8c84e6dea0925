"""Stable Diffusion models saved in diffusers' folder format (``save_pretrained``), loaded as the
same MODEL / CLIP / VAE handles a single-file checkpoint gives.

A folder holds ``model_index.json`` and one sub-folder per part (facts from diffusers'
``StableDiffusionPipeline`` / ``StableDiffusionXLPipeline`` layout): ``unet/`` and ``vae/``
(``config.json``, ``diffusion_pytorch_model[.fp16].safetensors``), ``text_encoder/`` (and SDXL's
``text_encoder_2/``; ``model[.fp16].safetensors``, Hugging Face layout, already ours),
``scheduler/scheduler_config.json`` (``prediction_type``). The tokenizer folders are not read:
every SD family uses the CLIP BPE vocabulary Weft ships.

The UNet's diffusers names are turned into CompVis names by walking its levels: CompVis numbers
blocks flat (``input_blocks.n`` = a ResNet ``.0`` and maybe a transformer ``.1``, or a
downsampler ``.0.op``; ``output_blocks.n`` = ResNet, transformer, upsampler ``.1.conv`` /
``.2.conv``), diffusers groups them per level. The result is checked against the forward table
:func:`ldm.lora.patches.diffusers_unet_weights`, and then detected and built as any CompVis UNet.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from ldm.devices import ComputeSettings
from ldm.loading.checkpoint import load_state_dict
from ldm.loading.detect import META_HEAD_CHANNELS, META_NUM_HEADS, META_PREDICTION, META_SIZE_EMBED, detect_unet
from ldm.lora.patches import _RESNET_PARTS, _UNET_TOP, diffusers_unet_weights
from ldm.model import build_unet, build_vae
from ldm.text import build_clip_from_files
from ldm.text.families import text_family

log = logging.getLogger(__name__)

#: The file a folder's presence as a diffusers model is read from.
MODEL_INDEX = "model_index.json"
#: Weight files by preference: safetensors before pickles, full precision before fp16 variants.
WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "model.safetensors",
                "diffusion_pytorch_model.fp16.safetensors", "model.fp16.safetensors",
                "diffusion_pytorch_model.bin", "pytorch_model.bin",
                "diffusion_pytorch_model.fp16.bin", "pytorch_model.fp16.bin")
PREDICTIONS = {"epsilon": "eps", "v_prediction": "v"}


class DiffusersFolderError(ValueError):
    """A folder that is not a diffusers Stable Diffusion model Weft can read."""


def find_model_folders(root: str | os.PathLike) -> list[str]:
    """The folders below ``root`` (relative, ``/``-joined, sorted) that hold a ``model_index.json``."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for folder, _dirs, files in os.walk(root, followlinks=True):
        if MODEL_INDEX in files:
            found.append(Path(folder).relative_to(root).as_posix())
    return sorted(found)


def _weights(part: Path) -> dict:
    for name in WEIGHT_FILES:
        if (part / name).is_file():
            return load_state_dict(part / name)[0]
    raise DiffusersFolderError(f"{part}: no weights file (one of {', '.join(WEIGHT_FILES)})")


def _text_weights(part: Path) -> dict:
    """A text encoder's weights with Hugging Face's ``text_model.`` names: files written by
    ``transformers`` 5 leave that prefix out (``embeddings.…``, ``encoder.layers.…``)."""
    weights = _weights(part)
    if "embeddings.token_embedding.weight" not in weights:
        return weights
    return {k if k.startswith("text_projection.") else f"text_model.{k}": v for k, v in weights.items()}


def _json(path: Path) -> dict:
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


# --------------------------------------------------------------------------- UNet names


def _indices(keys, pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for k in keys if (m := re.match(pattern, k))})


def compvis_modules(diffusers_keys) -> dict[str, str]:
    """diffusers module name -> CompVis module name, for a diffusers UNet's weights."""
    keys = list(diffusers_keys)
    has = lambda prefix: any(k.startswith(prefix + ".") for k in keys)  # noqa: E731
    out = {d: c for d, c in _UNET_TOP.items() if has(d)}

    def resnet(diffusers: str, compvis: str) -> None:
        out.update({f"{diffusers}.{d}": f"{compvis}.{c}" for d, c in _RESNET_PARTS.items()})

    n = 1
    for level in _indices(keys, r"down_blocks\.(\d+)\."):
        for index in _indices(keys, rf"down_blocks\.{level}\.resnets\.(\d+)\."):
            resnet(f"down_blocks.{level}.resnets.{index}", f"input_blocks.{n}.0")
            out[f"down_blocks.{level}.attentions.{index}"] = f"input_blocks.{n}.1"
            n += 1
        if has(f"down_blocks.{level}.downsamplers.0.conv"):
            out[f"down_blocks.{level}.downsamplers.0.conv"] = f"input_blocks.{n}.0.op"
            n += 1
    resnet("mid_block.resnets.0", "middle_block.0")
    out["mid_block.attentions.0"] = "middle_block.1"
    resnet("mid_block.resnets.1", "middle_block.2")
    n = 0
    for level in _indices(keys, r"up_blocks\.(\d+)\."):
        resnets = _indices(keys, rf"up_blocks\.{level}\.resnets\.(\d+)\.")
        for index in resnets:
            resnet(f"up_blocks.{level}.resnets.{index}", f"output_blocks.{n}.0")
            attention = f"up_blocks.{level}.attentions.{index}"
            out[attention] = f"output_blocks.{n}.1"
            if index == resnets[-1] and has(f"up_blocks.{level}.upsamplers.0.conv"):
                slot = 2 if has(attention) else 1
                out[f"up_blocks.{level}.upsamplers.0.conv"] = f"output_blocks.{n}.{slot}.conv"
            n += 1
    return out


def diffusers_unet_to_compvis(state_dict: dict) -> dict:
    """A diffusers UNet state dict renamed to CompVis keys (tensors shared, not copied)."""
    modules = compvis_modules(state_dict)
    by_length = sorted(modules, key=len, reverse=True)
    out = {}
    for key, tensor in state_dict.items():
        module = next((m for m in by_length if key.startswith(m + ".")), None)
        if module is None:
            raise DiffusersFolderError(f"UNet weight {key!r} has no CompVis name (not an SD-family UNet)")
        out[modules[module] + key[len(module):]] = tensor
    # The forward table (kept in step with diffusers' own converter by tests) must agree.
    forward = diffusers_unet_weights(out)
    if forward != {d: c for d, c in zip(state_dict, out)}:
        raise DiffusersFolderError("the UNet's diffusers names do not map one to one onto CompVis names")
    return out


def _head_metadata(config: dict) -> dict[str, str]:
    """Weft's head-split metadata from diffusers' ``attention_head_dim`` / ``num_attention_heads``
    (diffusers reads ``attention_head_dim`` as the number of heads when the other is unset)."""
    heads = config.get("num_attention_heads") or config.get("attention_head_dim")
    channels = config.get("block_out_channels") or []
    if isinstance(heads, int):
        return {META_NUM_HEADS: str(heads)}
    if isinstance(heads, list) and channels:
        widths = {c // h for c, h in zip(channels, heads) if h}
        if len(widths) == 1:
            return {META_HEAD_CHANNELS: str(widths.pop())}
    return {}


# --------------------------------------------------------------------------- the folder


def load_diffusers(folder: str | os.PathLike, *, compute: ComputeSettings | None = None,
                   embedding_dirs=(), with_clip: bool = True, with_vae: bool = True):
    """``(ModelHandle, ClipHandle | None, VaeHandle | None)`` of a diffusers model folder."""
    folder = Path(folder)
    if not (folder / MODEL_INDEX).is_file():
        raise DiffusersFolderError(f"{folder}: no {MODEL_INDEX}; not a diffusers model folder")
    unet_config = _json(folder / "unet" / "config.json")
    metadata = _head_metadata(unet_config)
    if unet_config.get("addition_embed_type") == "text_time" and unet_config.get("addition_time_embed_dim"):
        metadata[META_SIZE_EMBED] = str(unet_config["addition_time_embed_dim"])  # SDXL's size embeddings
    prediction = _json(folder / "scheduler" / "scheduler_config.json").get("prediction_type")
    if prediction in PREDICTIONS:
        metadata[META_PREDICTION] = "v" if PREDICTIONS[prediction] == "v" else "epsilon"
    unet_sd = diffusers_unet_to_compvis(_weights(folder / "unet"))
    detection = detect_unet(unet_sd, metadata)
    model = build_unet(unet_sd, detection, compute=compute)
    vae = build_vae(_weights(folder / "vae"), compute=compute) if with_vae else None
    clip = None
    if with_clip:
        parts = [folder / name for name in ("text_encoder", "text_encoder_2") if (folder / name).is_dir()]
        slots = text_family(detection.family).slots
        if len(parts) != len(slots):
            raise DiffusersFolderError(f"{folder}: {detection.family} has {len(slots)} text encoders, "
                                       f"the folder {len(parts)}")
        clip = build_clip_from_files([_text_weights(p) for p in parts], "sdxl" if len(parts) == 2 else "stable_diffusion",
                                     embedding_dirs, kinds=[slot.kind for slot in slots])
    log.info("loaded diffusers folder %s: %s (%s-prediction)", folder, detection.family, detection.prediction)
    return model, clip, vae
