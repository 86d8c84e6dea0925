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

An entry's ``control`` (ControlNets / T2I-Adapters, ``ldm.control``) is prepared once per job
and run per model call on the batch it conditions; entries with different controls never share
a call. Entries carrying weight hooks (``"hooks"``, :mod:`ldm.sampling.weight_hooks`) batch only with
entries of the same hooks, and the UNet runs their batch with the hooks' patches at the step's
keyframe strengths; ``"default"`` entries (ConditioningSetDefaultCombine) weigh in only where
their side's other entries leave weight below 1 (ComfyUI's ``finalize_default_conds``). A
``clip_start_percent``/``clip_end_percent`` range (scheduled CLIP hooks) narrows the entry's own
timestep range. An entry's ``gligen`` (GLIGEN boxes,
``ldm.vision.gligen``) becomes a ``middle_patch`` of its calls, built per evaluation, after the
model's own patches; such entries never share a call, and positive GLIGEN is handed to the
other sides as ComfyUI's ``apply_empty_x_to_equal_area`` does.
"""

from __future__ import annotations

import abc
import contextlib
import math
from dataclasses import dataclass, field
from uuid import UUID, uuid4
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ldm.control.apply import ControlRun, Lender, lend_in_place, prepare_control
from ldm.networks.unet_patches import WrapperChain
from ldm.sampling.denoiser import ApplyModel
from ldm.sampling.hooks import SamplingHooks, effective_cfg
from ldm.sampling.model_conds import (CondContext, ModelCondsBuilder, ModelInputs, repeat_to_batch_size,
                                      text_conds)
from ldm.sampling.model_sampling import ModelSampling
from ldm.sampling.weight_hooks import HookRun, ScheduledHooks
from ldm.vision.gligen import gligen_patches

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
    ComfyUI's ``args`` dict, whose ``model_options`` is the hooks' ComfyUI view. ``lend`` places
    a ControlNet for a call (the engine's memory manager during a run); ``diffusion_model`` is the
    UNet module a control-LoRA copies.
    """

    apply_model: ApplyModel
    sampling: ModelSampling
    model_conds: ModelCondsBuilder = text_conds
    hooks: SamplingHooks = field(default_factory=SamplingHooks)
    process_latent_in: Callable[[Tensor], Tensor] = _identity
    process_latent_out: Callable[[Tensor], Tensor] = _identity
    lend: Lender = lend_in_place
    diffusion_model: Any = None


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
    control: ControlRun | None = None
    uuid: UUID = field(default_factory=uuid4)  # ComfyUI's per-entry id, handed to UNet patches as "uuids"
    hooks: ScheduledHooks | None = None        # weight hooks the UNet runs this entry with
    default: bool = False                      # fills only the weight the side's other entries leave


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


def _entry(pair: Sequence[Any], model: GuidedModel, ctx: CondContext,
           controls: dict[int, ControlRun], hook_run: HookRun) -> CondEntry:
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
    sampling = model.sampling
    sigma_start = sampling.percent_to_sigma(extras["start_percent"]) if "start_percent" in extras else None
    sigma_end = sampling.percent_to_sigma(extras["end_percent"]) if "end_percent" in extras else None
    if "clip_start_percent" in extras:  # a scheduled CLIP-hook range within the entry's own range
        sigma_start = sampling.percent_to_sigma(max(extras["clip_start_percent"], extras.get("start_percent", 0.0)))
        sigma_end = sampling.percent_to_sigma(min(extras["clip_end_percent"], extras.get("end_percent", 1.0)))
    control = extras.get("control")
    if control is not None:
        control = prepare_control(control, sampling, model.diffusion_model, controls)
    built = dict(extras, cross_attn=cond)
    return CondEntry(inputs=model.model_conds(built, ctx), area=area, strength=float(extras.get("strength", 1.0)),
                     mask=mask, mask_strength=float(extras.get("mask_strength", 1.0)),
                     sigma_start=sigma_start, sigma_end=sigma_end, extras=built, control=control,
                     hooks=hook_run.schedule(extras.get("hooks")), default=bool(extras.get("default", False)))


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
                                sigma_start=entry.sigma_start, sigma_end=entry.sigma_end, extras=entry.extras,
                                control=entry.control, hooks=entry.hooks))


