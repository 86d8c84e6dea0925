"""``comfy.samplers``: sampler and scheduler names, sampler objects, sigmas, CFG guiders.

``KSampler.SAMPLERS`` / ``SCHEDULERS`` are Weft's tables (packs read them inside
``INPUT_TYPES``). A SAMPLER is Weft's :class:`ldm.sampling.custom.SamplerChoice` — by name, or a
pack's own k-diffusion-style function through :func:`KSAMPLER`. ``calc_cond_batch`` and
``sampling_function`` run Weft's guidance, for the cfg hooks and guiders packs write.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch

from comfy._weft_sampling import guided_run, step_reporter
from ldm.sampling import guidance
from ldm.sampling.custom import SamplerChoice
from ldm.sampling.from_handle import model_sampling_of
from ldm.sampling.hooks import SamplingHooks
from ldm.sampling.sample import ksampler_sigmas, sample_with_sigmas, slice_sigmas
from ldm.sampling.samplers import SAMPLER_NAMES, SAMPLERS as SAMPLER_TABLE, SamplerSpec
from ldm.sampling.schedulers import SCHEDULER_NAMES
from ldm.sampling.schedulers import calculate_sigmas as _weft_calculate_sigmas

KSAMPLER_NAMES = [name for name in SAMPLER_NAMES if name != "ddim" and not name.endswith(("_gpu",))]
SAMPLER_NAMES = list(SAMPLER_NAMES)
SCHEDULER_NAMES = list(SCHEDULER_NAMES)


def calculate_sigmas(model_sampling, scheduler_name: str, steps: int) -> torch.Tensor:
    return _weft_calculate_sigmas(model_sampling, scheduler_name, steps)


def sampler_object(name: str) -> SamplerChoice:
    return SamplerChoice(name)


def KSAMPLER(sampler_function: Callable, extra_options: dict | None = None,
             inpaint_options: dict | None = None) -> SamplerChoice:
    """A SAMPLER from a pack's function ``fn(model, x, sigmas, extra_args=, callback=, disable=, **options)``."""
    options = dict(extra_options or {})

    def run(model, x, sigmas, extra_args=None, callback=None, noise_sampler=None):
        if noise_sampler is not None:
            options.setdefault("noise_sampler", noise_sampler)
        return sampler_function(model, x, sigmas, extra_args=extra_args, callback=callback, disable=True,
                                **options)

    name = getattr(sampler_function, "__name__", "custom")
    return SamplerChoice(name, spec=SamplerSpec(run))


def ksampler(sampler_name: str, extra_options: dict | None = None, inpaint_options: dict | None = None):
    """A table sampler, with extra keyword options for its function when given."""
    if not extra_options:
        return SamplerChoice(sampler_name)
    spec = SAMPLER_TABLE[sampler_name]
    return SamplerChoice(sampler_name, spec=dataclasses.replace(
        spec, function=lambda *args, **kwargs: spec.function(*args, **kwargs, **extra_options)))


def _with_options(model: guidance.GuidedModel, model_options) -> guidance.GuidedModel:
    """``model`` with the hooks a pack passes as a (possibly edited) ``model_options`` dict."""
    if model_options is None:
        return model
    hooks = getattr(model_options, "hooks", None) or SamplingHooks.from_model_options(model_options)
    return dataclasses.replace(model, hooks=hooks)


def calc_cond_batch(model, conds, x_in, timestep, model_options=None):
    """Each side's weighted prediction (x0), batching what can be batched; ``model`` is the
    ``args["model"]`` a cfg hook received, ``conds`` its ``input_cond`` / ``input_uncond``."""
    return guidance.calc_cond_batch(_with_options(model, model_options), conds, x_in, timestep)


def sampling_function(model, x, timestep, uncond, cond, cond_scale, model_options=None, seed=None):
    """One guided model evaluation: cond / uncond predictions combined by cfg and the hooks."""
    denoiser = guidance.GuidedDenoiser(_with_options(model, model_options), list(cond or []),
                                       list(uncond or []) if uncond is not None else None, cond_scale)
    return denoiser(x, timestep)


