"""Operations on CONDITIONING values: lists of ``[cond [1, T, D], extras dict]`` pairs.

Every function returns new lists and new extras dicts; the tensors themselves are shared when
unchanged (conditioning values are immutable by convention, as in ComfyUI).
"""

from __future__ import annotations

import logging
from typing import Mapping

import torch

log = logging.getLogger(__name__)

Conditioning = list  # [[tensor, dict], …]

#: Extras that hold conditioning tensors and are zeroed along with the main tensor.
ZEROED_EXTRAS = ("pooled_output", "conditioning_lyrics")


def with_values(conditioning: Conditioning, values: Mapping) -> Conditioning:
    """Each pair with ``values`` set in a copy of its extras."""
    return [[cond, {**extras, **values}] for cond, extras in conditioning]


def combine(first: Conditioning, second: Conditioning) -> Conditioning:
    """Both lists of pairs: the sampler evaluates each and sums them by area and strength."""
    return list(first) + list(second)


def average(to: Conditioning, source: Conditioning, to_strength: float) -> Conditioning:
    """``to · s + source · (1 - s)`` per pair of ``to``, with only the first pair of ``source``.

    The source is cut or zero-padded to each target's token count; pooled vectors are mixed
    the same way (a target without one takes the source's).
    """
    if len(source) > 1:
        log.warning("ConditioningAverage: only the first entry of conditioning_from is used")
    source_cond = source[0][0]
    source_pooled = source[0][1].get("pooled_output")
    out = []
    for cond, extras in to:
        mixed_source = source_cond[:, : cond.shape[1]]
        if mixed_source.shape[1] < cond.shape[1]:
            padding = torch.zeros((1, cond.shape[1] - mixed_source.shape[1], cond.shape[2]))
            mixed_source = torch.cat([mixed_source, padding], dim=1)
        new_extras = dict(extras)
        target_pooled = extras.get("pooled_output", source_pooled)
        if source_pooled is not None and target_pooled is not None:
            new_extras["pooled_output"] = target_pooled * to_strength + source_pooled * (1.0 - to_strength)
        elif source_pooled is not None:
            new_extras["pooled_output"] = source_pooled
        out.append([cond * to_strength + mixed_source * (1.0 - to_strength), new_extras])
    return out


def concat(to: Conditioning, source: Conditioning) -> Conditioning:
    """Each target's tokens followed by the first source's tokens (dim 1)."""
    if len(source) > 1:
        log.warning("ConditioningConcat: only the first entry of conditioning_from is used")
    source_cond = source[0][0]
    return [[torch.cat((cond, source_cond), dim=1), dict(extras)] for cond, extras in to]


def zero_out(conditioning: Conditioning) -> Conditioning:
    """Zeros in place of the tensor and of its pooled (and similar) extras."""
    out = []
    for cond, extras in conditioning:
        new_extras = dict(extras)
        for key in ZEROED_EXTRAS:
            if extras.get(key) is not None:
                new_extras[key] = torch.zeros_like(extras[key])
        out.append([torch.zeros_like(cond), new_extras])
    return out


def set_area(conditioning: Conditioning, width: int, height: int, x: int, y: int,
             strength: float) -> Conditioning:
    """Restrict to a pixel rectangle; stored as ``(h, w, y, x)`` in latent pixels (÷ 8)."""
    return with_values(conditioning, {"area": (height // 8, width // 8, y // 8, x // 8),
                                      "strength": strength, "set_area_to_bounds": False})


def set_area_percentage(conditioning: Conditioning, width: float, height: float, x: float, y: float,
                        strength: float) -> Conditioning:
    """Restrict to a rectangle given as fractions of the image."""
    return with_values(conditioning, {"area": ("percentage", height, width, y, x),
                                      "strength": strength, "set_area_to_bounds": False})


def set_mask(conditioning: Conditioning, mask: torch.Tensor, strength: float,
             to_bounds: bool) -> Conditioning:
    """Restrict to a mask ``[B, H, W]`` (a 2-D mask gets a batch axis)."""
    if mask.dim() < 3:
        mask = mask.unsqueeze(0)
    return with_values(conditioning, {"mask": mask, "set_area_to_bounds": to_bounds,
                                      "mask_strength": strength})


def set_timestep_range(conditioning: Conditioning, start: float, end: float) -> Conditioning:
    """Active only from ``start`` to ``end`` (fractions of the sampling run, 0 = first step)."""
    return with_values(conditioning, {"start_percent": start, "end_percent": end})


def sdxl_tokens(clip, text_g: str, text_l: str) -> dict:
    """Tokens for SDXL with separate prompts for bigG and CLIP-L; the shorter side is padded
    with empty-prompt chunks so both have the same number of chunks."""
    tokens = clip.tokenize(text_g)
    if "g" not in tokens or "l" not in tokens:
        raise ValueError("CLIPTextEncodeSDXL needs an SDXL CLIP (CLIP-L and bigG); "
                         f"this one has {sorted(tokens)}")
    tokens["l"] = clip.tokenize(text_l)["l"]
    empty = clip.tokenize("")
    while len(tokens["l"]) < len(tokens["g"]):
        tokens["l"] = tokens["l"] + empty["l"]
    while len(tokens["g"]) < len(tokens["l"]):
        tokens["g"] = tokens["g"] + empty["g"]
    return tokens