@dataclass
class _Chunk:
    """An active entry at one model evaluation: its input crop, weight map and inputs."""

    x: Tensor
    mult: Tensor
    inputs: ModelInputs
    area: tuple[int, ...] | None
    side: int  # 0 = cond, 1 = uncond
    control: ControlRun | None = None
    uuid: UUID | None = None
    hooks: ScheduledHooks | None = None
    patches: dict | None = None  # the entry's own UNet patches (GLIGEN), after the model's


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
    gligen = entry.extras.get("gligen")
    patches = gligen_patches(gligen, tuple(x_in.shape)) if gligen is not None else None
    return _Chunk(x_in, mult, inputs, area, side, entry.control, entry.uuid, entry.hooks, patches)


def _can_batch(a: _Chunk, b: _Chunk) -> bool:
    if (a.x.shape != b.x.shape or a.inputs.keys() != b.inputs.keys() or a.control is not b.control
            or a.hooks is not b.hooks):
        return False
    if a is not b and (a.patches is not None or b.patches is not None):  # built per chunk: never shared
        return False
    return all(a.inputs[k].can_concat(b.inputs[k]) for k in a.inputs)


def _narrow(tensor: Tensor, area: tuple[int, ...] | None) -> Tensor:
    if area is None:
        return tensor
    dims = len(area) // 2
    for i in range(dims):
        tensor = tensor.narrow(i + 2, area[dims + i], area[i])
    return tensor


def _default_chunks(sides: Sequence[Sequence[CondEntry] | None], chunks: Sequence[_Chunk], x: Tensor,
                    sigma: Tensor) -> list[_Chunk]:
    """Chunks of the ``default`` entries: each weighted by what its side's other chunks leave of
    a weight of 1 (clamped at 0), and skipped where they leave nothing."""
    out = []
    for side, entries in enumerate(sides):
        defaults = [entry for entry in entries or () if entry.default]
        if not defaults:
            continue
        remaining = torch.ones_like(x)
        for chunk in chunks:
            if chunk.side == side:
                _narrow(remaining, chunk.area).sub_(chunk.mult)
        remaining = remaining.clamp_(min=0)
        if float(remaining.max()) == 0.0:
            continue
        for entry in defaults:
            chunk = _chunk(entry, x, sigma, side)
            if chunk is not None:
                chunk.mult = remaining
                out.append(chunk)
    return out


def calc_cond_batch(model: GuidedModel, sides: Sequence[Sequence[CondEntry] | None], x: Tensor,
                    sigma: Tensor) -> list[Tensor]:
    """Weighted predictions of each side's entries, batching compatible entries in one call."""
    outputs = [torch.zeros_like(x) for _ in sides]
    counts = [torch.full_like(x, 1e-37) for _ in sides]
    pending = [chunk for side, entries in enumerate(sides) if entries is not None
               for entry in entries if not entry.default and (chunk := _chunk(entry, x, sigma, side)) is not None]
    pending += _default_chunks(sides, pending, x, sigma)
    for hooks in {id(c.hooks): c.hooks for c in pending if c.hooks is not None}.values():
        hooks.advance(sigma)
    while pending:
        group = [c for c in pending if _can_batch(c, pending[0])]
        pending = [c for c in pending if not any(c is g for g in group)]
        x_in = torch.cat([c.x for c in group])
        c = {key: type(group[0].inputs[key]).concat([g.inputs[key] for g in group]) for key in group[0].inputs}
        sigma_in = torch.cat([sigma] * len(group))
        cond_or_uncond = [g.side for g in group]
        if model.hooks.transformer_options or group[0].patches:
            # ComfyUI hands UNet patches the batch's make-up and sigmas with every call.
            c["transformer_options"] = {**model.hooks.transformer_options, "cond_or_uncond": cond_or_uncond,
                                        "sigmas": sigma_in, "uuids": [g.uuid for g in group]}
            if group[0].patches:
                merged = dict(model.hooks.transformer_options.get("patches", {}))
                for name, added in group[0].patches.items():
                    merged[name] = list(merged.get(name, ())) + list(added)
                c["transformer_options"]["patches"] = merged
        if group[0].control is not None:
            c["control"] = group[0].control.residuals(x_in, sigma_in, c, len(group), model.lend)
        wrapper = model.hooks.unet_wrapper
        with group[0].hooks.applied() if group[0].hooks is not None else contextlib.nullcontext():
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


