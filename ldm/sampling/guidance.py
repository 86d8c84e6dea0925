"""Classifier-free guidance over ComfyUI conditioning lists (Ho & Salimans 2022).

:class:`CFGGuider` turns a model, the positive / negative CONDITIONING lists and a cfg scale
into the denoiser samplers call. Per model evaluation (ComfyUI's ``sampling_function``):

1. every active entry of both lists — an entry is inactive outside its
   ``start_percent``/``end_percent`` range — is cut to its ``area`` (h, w, y, x in latent
   pixels) and given a weight map: ``strength`` × its ``mask`` (× ``mask_strength``), or for an
   area without mask a linear ramp over the 8 (at most a quarter of the area) pixels along
   each edge that lies inside the image, so overlapping areas blend;
2. entries whose inputs can be concatenated (same area shape, batchable model inputs; text
   embeddings of different lengths are repeated to a common length) run as ONE batched model
   call — cond and uncond together;
3. each side's prediction is the weight-normalised sum of its entries' predictions;
4. ``sampler_pre_cfg_function`` hooks see both, then ``uncond + (cond - uncond)·cfg`` (or a
   ``sampler_cfg_function`` hook), then ``sampler_post_cfg_function`` hooks. At cfg = 1 the
   uncond side is skipped entirely (one model call of batch 1 per step) unless the options
   set ``disable_cfg1_optimization``.

ControlNet, GLIGEN and hook keyframes in conditioning are not handled here yet (ignored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ldm.sampling.denoiser import ApplyModel
from ldm.sampling.hooks import SamplingHooks
from ldm.sampling.model_conds import (CondContext, ModelCondsBuilder, ModelInputs, repeat_to_batch_size,
                                      text_conds)
from ldm.sampling.model_sampling import ModelSampling

Conditioning = Sequence[Sequence[Any]]  # [[cond tensor [1, tokens, dim], extras dict], …]
#: Weight ramp width (latent pixels) along the inner edges of an area without a mask.
AREA_FEATHER = 8
#: Smallest area set_area_to_bounds produces, in latent pixels.
MIN_BOUNDS = 8


def _identity(latent: Tensor) -> Tensor:
    return latent


@dataclass(frozen=True)
class GuidedModel:
    """What guidance needs from a MODEL: its denoiser, sampling, conditioning builder, hooks.

    ``hooks`` are the patches attached to the MODEL (``ModelHandle.hooks``): cfg function,
    pre/post-cfg functions, the model-call wrapper, UNet patches; each hook is called with
    ComfyUI's ``args`` dict, whose ``model_options`` is the hooks' ComfyUI view.
    """

    apply_model: ApplyModel
    sampling: ModelSampling
    model_conds: ModelCondsBuilder = text_conds
    hooks: SamplingHooks = field(default_factory=SamplingHooks)
    process_latent_in: Callable[[Tensor], Tensor] = _identity
    process_latent_out: Callable[[Tensor], Tensor] = _identity


@dataclass
class CondEntry:
    """One conditioning entry, resolved for a job (areas absolute, masks at latent size)."""

    inputs: ModelInputs
    area: tuple[int, ...] | None = None        # (h, w, y, x) in latent pixels
    strength: float = 1.0
    mask: Tensor | None = None                 # [B or 1, h, w] at latent size
    mask_strength: float = 1.0
    sigma_start: float | None = None           # inactive while sigma > sigma_start
    sigma_end: float | None = None             # inactive once sigma < sigma_end
    extras: dict[str, Any] = field(default_factory=dict)


def _mask_bounds(mask: Tensor) -> tuple[int, int, int, int] | None:
    """(h, w, y, x) of the non-zero region of ``mask`` [B, h, w] over all items, at least 8×8."""
    bounds = mask.abs().amax(dim=0)
    if not bool((bounds != 0).any()):
        return None
    ys, xs = torch.where(bounds != 0)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    return max(MIN_BOUNDS, y1 - y0 + 1), max(MIN_BOUNDS, x1 - x0 + 1), y0, x0


def _resolve_area(extras: dict[str, Any], h: int, w: int) -> tuple[int, ...] | None:
    area = extras.get("area")
    if area is None:
        return None
    if area[0] == "percentage":  # ConditioningSetAreaPercentage: fractions of the latent
        return (max(1, round(area[1] * h)), max(1, round(area[2] * w)), round(area[3] * h), round(area[4] * w))
    return tuple(int(v) for v in area)


def _entry(pair: Sequence[Any], sampling: ModelSampling, ctx: CondContext,
           build: ModelCondsBuilder) -> CondEntry:
    cond, extras = pair[0], dict(pair[1])
    h, w = ctx.noise_shape[-2:]
    area = _resolve_area(extras, h, w)
    mask = extras.get("mask")
    if mask is not None:
        mask = mask.float()
        if mask.ndim == 2:
            mask = mask.unsqueeze(0)
        if tuple(mask.shape[-2:]) != (h, w):
            mask = F.interpolate(mask.unsqueeze(1), size=(h, w), mode="bilinear", align_corners=False).squeeze(1)
        if extras.get("set_area_to_bounds", False):
            area = _mask_bounds(mask) or (MIN_BOUNDS, MIN_BOUNDS, 0, 0)
    sigma_start = sampling.percent_to_sigma(extras["start_percent"]) if "start_percent" in extras else None
    sigma_end = sampling.percent_to_sigma(extras["end_percent"]) if "end_percent" in extras else None
    built = dict(extras, cross_attn=cond)
    return CondEntry(inputs=build(built, ctx), area=area, strength=float(extras.get("strength", 1.0)),
                     mask=mask, mask_strength=float(extras.get("mask_strength", 1.0)),
                     sigma_start=sigma_start, sigma_end=sigma_end, extras=built)


def _contains(outer: tuple[int, ...], inner: tuple[int, ...]) -> bool:
    dims = len(inner) // 2
    return all(inner[dims + i] >= outer[dims + i] and inner[i] + inner[dims + i] <= outer[i] + outer[dims + i]
               for i in range(dims))


def _add_matching_areas(entries: list[CondEntry], others: list[CondEntry]) -> None:
    """Give ``others`` an entry for every area of ``entries`` it lacks (ComfyUI's
    ``create_cond_with_same_area_if_none``): the new entry reuses the model inputs of the
    smallest ``others`` entry covering that area (or of one without area), so both sides of
    CFG are predicted over the same regions."""
    for entry in entries:
        if entry.area is None:
            continue
        smallest = None
        for other in others:
            if other.area is not None:
                if _contains(other.area, entry.area) and (
                        smallest is None or smallest.area is None
                        or math.prod(smallest.area[:2]) > math.prod(other.area[:2])):
                    smallest = other
            elif smallest is None:
                smallest = other
        if smallest is None or smallest.area == entry.area:
            continue
        others.append(CondEntry(inputs=dict(smallest.inputs), area=entry.area, strength=entry.strength,
                                mask=entry.mask, mask_strength=entry.mask_strength,
                                sigma_start=entry.sigma_start, sigma_end=entry.sigma_end, extras=entry.extras))


@dataclass
class _Chunk:
    """An active entry at one model evaluation: its input crop, weight map and inputs."""

    x: Tensor
    mult: Tensor
    inputs: ModelInputs
    area: tuple[int, ...] | None
    side: int  # 0 = cond, 1 = uncond


def _chunk(entry: CondEntry, x: Tensor, sigma: Tensor, side: int) -> _Chunk | None:
    s = float(sigma[0])
    if entry.sigma_start is not None and s > entry.sigma_start:
        return None
    if entry.sigma_end is not None and s < entry.sigma_end:
        return None
    dims = x.ndim - 2
    area = None
    x_in = x
    if entry.area is not None:
        area = list(entry.area)
        for i in range(dims):
            area[i] = min(x.shape[i + 2] - area[dims + i], area[i])
            x_in = x_in.narrow(i + 2, area[dims + i], area[i])
        area = tuple(area)
    if entry.mask is not None:
        mask = entry.mask[:x_in.shape[0]].to(x_in)
        if area is not None:
            for i in range(dims):
                mask = mask.narrow(i + 1, area[dims + i], area[i])
        mask = (mask * entry.mask_strength).unsqueeze(1)
        mult = mask.repeat((x_in.shape[0] // mask.shape[0], x_in.shape[1]) + (1,) * (mask.ndim - 2))
    else:
        mult = torch.ones_like(x_in)
    mult = mult * entry.strength
    if entry.mask is None and area is not None:
        for i in range(dims):
            ramp = min(AREA_FEATHER, mult.shape[i + 2] // 4)
            for t in range(ramp):
                weight = (t + 1) / ramp
                if area[dims + i] != 0:  # edge inside the image: fade in
                    mult.narrow(i + 2, t, 1).mul_(weight)
                if area[i] + area[dims + i] < x.shape[i + 2]:
                    mult.narrow(i + 2, area[i] - 1 - t, 1).mul_(weight)
    inputs = {key: value.process(x.shape[0], area) for key, value in entry.inputs.items()}
    return _Chunk(x_in, mult, inputs, area, side)


def _can_batch(a: _Chunk, b: _Chunk) -> bool:
    if a.x.shape != b.x.shape or a.inputs.keys() != b.inputs.keys():
        return False
    return all(a.inputs[k].can_concat(b.inputs[k]) for k in a.inputs)


def _narrow(tensor: Tensor, area: tuple[int, ...] | None) -> Tensor:
    if area is None:
        return tensor
    dims = len(area) // 2
    for i in range(dims):
        tensor = tensor.narrow(i + 2, area[dims + i], area[i])
    return tensor


def calc_cond_batch(model: GuidedModel, sides: Sequence[Sequence[CondEntry] | None], x: Tensor,
                    sigma: Tensor) -> list[Tensor]:
    """Weighted predictions of each side's entries, batching compatible entries in one call."""
    outputs = [torch.zeros_like(x) for _ in sides]
    counts = [torch.full_like(x, 1e-37) for _ in sides]
    pending = [chunk for side, entries in enumerate(sides) if entries is not None
               for entry in entries if (chunk := _chunk(entry, x, sigma, side)) is not None]
    while pending:
        group = [c for c in pending if _can_batch(c, pending[0])]
        pending = [c for c in pending if not any(c is g for g in group)]
        x_in = torch.cat([c.x for c in group])
        c = {key: type(group[0].inputs[key]).concat([g.inputs[key] for g in group]) for key in group[0].inputs}
        sigma_in = torch.cat([sigma] * len(group))
        cond_or_uncond = [g.side for g in group]
        if model.hooks.transformer_options:
            # ComfyUI hands UNet patches the batch's make-up and sigmas with every call.
            c["transformer_options"] = {**model.hooks.transformer_options, "cond_or_uncond": cond_or_uncond,
                                        "sigmas": sigma_in}
        wrapper = model.hooks.unet_wrapper
        if wrapper is not None:
            out = wrapper(model.apply_model, {"input": x_in, "timestep": sigma_in, "c": c,
                                              "cond_or_uncond": cond_or_uncond})
        else:
            out = model.apply_model(x_in, sigma_in, c)
        for chunk, prediction in zip(group, out.chunk(len(group))):
            _narrow(outputs[chunk.side], chunk.area).add_(prediction * chunk.mult)
            _narrow(counts[chunk.side], chunk.area).add_(chunk.mult)
    return [out / count for out, count in zip(outputs, counts)]


