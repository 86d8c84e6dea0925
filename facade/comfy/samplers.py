"""``comfy.samplers``: sampler and scheduler names, sampler objects, sigmas, CFG guiders.

``KSampler.SAMPLERS`` / ``SCHEDULERS`` are Weft's tables (packs read them inside
``INPUT_TYPES``). A SAMPLER is Weft's :class:`ldm.sampling.custom.SamplerChoice` — by name, or a
pack's own k-diffusion-style function through :func:`KSAMPLER`. ``calc_cond_batch`` and
``sampling_function`` run Weft's guidance, for the cfg hooks and guiders packs write.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import torch

from _weft_absent import Feature, absent_function
from comfy._weft_sampling import guided_run, step_reporter
from comfy.k_diffusion import sampling as k_diffusion_sampling  # noqa: F401  (ComfyUI's name for it)
from ldm.sampling import guidance
from ldm.sampling.custom import SamplerChoice
from ldm.sampling.from_handle import model_sampling_of
from ldm.sampling.hooks import SamplingHooks
from ldm.sampling.sample import ksampler_sigmas, sample_with_sigmas, slice_sigmas
from ldm.sampling.samplers import SAMPLER_NAMES, SAMPLERS as SAMPLER_TABLE, SamplerSpec
from ldm.sampling.schedulers import SCHEDULER_NAMES
from ldm.sampling.schedulers import calculate_sigmas as _weft_calculate_sigmas

#: ComfyUI's SAMPLER_NAMES is its KSAMPLER_NAMES (the k-diffusion functions, ``_gpu`` variants
#: among them) followed by these, which it runs as samplers of their own.
_NOT_KSAMPLERS = ("ddim", "uni_pc", "uni_pc_bh2")
KSAMPLER_NAMES = [name for name in SAMPLER_NAMES if name not in _NOT_KSAMPLERS]
SAMPLER_NAMES = list(SAMPLER_NAMES)
SCHEDULER_NAMES = list(SCHEDULER_NAMES)

SAMPLER_INTERNALS = Feature("ComfyUI's sampler internals (Weft's sampler runs SAMPLER, GUIDER and MODEL "
                            "values itself)", planned=False)


def calculate_sigmas(model_sampling, scheduler_name: str, steps: int) -> torch.Tensor:
    return _weft_calculate_sigmas(model_sampling, scheduler_name, steps)


def sampler_object(name: str) -> SamplerChoice:
    return SamplerChoice(name)


class Sampler:
    """ComfyUI's base class of SAMPLER objects. Weft's sampler runs a SAMPLER itself (its ``name``
    or ``spec``), so ``sample`` here is only what a pack calls or wraps; ``max_denoise`` is
    ComfyUI's test for a schedule that starts from pure noise."""

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        raise SAMPLER_INTERNALS.error(f"{__name__}.Sampler.sample")

    def max_denoise(self, model_wrap, sigmas) -> bool:
        inner = getattr(model_wrap, "inner_model", model_wrap)
        top, first = float(inner.model_sampling.sigma_max), float(sigmas[0])
        return math.isclose(top, first, rel_tol=1e-05) or first > top


class KSAMPLER(Sampler, SamplerChoice):
    """A SAMPLER from a pack's k-diffusion-style function
    ``fn(model, x, sigmas, extra_args=, callback=, disable=, **extra_options)``.

    It *is* a Weft :class:`SamplerChoice` (SamplerCustom and guiders take it as is); Weft's sampler
    calls ``self.sampler_function`` with ``self.extra_options`` when it runs, so a pack that swaps
    either on the instance is heard. ``inpaint_options={"random": True}`` gives the unmasked area
    fresh noise seeded ``seed + 1`` (ComfyUI's option). ``KSAMPLER.sample`` (the method ComfyUI's
    sampler calls, and packs wrap at import) is never called by Weft's sampler: replacing it
    changes nothing there; called directly, it runs the function over ``model_wrap``.
    """

    def __init__(self, sampler_function: Callable, extra_options: dict | None = None,
                 inpaint_options: dict | None = None) -> None:
        self.sampler_function = sampler_function
        self.extra_options = dict(extra_options or {})
        self.inpaint_options = dict(inpaint_options or {})
        spec = SamplerSpec(self._run, random_inpaint_noise=bool(self.inpaint_options.get("random", False)))
        object.__setattr__(self, "name", getattr(sampler_function, "__name__", "custom"))
        object.__setattr__(self, "spec", spec)

    def _run(self, model, x, sigmas, extra_args=None, callback=None, noise_sampler=None):
        options = dict(self.extra_options)
        if noise_sampler is not None:
            options.setdefault("noise_sampler", noise_sampler)
        return self.sampler_function(model, x, sigmas, extra_args=extra_args, callback=callback, disable=True,
                                     **options)

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        """Run the function over ComfyUI-style ``model_wrap`` (its ``inner_model.model_sampling``
        scales the noise), with noise-mask inpainting through :class:`KSamplerX0Inpaint`."""
        sampling = getattr(model_wrap, "inner_model", model_wrap).model_sampling
        extra_args = dict(extra_args or {})
        extra_args["denoise_mask"] = denoise_mask
        if latent_image is None:
            latent_image = torch.zeros_like(noise)
        model_k = KSamplerX0Inpaint(model_wrap, sigmas)
        model_k.latent_image = latent_image
        model_k.noise = noise
        if self.inpaint_options.get("random", False):
            generator = torch.Generator("cpu").manual_seed(extra_args.get("seed", 41) + 1)
            model_k.noise = torch.randn(noise.shape, generator=generator).to(noise)
        x = sampling.noise_scaling(sigmas[0], noise, latent_image, self.max_denoise(model_wrap, sigmas))
        total = len(sigmas) - 1
        k_callback = None if callback is None else (
            lambda info: callback(info["i"], info["denoised"], info["x"], total))
        samples = self.sampler_function(model_k, x, sigmas, extra_args=extra_args, callback=k_callback,
                                        disable=disable_pbar, **self.extra_options)
        return sampling.inverse_noise_scaling(sigmas[-1], samples)