class WrappedDenoiser(abc.ABC):
    """Base of every guider's denoiser (ComfyUI's ``CFGGuider.outer_predict_noise``, which all its
    guiders inherit): a call runs the subclass's ``predict`` inside the ``predict_noise_wrappers``
    of ``self.model`` (EasyCache, LazyCache, packs' wrappers), called as ComfyUI calls them —
    ``(x, sigma, model_options, seed)``, this denoiser as ``class_obj``."""

    model: GuidedModel

    def __call__(self, x: Tensor, sigma: Tensor, **extra_args: Any) -> Tensor:
        wrappers = self.model.hooks.predict_noise_wrappers
        if not wrappers:
            return self.predict(x, sigma, **extra_args)

        def predict(x: Tensor, sigma: Tensor, model_options: Any = None, seed: Any = None) -> Tensor:
            return self.predict(x, sigma, **extra_args)

        return WrapperChain(predict, self, list(wrappers)).execute(
            x, sigma, self.model.hooks.as_model_options(), extra_args.get("seed"))

    @abc.abstractmethod
    def predict(self, x: Tensor, sigma: Tensor, **extra_args: Any) -> Tensor:
        """The guided x0 of one model evaluation, without the wrappers."""


@dataclass
class GuidedDenoiser(WrappedDenoiser):
    """The denoiser samplers call: ``(x, sigma [B]) -> x0`` with CFG over prepared entries."""

    model: GuidedModel
    positive: list[CondEntry]
    negative: list[CondEntry]
    cfg: float

    def predict(self, x: Tensor, sigma: Tensor, report_uncond: Callable[[Tensor], None] | None = None,
                 **extra_args: Any) -> Tensor:
        """``report_uncond``: CFG++ samplers (Chung et al. 2024) step along the unconditional
        prediction; given, the negative side is evaluated even at cfg 1 and handed to it (what
        ComfyUI's CFG++ samplers read through a post-cfg hook)."""
        hooks = self.model.hooks
        options = hooks.as_model_options()
        cfg = effective_cfg(hooks, float(sigma[0]), self.cfg)
        skip_uncond = (math.isclose(cfg, 1.0) and not hooks.disable_cfg1_optimization
                       and report_uncond is None)
        sides = [self.positive, None if skip_uncond else self.negative]
        out = calc_cond_batch(self.model, sides, x, sigma)
        for pre in hooks.pre_cfg_functions:
            out = pre({"conds": sides, "conds_out": out, "cond_scale": cfg, "timestep": sigma,
                       "input": x, "sigma": sigma, "model": self.model, "model_options": options})
        if report_uncond is not None:
            report_uncond(out[1])
        return cfg_combine(self.model, out[0], out[1], cfg, x, sigma, sides[0], sides[1])


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


def _share_with_other_sides(sides: list[tuple[str, list]], name: str, only_flagged: str | None = None) -> None:
    """ComfyUI's ``apply_empty_x_to_equal_area``: each positive ``name`` value (entries without
    area; with ``only_flagged``, only those whose extras set that flag) goes onto the other sides'
    area-less entries without one, in turn, unless a side has such values of its own."""
    positive = next((entries for kind, entries in sides if kind == "positive"), [])
    shared = [pair[1][name] for pair in positive if "area" not in pair[1] and pair[1].get(name) is not None
              and (only_flagged is None or pair[1].get(only_flagged, False))]
    for kind, entries in sides:
        if kind == "positive" or not shared:
            continue
        free = [i for i, pair in enumerate(entries) if "area" not in pair[1]]
        if not free or any(entries[i][1].get(name) is not None for i in free):
            continue
        for n, value in enumerate(shared):
            index = free[n % len(free)]
            entries[index] = [entries[index][0], dict(entries[index][1], **{name: value})]