def cfg_combine(model: GuidedModel, cond_pred: Tensor, uncond_pred: Tensor, cfg: float, x: Tensor,
                sigma: Tensor, cond=None, uncond=None) -> Tensor:
    """``uncond + (cond - uncond)·cfg`` or the model's cfg hook, then its post-cfg hooks."""
    hooks = model.hooks
    options = hooks.as_model_options()
    hook = hooks.cfg_function
    if hook is not None:
        args = {"cond": x - cond_pred, "uncond": x - uncond_pred, "cond_scale": cfg, "timestep": sigma,
                "input": x, "sigma": sigma, "cond_denoised": cond_pred, "uncond_denoised": uncond_pred,
                "model": model, "model_options": options, "input_cond": cond, "input_uncond": uncond}
        result = x - hook(args)
    else:
        result = uncond_pred + (cond_pred - uncond_pred) * cfg
    for post in hooks.post_cfg_functions:
        result = post({"denoised": result, "cond": cond, "uncond": uncond, "cond_scale": cfg, "model": model,
                       "uncond_denoised": uncond_pred, "cond_denoised": cond_pred, "sigma": sigma,
                       "model_options": options, "input": x})
    return result


@dataclass
class GuidedDenoiser:
    """The denoiser samplers call: ``(x, sigma [B]) -> x0`` with CFG over prepared entries."""

    model: GuidedModel
    positive: list[CondEntry]
    negative: list[CondEntry]
    cfg: float

    def __call__(self, x: Tensor, sigma: Tensor, **extra_args: Any) -> Tensor:
        hooks = self.model.hooks
        options = hooks.as_model_options()
        skip_uncond = math.isclose(self.cfg, 1.0) and not hooks.disable_cfg1_optimization
        sides = [self.positive, None if skip_uncond else self.negative]
        out = calc_cond_batch(self.model, sides, x, sigma)
        for pre in hooks.pre_cfg_functions:
            out = pre({"conds": sides, "conds_out": out, "cond_scale": self.cfg, "timestep": sigma,
                       "input": x, "sigma": sigma, "model": self.model, "model_options": options})
        return cfg_combine(self.model, out[0], out[1], self.cfg, x, sigma, sides[0], sides[1])


