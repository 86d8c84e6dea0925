"""KSampler and KSamplerAdvanced, and the run every sampling node shares.

Names, inputs (defaults, ranges, the sampler and scheduler lists), outputs and categories are
ComfyUI's (``nodes.py``), so API prompts written for ComfyUI run unchanged; the same seed starts
from the same noise. The algorithm is ``ldm.sampling``'s; this module only lends the model for the
run (:func:`sampling_run`) and reports each step (:func:`step_callback`): interrupt check,
progress, live preview.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from graph.context import check_interrupted, report_progress
from ldm.previews import Previewer, make_previewer
from ldm.sampling.from_handle import fix_empty_latent_channels, guided_model
from ldm.sampling.guidance import GuidedModel
from ldm.sampling.sample import common_ksampler
from ldm.sampling.samplers import SAMPLER_NAMES
from ldm.sampling.schedulers import SCHEDULER_NAMES
from nodes.services import preview_method, services

MAX_SEED = 0xFFFFFFFFFFFFFFFF


def seed_input(tooltip: str | None = None) -> tuple:
    options = {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True}
    if tooltip:
        options["tooltip"] = tooltip
    return ("INT", options)


def cfg_input(tooltip: str | None = None) -> tuple:
    options = {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}
    if tooltip:
        options["tooltip"] = tooltip
    return ("FLOAT", options)


def steps_input(tooltip: str | None = None) -> tuple:
    options = {"default": 20, "min": 1, "max": 10000}
    if tooltip:
        options["tooltip"] = tooltip
    return ("INT", options)


def previewer_for(model) -> Previewer | None:
    """The live previewer the server's options ask for, for this model's latent format."""
    found = services()
    method, folders = preview_method(), found.folders
    candidates = []
    if method == "taesd":
        candidates = [(name, folders.model_path("vae_approx", name)) for name in folders.list_models("vae_approx")]
    return make_previewer(method, model.latent_format, candidates, found.options.preview_size, model.device)


def step_callback(model) -> Callable[[dict[str, Any]], None]:
    """What the sampler calls after each step: stop if interrupted, report progress and preview."""
    previewer = previewer_for(model)

    def on_step(info: dict[str, Any]) -> None:
        check_interrupted()
        preview = previewer(info["denoised"]) if previewer is not None else None
        total = info["total_steps"]
        # dpm_adaptive picks its own step count; the bar never passes its end.
        report_progress(min(info["i"] + 1, total), total, preview)

    return on_step


@contextlib.contextmanager
def sampling_run(model, latent_shape) -> Iterator[GuidedModel]:
    """The model's :class:`GuidedModel` for one sampling run on latents of ``latent_shape``
    ``[B, C, h, w]``; the engine lends the UNet (LoRA patches applied, room kept for the
    activations, refused when they cannot fit) for the length of the block and takes it back."""
    with services().engine.use_unet(model, latent_shape=tuple(latent_shape)) as unet:
        yield guided_model(model, unet)


def to_intermediate(latent: dict) -> dict:
    """A sampled LATENT moved to where results between nodes live (the CPU unless --gpu-only)."""
    device = services().engine.intermediate_device
    if latent["samples"].device == device:
        return latent
    return dict(latent, samples=latent["samples"].to(device))


def with_model_channels(latent: dict, model) -> dict:
    """The LATENT with an empty latent's channels and size fitted to the model (ComfyUI does the same)."""
    latent_format = model.latent_format
    samples = fix_empty_latent_channels(latent["samples"], latent_format.channels,
                                        latent.get("downscale_ratio_spacial"), latent_format.spatial_downscale_ratio)
    return latent if samples is latent["samples"] else dict(latent, samples=samples)


def ksample(model, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str, positive, negative,
            latent: dict, **options) -> dict:
    """``common_ksampler`` for a MODEL handle, inside a sampling run with step reports."""
    latent = with_model_channels(latent, model)
    callback = step_callback(model)
    with sampling_run(model, latent["samples"].shape) as guided:
        out = common_ksampler(guided, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent,
                              callback=callback, device=model.device, **options)
    return to_intermediate(out)


class KSampler:
    DESCRIPTION = "Uses the provided model, positive and negative conditioning to denoise the latent image."
    CATEGORY = "model/sampling"
    FUNCTION = "sample"
    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The denoised latent.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model used for denoising the input latent."}),
            "seed": seed_input("The random seed used for creating the noise."),
            "steps": steps_input("The number of steps used in the denoising process."),
            "cfg": cfg_input("The Classifier-Free Guidance scale balances creativity and adherence to the "
                             "prompt. Higher values result in images more closely matching the prompt however "
                             "too high values will negatively impact quality."),
            "sampler_name": (list(SAMPLER_NAMES), {
                "tooltip": "The algorithm used when sampling, this can affect the quality, speed, and style "
                           "of the generated output."}),
            "scheduler": (list(SCHEDULER_NAMES), {
                "tooltip": "The scheduler controls how noise is gradually removed to form the image."}),
            "positive": ("CONDITIONING", {
                "tooltip": "The conditioning describing the attributes you want to include in the image."}),
            "negative": ("CONDITIONING", {
                "tooltip": "The conditioning describing the attributes you want to exclude from the image."}),
            "latent_image": ("LATENT", {"tooltip": "The latent image to denoise."}),
            "denoise": ("FLOAT", {
                "default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                "tooltip": "The amount of denoising applied, lower values will maintain the structure of the "
                           "initial image allowing for image to image sampling."}),
        }}

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
               denoise=1.0):
        return (ksample(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                        denoise=denoise),)


class KSamplerAdvanced:
    CATEGORY = "model/sampling"
    FUNCTION = "sample"
    RETURN_TYPES = ("LATENT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL",),
            "add_noise": (["enable", "disable"], {"advanced": True}),
            "noise_seed": seed_input(),
            "steps": steps_input(),
            "cfg": cfg_input(),
            "sampler_name": (list(SAMPLER_NAMES),),
            "scheduler": (list(SCHEDULER_NAMES),),
            "positive": ("CONDITIONING",),
            "negative": ("CONDITIONING",),
            "latent_image": ("LATENT",),
            "start_at_step": ("INT", {"default": 0, "min": 0, "max": 10000, "advanced": True}),
            "end_at_step": ("INT", {"default": 10000, "min": 0, "max": 10000, "advanced": True}),
            "return_with_leftover_noise": (["disable", "enable"], {"advanced": True}),
        }}

    def sample(self, model, add_noise, noise_seed, steps, cfg, sampler_name, scheduler, positive, negative,
               latent_image, start_at_step, end_at_step, return_with_leftover_noise, denoise=1.0):
        return (ksample(model, noise_seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                        denoise=denoise, disable_noise=(add_noise == "disable"), start_step=start_at_step,
                        last_step=end_at_step, force_full_denoise=(return_with_leftover_noise != "enable")),)


NODE_CLASS_MAPPINGS = {
    "KSampler": KSampler,
    "KSamplerAdvanced": KSamplerAdvanced,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "KSampler": "KSampler",
    "KSamplerAdvanced": "KSampler (Advanced)",
}