def _shared_to_other_sides(conditionings: Sequence[tuple[str, Conditioning]]) -> list[tuple[str, list]]:
    """The sides with the controls of positive ``control_apply_to_uncond`` entries (the deprecated
    ControlNetApply's) and every positive GLIGEN handed on to the other sides."""
    sides = [(kind, list(conditioning)) for kind, conditioning in conditionings]
    _share_with_other_sides(sides, "control", only_flagged="control_apply_to_uncond")
    _share_with_other_sides(sides, "gligen")
    return sides


def prepare_sides(model: GuidedModel, conditionings: Sequence[tuple[str, Conditioning]],
                  noise_shape: torch.Size, latent_image: Tensor | None = None,
                  denoise_mask: Tensor | None = None, seed: int = 0) -> list[list[CondEntry]]:
    """Resolve several CONDITIONING lists for one job, each with its prompt type ("positive" /
    "negative": the SDXL refiner's default aesthetic score depends on it); every area of one
    side gets a counterpart on each other side (ComfyUI's ``process_conds``)."""
    sides = []
    controls: dict[int, ControlRun] = {}  # one run per applied control object, shared by its entries
    hook_run = HookRun(model.sampling, model.diffusion_model)  # the job's weight hooks and keyframes
    conditionings = _shared_to_other_sides(conditionings)
    for prompt_type, conditioning in conditionings:
        ctx = CondContext(noise_shape=noise_shape, latent_image=latent_image, denoise_mask=denoise_mask,
                          prompt_type=prompt_type, seed=seed, process_latent_in=model.process_latent_in)
        sides.append([_entry(pair, model, ctx, controls, hook_run) for pair in conditioning])
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
    A model's ``denoise_mask_function`` hook (``mask_function``) may edit the mask per
    evaluation; it is called as ComfyUI calls it, with ``mask_function_options`` (the job's
    ``model`` and ``sigmas``) as its ``extra_options``.
    """

    inner: Callable[..., Tensor]
    latent_image: Tensor
    noise: Tensor
    denoise_mask: Tensor | None  # [B, C, h, w], 1 = regenerate
    mask_function: Callable[..., Tensor] | None = None
    mask_function_options: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, x: Tensor, sigma: Tensor, **extra_args: Any) -> Tensor:
        mask = self.denoise_mask
        if mask is None:
            return self.inner(x, sigma, **extra_args)
        if self.mask_function is not None:
            mask = self.mask_function(sigma, mask, extra_options=dict(self.mask_function_options))
        keep = 1.0 - mask
        s = sigma.reshape([sigma.shape[0]] + [1] * (x.ndim - 1))
        x = x * mask + (self.latent_image + self.noise * s) * keep
        out = self.inner(x, sigma, **extra_args)
        return out * mask + self.latent_image * keep


def prepare_denoise_mask(noise_mask: Tensor, shape: torch.Size) -> Tensor:
    """A LATENT's ``noise_mask`` ([B, 1, h', w'] or [B, h', w']) at latent size, on every
    channel and batch item (ComfyUI's ``prepare_mask``). Not rounded: a soft mask keeps its
    gradient, which DifferentialDiffusion turns into per-step thresholds."""
    mask = noise_mask.float().reshape((-1, 1) + tuple(noise_mask.shape[-2:]))
    mask = F.interpolate(mask, size=tuple(shape[2:]), mode="bilinear")
    mask = torch.cat([mask] * shape[1], dim=1)
    return repeat_to_batch_size(mask, shape[0])
