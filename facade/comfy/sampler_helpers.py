"""``comfy.sampler_helpers``: the steps around a sampling run that packs with their own samplers
(Impact's noise nodes, Easy-Use, Efficiency's tiled sampler) call before handing conditioning and
a noise mask to ``comfy.samplers.KSampler``.

- ``prepare_mask`` is Weft's :func:`ldm.sampling.guidance.prepare_denoise_mask`: the mask Weft's
  sampler itself uses (latent size, every channel and batch item, soft values kept);
- ``convert_cond`` gives ComfyUI's per-entry dicts (``cross_attn``, ``model_conds``, ``uuid``);
- ``get_additional_models`` / ``cleanup_*`` collect what the conditioning carries under
  ``control``, ``gligen`` and ``additional_models`` (Weft's own nodes put nothing there);
- ``prepare_sampling`` hands the MODEL (and those models) to the engine, as
  ``comfy.model_management.load_models_gpu`` does, and returns ``(model.model, conds, models)``;
- ``estimate_memory`` is Weft's estimate for the doubled (cond + uncond) and the single batch.
"""

from __future__ import annotations

import uuid
from typing import Any

import torch

from comfy import model_management
from ldm.sampling.guidance import prepare_denoise_mask

__all__ = ["cleanup_additional_models", "cleanup_models", "convert_cond", "estimate_memory",
           "get_additional_models", "get_models_from_cond", "prepare_mask", "prepare_sampling"]


def prepare_mask(noise_mask: torch.Tensor, shape, device) -> torch.Tensor:
    """A LATENT's ``noise_mask`` as the ``[B, C, h, w]`` denoise mask for a latent of ``shape``."""
    return prepare_denoise_mask(noise_mask, torch.Size(shape)).to(device)


def convert_cond(cond: list) -> list[dict]:
    """CONDITIONING ``[[tensor, extras], …]`` → one dict per entry: the extras, ``cross_attn`` (the
    tensor), ``model_conds`` (the entry's, or empty) and a fresh ``uuid``."""
    out = []
    for tensor, extras in cond:
        entry = dict(extras)
        entry["model_conds"] = entry.get("model_conds", {})
        if tensor is not None:
            entry["cross_attn"] = tensor
        entry["uuid"] = uuid.uuid4()
        out.append(entry)
    return out


def get_models_from_cond(cond: list[dict], model_type: str) -> list:
    models = []
    for entry in cond:
        if model_type in entry:
            found = entry[model_type]
            models += found if isinstance(found, list) else [found]
    return models


def get_additional_models(conds: dict[str, list[dict]], dtype) -> tuple[list, int]:
    """``(models, inference memory)`` for what converted conditioning carries: ControlNet-like
    objects (``control``: their ``get_models()``, memory from ``inference_memory_requirements``),
    GLIGEN (``gligen``: ``(name, model)`` pairs) and ``additional_models``."""
    controls, gligen, extra = [], [], []
    for entries in conds.values():
        controls += get_models_from_cond(entries, "control")
        gligen += get_models_from_cond(entries, "gligen")
        extra += get_models_from_cond(entries, "additional_models")
    models, memory = [], 0
    for control in dict.fromkeys(controls):
        models += control.get_models()
        memory += control.inference_memory_requirements(dtype)
    return models + [pair[1] for pair in gligen] + extra, memory


def cleanup_additional_models(models) -> None:
    for model in models:
        if hasattr(model, "cleanup"):
            model.cleanup()


def cleanup_models(conds: dict[str, list[dict]], models: list) -> None:
    cleanup_additional_models(models)
    controls = []
    for entries in conds.values():
        controls += get_models_from_cond(entries, "control")
    cleanup_additional_models(dict.fromkeys(controls))


def estimate_memory(model, noise_shape, conds) -> tuple[int, int]:
    """``(bytes for cond and uncond in one batch, bytes for one side)`` from Weft's UNet estimate."""
    shape = list(noise_shape)
    return model.memory_required([shape[0] * 2] + shape[1:]), model.memory_required(shape)


def prepare_sampling(model, noise_shape, conds, model_options=None) -> tuple[Any, dict, list]:
    """Load the MODEL and the conditioning's extra models through the engine; ComfyUI's result
    ``(model.model, conds, models)``."""
    models, inference_memory = get_additional_models(conds, model.model_dtype())
    models += model.get_nested_additional_models()
    required, minimum = estimate_memory(model, noise_shape, conds)
    model_management.load_models_gpu([model] + models, memory_required=required + inference_memory,
                                     minimum_memory_required=minimum + inference_memory)
    return model.model, conds, models
