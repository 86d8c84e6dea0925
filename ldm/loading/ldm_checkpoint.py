"""What a CompVis latent-diffusion checkpoint says beyond its networks: noise schedule, latent
scale and how it is conditioned (Rombach et al. 2022; ``ldm/models/diffusion/ddpm.py``).

``LatentDiffusion.register_schedule`` stores the schedule as buffers at the top level of the
state dict (``betas``, ``alphas_cumprod``, …), so a released ``.ckpt`` carries its own schedule:
it is read from ``alphas_cumprod`` when present. Without it the published ``linear_start`` /
``linear_end`` of the layout are used (:data:`PUBLISHED_SCHEDULES`; all use CompVis' "linear"
schedule, betas evenly spaced in sqrt space, 1000 steps).

``scale_factor`` is a buffer only for models trained with ``scale_by_std`` (LSUN churches, KL-f8);
otherwise it is a config value: 0.18215 for the KL-f8 text-to-image model
(``txt2img-1p4B-eval.yaml``), LatentDiffusion's default 1.0 for every VQ model and the rest
(layout2img-openimages256's config sets none: 1.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ldm.loading.detect import CLASS_EMBEDDING_KEY
from ldm.sampling.model_sampling import ScheduleConfig, schedule_from_alphas_cumprod
from ldm.text.ldm_bert import find_ldm_bert

ALPHAS_CUMPROD_KEY = "alphas_cumprod"
SCALE_FACTOR_KEY = "scale_factor"
#: SpatialRescaler's 1x1 channel map of the semantic-synthesis models ([out, classes, 1, 1], no bias).
CHANNEL_MAPPER_KEY = "cond_stage_model.channel_mapper.weight"

#: How the UNet is conditioned, from the checkpoint's contents.
TEXT, CLASS, UNCONDITIONAL, SUPER_RESOLUTION, INPAINT, SEMANTIC, LAYOUT = (
    "text", "class", "unconditional", "super_resolution", "inpaint", "semantic", "layout")

#: (linear_start, linear_end) of the released models (``models/ldm/*/config.yaml``,
#: ``configs/latent-diffusion/*.yaml``), by conditioning (and first stage where they differ).
PUBLISHED_SCHEDULES = {
    TEXT: (0.00085, 0.012),            # txt2img-1p4B (KL-f8)
    CLASS: (0.0015, 0.0195),           # cin256, cin256-v2
    UNCONDITIONAL: (0.0015, 0.0195),   # CelebA-HQ, FFHQ, LSUN bedrooms (VQ-f4)
    "unconditional_kl": (0.0015, 0.0155),  # LSUN churches (KL-f8)
    SUPER_RESOLUTION: (0.0015, 0.0155),    # bsr_sr
    INPAINT: (0.0015, 0.0205),         # inpainting_big
    SEMANTIC: (0.0015, 0.0205),        # semantic_synthesis256 / 512
    LAYOUT: (0.0015, 0.0205),          # layout2img-openimages256 (VQ-f4)
}
#: ``scale_factor`` of the text-to-image KL-f8 model's config; every other release without the buffer keeps 1.0.
TXT2IMG_SCALE_FACTOR = 0.18215
DEFAULT_SCALE_FACTOR = 1.0


@dataclass(frozen=True)
class LDMFacts:
    conditioning: str
    schedule: ScheduleConfig
    scale_factor: float
    schedule_from_checkpoint: bool  # False: the published values of the layout were used


def conditioning_kind(state_dict: dict, family: str, in_channels: int, out_channels: int) -> str:
    """Which of the paper's conditionings the checkpoint's model takes."""
    if family == "ldm_layout":
        return LAYOUT
    if find_ldm_bert(state_dict) is not None:
        return TEXT
    if CLASS_EMBEDDING_KEY in state_dict:
        return CLASS
    if family == "ldm_uncond":
        return UNCONDITIONAL
    if family != "ldm_concat":
        raise ValueError(f"{family} is not a CompVis LDM family")
    if CHANNEL_MAPPER_KEY in state_dict:
        return SEMANTIC
    # CompVis' inpainting model: the latent (3) ++ the masked image's latent (3) ++ the mask (1).
    if in_channels == 2 * out_channels + 1:
        return INPAINT
    return SUPER_RESOLUTION


def _published(kind: str, first_stage_kind: str) -> tuple[float, float]:
    if kind == UNCONDITIONAL and first_stage_kind == "kl":
        return PUBLISHED_SCHEDULES["unconditional_kl"]
    return PUBLISHED_SCHEDULES[kind]


def read_scale_factor(state_dict: dict, kind: str, first_stage_kind: str) -> float:
    buffer = state_dict.get(SCALE_FACTOR_KEY)
    if buffer is not None:
        value = float(torch.as_tensor(buffer).float().reshape(-1)[0])
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"the checkpoint's scale_factor {value} is not a positive number")
        return value
    if kind == TEXT and first_stage_kind == "kl":
        return TXT2IMG_SCALE_FACTOR
    return DEFAULT_SCALE_FACTOR


def read_ldm_facts(state_dict: dict, family: str, in_channels: int, out_channels: int,
                   first_stage_kind: str) -> LDMFacts:
    """The schedule, scale and conditioning of a CompVis LDM checkpoint (whole state dict)."""
    kind = conditioning_kind(state_dict, family, in_channels, out_channels)
    start, end = _published(kind, first_stage_kind)
    table = state_dict.get(ALPHAS_CUMPROD_KEY)
    if table is not None:
        schedule = schedule_from_alphas_cumprod(table, start, end)
    else:
        schedule = ScheduleConfig("scaled_linear", start, end)
    return LDMFacts(kind, schedule, read_scale_factor(state_dict, kind, first_stage_kind), table is not None)