@dataclass(frozen=True)
class CFGGuider:
    """Positive / negative conditioning and a cfg scale for a model (ComfyUI's CFGGuider)."""

    model: GuidedModel
    positive: Conditioning
    negative: Conditioning
    cfg: float

    def prepare(self, noise_shape: torch.Size, latent_image: Tensor | None = None,
                denoise_mask: Tensor | None = None, seed: int = 0) -> GuidedDenoiser:
        """Resolve the conditioning for one job: areas, masks at latent size, timestep ranges as
        sigmas, model inputs, and matching areas on both sides. ``latent_image`` is in model
        space (after ``process_latent_in``)."""
        positive, negative = prepare_sides(self.model, (("positive", self.positive), ("negative", self.negative)),
                                           noise_shape, latent_image, denoise_mask, seed)
        return GuidedDenoiser(self.model, positive, negative, self.cfg)


def prepare_sides(model: GuidedModel, conditionings: Sequence[tuple[str, Conditioning]],
                  noise_shape: torch.Size, latent_image: Tensor | None = None,
                  denoise_mask: Tensor | None = None, seed: int = 0) -> list[list[CondEntry]]:
    """Resolve several CONDITIONING lists for one job, each with its prompt type ("positive" /
    "negative": the SDXL refiner's default aesthetic score depends on it); every area of one
    side gets a counterpart on each other side (ComfyUI's ``process_conds``)."""
    sides = []
    for prompt_type, conditioning in conditionings:
        ctx = CondContext(noise_shape=noise_shape, latent_image=latent_image, denoise_mask=denoise_mask,
                          prompt_type=prompt_type, seed=seed, process_latent_in=model.process_latent_in)
        sides.append([_entry(pair, model.sampling, ctx, model.model_conds) for pair in conditioning])
    for i, side in enumerate(sides):
        for j, other in enumerate(sides):
            if i != j:
                _add_matching_areas(side, other)
    return sides