class KSamplerX0Inpaint:
    """ComfyUI's noise-mask inpainting wrapper around a guided model, as Weft's
    :class:`ldm.sampling.guidance.InpaintDenoiser`: outside ``denoise_mask`` (0) the state is the
    original latent noised to the current sigma and the prediction the original latent.
    ``latent_image`` and ``noise`` are set on the object after construction, as ComfyUI does; a
    ``denoise_mask_function`` in ``model_options`` edits the mask first."""

    def __init__(self, model, sigmas) -> None:
        self.inner_model = model
        self.sigmas = sigmas
        self.latent_image: torch.Tensor | None = None
        self.noise: torch.Tensor | None = None

    def __call__(self, x, sigma, denoise_mask=None, model_options=None, seed=None):
        model_options = {} if model_options is None else model_options
        if denoise_mask is not None and "denoise_mask_function" in model_options:
            denoise_mask = model_options["denoise_mask_function"](
                sigma, denoise_mask, extra_options={"model": self.inner_model, "sigmas": self.sigmas})

        def inner(x_in, sigma_in):
            return self.inner_model(x_in, sigma_in, model_options=model_options, seed=seed)

        if denoise_mask is None:
            return inner(x, sigma)
        return guidance.InpaintDenoiser(inner, self.latent_image, self.noise, denoise_mask)(x, sigma)


#: ComfyUI's sampler module functions that packs wrap at import (smZNodes, TiledDiffusion).
#: Weft's sampler has no such steps and never calls them; calling one raises.
sample = absent_function(SAMPLER_INTERNALS, __name__, "sample")
get_area_and_mult = absent_function(SAMPLER_INTERNALS, __name__, "get_area_and_mult")
can_concat_cond = absent_function(SAMPLER_INTERNALS, __name__, "can_concat_cond")
cond_cat = absent_function(SAMPLER_INTERNALS, __name__, "cond_cat")
pre_run_control = absent_function(SAMPLER_INTERNALS, __name__, "pre_run_control")
wrap_model = absent_function(SAMPLER_INTERNALS, __name__, "wrap_model")


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
    # The guider's call around this one already ran the predict_noise wrappers (as in ComfyUI).
    return denoiser.predict(x, timestep)


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
        with guided_run(self.model, tuple(latent_image.shape)) as guided:
            guider = guidance.CFGGuider(guided, list(positive), list(negative), cfg)
            return sample_with_sigmas(guider, self.sampler, sliced, noise, latent_image, denoise_mask,
                                      0 if seed is None else seed, step_reporter(callback), self.model.device)


class CFGGuider:
    """ComfyUI's guider object (GUIDER). Usable where Weft takes a GUIDER (SamplerCustomAdvanced)
    and through its own ``sample``. A subclass may override ``predict_noise`` (ComfyUI's hook for
    custom guidance); it is then called for every model evaluation, inside the MODEL's predict_noise
    wrappers, with the prepared conds in ``self.conds`` and the run's GuidedModel in ``self.inner_model``."""

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
        with guided_run(self.model_patcher, tuple(latent_image.shape)) as guided:
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
        return _PackDenoiser(self.model, pack, self.model.hooks.as_model_options(), seed)


@dataclasses.dataclass
class _PackDenoiser(guidance.WrappedDenoiser):
    """A pack guider's ``predict_noise`` for one run, inside the MODEL's predict_noise wrappers
    (ComfyUI's ``outer_predict_noise``)."""

    model: guidance.GuidedModel
    pack: CFGGuider
    options: Any
    seed: int

    def predict(self, x, sigma, **extra_args):
        return self.pack.predict_noise(x, sigma, model_options=self.options, seed=self.seed)