class KSampler:
    """ComfyUI's ``KSampler`` object: a model, a schedule, and ``sample``."""

    SCHEDULERS = SCHEDULER_NAMES
    SAMPLERS = SAMPLER_NAMES
    DISCARD_PENULTIMATE_SIGMA_SAMPLERS = {name for name, spec in SAMPLER_TABLE.items() if spec.discard_penultimate_sigma}

    def __init__(self, model, steps, device=None, sampler=None, scheduler=None, denoise=None, model_options=None):
        self.model = model
        self.device = device
        self.sampler = sampler if sampler in SAMPLER_NAMES else SAMPLER_NAMES[0]
        self.scheduler = scheduler if scheduler in SCHEDULER_NAMES else SCHEDULER_NAMES[0]
        self.set_steps(steps, denoise)

    def set_steps(self, steps, denoise=None):
        self.steps = steps
        self.denoise = 1.0 if denoise is None else denoise
        self.sigmas = ksampler_sigmas(model_sampling_of(self.model), self.scheduler, self.sampler, steps, self.denoise)

    def sample(self, noise, positive, negative, cfg, latent_image=None, start_step=None, last_step=None,
               force_full_denoise=False, denoise_mask=None, sigmas=None, callback=None, disable_pbar=False,
               seed=None):
        sigmas = self.sigmas if sigmas is None else sigmas
        sliced = slice_sigmas(sigmas, start_step, last_step, force_full_denoise)
        if latent_image is None:
            latent_image = torch.zeros_like(noise)
        if sliced is None:
            return latent_image
        with guided_run(self.model) as guided:
            guider = guidance.CFGGuider(guided, list(positive), list(negative), cfg)
            return sample_with_sigmas(guider, self.sampler, sliced, noise, latent_image, denoise_mask,
                                      0 if seed is None else seed, step_reporter(callback), self.model.device)


class CFGGuider:
    """ComfyUI's guider object (GUIDER). Usable where Weft takes a GUIDER (SamplerCustomAdvanced)
    and through its own ``sample``. A subclass may override ``predict_noise`` (ComfyUI's hook for
    custom guidance); it is then called for every model evaluation with the prepared conds in
    ``self.conds`` and the run's GuidedModel in ``self.inner_model``."""

    def __init__(self, model_patcher):
        self.model_patcher = model_patcher
        self.model_options = model_patcher.model_options
        self.original_conds: dict[str, Any] = {}
        self.conds: dict[str, Any] = {}
        self.cfg = 1.0
        self.inner_model = None

    @property
    def model(self):  # what Weft's custom sampling reads off a GUIDER
        return self.model_patcher

    def set_conds(self, positive, negative=None):
        self.inner_set_conds({"positive": positive, "negative": negative} if negative is not None
                             else {"positive": positive})

    def inner_set_conds(self, conds: dict):
        self.original_conds = {key: list(value) for key, value in conds.items() if value is not None}

    def set_cfg(self, cfg):
        self.cfg = cfg

    def predict_noise(self, x, timestep, model_options=None, seed=None):
        return sampling_function(self.inner_model, x, timestep, self.conds.get("negative"),
                                 self.conds.get("positive"), self.cfg, model_options=model_options, seed=seed)

    def build(self, guided: guidance.GuidedModel):
        """The Weft guider for one run (see ldm.sampling.custom)."""
        return _PackGuider(self, guided)

    def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False,
               seed=None):
        with guided_run(self.model_patcher) as guided:
            return sample_with_sigmas(self.build(guided), sampler.spec or sampler.name, sigmas, noise, latent_image,
                                      denoise_mask, 0 if seed is None else seed, step_reporter(callback),
                                      self.model_patcher.device)


@dataclasses.dataclass
class _PackGuider:
    """A pack's :class:`CFGGuider` in Weft's guider shape (``model`` + ``prepare``)."""

    pack: CFGGuider
    model: guidance.GuidedModel

    def prepare(self, noise_shape, latent_image=None, denoise_mask=None, seed=0):
        pack = self.pack
        names = list(pack.original_conds)
        sides = guidance.prepare_sides(self.model, [(name, pack.original_conds[name]) for name in names],
                                       noise_shape, latent_image, denoise_mask, seed)
        pack.conds = dict(zip(names, sides))
        pack.inner_model = self.model
        options = self.model.hooks.as_model_options()
        return lambda x, sigma, **extra: pack.predict_noise(x, sigma, model_options=options, seed=seed)