@dataclass
class InpaintDenoiser:
    """Noise-mask inpainting around a denoiser (ComfyUI's KSamplerX0Inpaint).

    Outside the mask (``denoise_mask`` 0) the state is replaced, before each evaluation, by
    the original latent noised to the current sigma with the job's noise, and the prediction
    there is the original latent; so the unmasked region ends exactly as it began.
    """

    inner: Callable[..., Tensor]
    latent_image: Tensor
    noise: Tensor
    denoise_mask: Tensor | None  # [B, C, h, w], 1 = regenerate

    def __call__(self, x: Tensor, sigma: Tensor, **extra_args: Any) -> Tensor:
        mask = self.denoise_mask
        if mask is None:
            return self.inner(x, sigma, **extra_args)
        keep = 1.0 - mask
        s = sigma.reshape([sigma.shape[0]] + [1] * (x.ndim - 1))
        x = x * mask + (self.latent_image + self.noise * s) * keep
        out = self.inner(x, sigma, **extra_args)
        return out * mask + self.latent_image * keep


def prepare_denoise_mask(noise_mask: Tensor, shape: torch.Size) -> Tensor:
    """A LATENT's ``noise_mask`` ([B, 1, h', w'] or [B, h', w']) at latent size, rounded to
    0/1, on every channel and batch item (ComfyUI's ``prepare_mask``)."""
    mask = noise_mask.float().reshape((-1, 1) + tuple(noise_mask.shape[-2:]))
    mask = F.interpolate(mask, size=tuple(shape[2:]), mode="bilinear").round()
    mask = torch.cat([mask] * shape[1], dim=1)
    return repeat_to_batch_size(mask, shape[0])
