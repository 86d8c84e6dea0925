"""The two things measured: Weft through its own public path, and diffusers through its own.

Each side loads the same single-file checkpoint and offers the same operations: one UNet call at
CFG batch (2), a whole text-to-image run (text encoding, N Euler steps, VAE decode) and a VAE
decode. Prompt tokens come from Weft's tokenizer for both sides (diffusers gets the ids: no
tokenizer files can be downloaded here), so both encode identical inputs.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace

import torch

from bench.models import Family, diffusers_models
from ldm.devices import ComputeSettings
from ldm.engine import Engine
from ldm.loading.checkpoint import load_state_dict
from ldm.memory import MemoryOptions, VramMode
from ldm.model import load_checkpoint
from ldm.networks.adm import sdxl_label
from ldm.sampling.from_handle import guided_model
from ldm.sampling.sample import common_ksampler

PROMPT = "a photograph of an astronaut riding a horse on the moon, detailed, 35mm"
NEGATIVE = "blurry, low quality"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timed:
    seconds: float  # wall clock
    value: object = None
    cpu_seconds: float = 0.0  # this process's CPU time (all threads): the work, whatever the machine's load


def timed(device: torch.device, fn) -> Timed:
    sync(device)
    started, cpu = time.perf_counter(), time.process_time()
    value = fn()
    sync(device)
    return Timed(time.perf_counter() - started, value, time.process_time() - cpu)


def step_inputs(family: Family, latent: int, device: torch.device, seed: int = 0):
    """CFG-batch UNet inputs: x [2, 4, h, w], t [2], context [2, 77, D], SDXL pooled + sizes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, latent, latent, generator=g)
    t = torch.tensor([981.0, 981.0])
    context = torch.randn(2, 77, family.unet.context_dim, generator=g)
    pooled = torch.randn(2, 1280, generator=g) if family.xl else None
    return x, t, context, pooled


class WeftSide:
    name = "weft"

    def __init__(self, family: Family, path, compute: ComputeSettings, memory: MemoryOptions | None = None,
                 compile_mode: str | None = None) -> None:
        self.family = family
        self.path = path
        self.engine = Engine(compute, memory, compile_mode=compile_mode)
        self.device = compute.device

    @property
    def compute(self) -> ComputeSettings:
        return self.engine.compute

    def load(self) -> float:
        """Seconds from the file to models ready to compute (weights in the compute dtype)."""
        def load_and_prepare():
            self.model, self.clip, self.vae = load_checkpoint(self.path, compute=self.compute)
            with self.engine.use_unet(self.model), self.engine.use_vae(self.vae), self.engine.use_clip(self.clip):
                pass
        return timed(self.device, load_and_prepare).seconds

    def set_dtype(self, dtype: torch.dtype) -> None:
        """Compute the UNet and VAE in ``dtype`` from now on (the manager re-prepares the weights)."""
        self.engine.unload_all()
        self.engine.compute = replace(self.compute, dtype=dtype, vae_dtype=dtype)
        self.vae.dtype = dtype

    def set_packing(self, on: bool) -> None:
        """oneDNN-packed conv weights on (the default on the CPU) or off (plain ``F.conv2d``)."""
        self.engine.unload_all()
        self.engine.compute = replace(self.compute, pack_weights=on)

    def _label(self, pooled, size: int):
        return sdxl_label(pooled, width=size, height=size) if pooled is not None else None

    def unet_step(self, latent: int) -> Timed:
        x, t, context, pooled = step_inputs(self.family, latent, self.device)
        y = self._label(pooled, latent * 8)
        with self.engine.use_unet(self.model, latent_shape=(1, 4, latent, latent)) as unet:
            x = x.to(self.device)
            return timed(self.device, lambda: unet(x, t, context=context, y=y))

    def vae_decode(self, latent: int) -> Timed:
        z = torch.randn(1, 4, latent, latent, generator=torch.Generator().manual_seed(1))
        with self.engine.use_vae(self.vae, inference_bytes=self.vae.decode_memory_bytes(z.shape)):
            return timed(self.device, lambda: self.vae.decode(z))

    def text_to_image(self, size: int, steps: int, seed: int = 0) -> Timed:
        """Prompt to IMAGE: encode (cache cleared first), Euler with the normal schedule, decode."""
        self.engine.text_cache.clear()
        latent = size // 8

        def run():
            add = {"width": size, "height": size} if self.family.xl else None
            positive = self.engine.encode_tokens(self.clip, self.clip.tokenize(PROMPT), add)
            negative = self.engine.encode_tokens(self.clip, self.clip.tokenize(NEGATIVE), add)
            empty = {"samples": torch.zeros(1, 4, latent, latent)}
            with self.engine.use_unet(self.model, latent_shape=(1, 4, latent, latent)) as unet:
                guided = guided_model(self.model, unet)  # the public path KSampler takes
                out = common_ksampler(guided, seed, steps, 7.5, "euler", "normal", positive, negative, empty,
                                      device=self.device)
            samples = out["samples"].to(self.engine.intermediate_device)
            with self.engine.use_vae(self.vae, inference_bytes=self.vae.decode_memory_bytes(samples.shape)):
                return self.vae.decode(samples)
        result = timed(self.device, run)
        self.last_image = result.value
        return result

    def release(self) -> None:
        self.engine.unload_all()


class DiffusersSide:
    name = "diffusers"

    def __init__(self, family: Family, path, device: torch.device, dtype: torch.dtype,
                 channels_last: bool = False) -> None:
        self.family = family
        self.path = path
        self.device = torch.device(device)
        self.dtype = dtype
        self.channels_last = channels_last

    def load(self) -> float:
        def build():
            state, _ = load_state_dict(self.path)
            self.models = diffusers_models(state, self.family, self.dtype)
            for model in self.models.values():
                model.to(self.device)
            if self.channels_last:
                self.models["unet"].to(memory_format=torch.channels_last)
                self.models["vae"].to(memory_format=torch.channels_last)
        return timed(self.device, build).seconds

    def set_dtype(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        for model in self.models.values():
            model.to(dtype)

    def set_channels_last(self, on: bool) -> None:
        self.channels_last = on
        layout = torch.channels_last if on else torch.contiguous_format
        self.models["unet"].to(memory_format=layout)
        self.models["vae"].to(memory_format=layout)

    def _input(self, x):
        x = x.to(self.device, self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def unet_step(self, latent: int) -> Timed:
        x, t, context, pooled = step_inputs(self.family, latent, self.device)
        x, context, t = self._input(x), context.to(self.device, self.dtype), t.to(self.device)
        kwargs = {}
        if self.family.xl:
            size = float(latent * 8)
            kwargs["added_cond_kwargs"] = {
                "text_embeds": pooled.to(self.device, self.dtype),
                "time_ids": torch.tensor([[size, size, 0.0, 0.0, size, size]] * 2, device=self.device,
                                         dtype=self.dtype)}
        unet = self.models["unet"]
        with torch.inference_mode():
            return timed(self.device, lambda: unet(x, t, encoder_hidden_states=context, **kwargs).sample)

    def vae_decode(self, latent: int) -> Timed:
        z = self._input(torch.randn(1, 4, latent, latent, generator=torch.Generator().manual_seed(1)))
        vae = self.models["vae"]
        with torch.inference_mode():
            return timed(self.device, lambda: vae.decode(z).sample.float().cpu())

    def _pipeline(self):
        from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

        scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                           num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading")
        m = self.models
        if self.family.xl:
            return StableDiffusionXLPipeline(vae=m["vae"], text_encoder=m["text_encoder"],
                                             text_encoder_2=m["text_encoder_2"], tokenizer=None,
                                             tokenizer_2=None, unet=m["unet"], scheduler=scheduler)
        return StableDiffusionPipeline(vae=m["vae"], text_encoder=m["text_encoder"], tokenizer=None,
                                       unet=m["unet"], scheduler=scheduler, safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)

    def _encode(self, clip_tokens) -> dict:
        """The pipeline's own prompt encoding, fed Weft's token ids (same tokens both sides)."""
        m = self.models
        ids_l = torch.tensor([[t for t, *_ in chunk] for chunk in clip_tokens["l"]][:1], device=self.device)
        if not self.family.xl:
            return {"embeds": m["text_encoder"](ids_l)[0]}
        ids_g = torch.tensor([[t for t, *_ in chunk] for chunk in clip_tokens["g"]][:1], device=self.device)
        hidden_l = m["text_encoder"](ids_l, output_hidden_states=True).hidden_states[-2]
        out_g = m["text_encoder_2"](ids_g, output_hidden_states=True)
        return {"embeds": torch.cat([hidden_l, out_g.hidden_states[-2]], dim=-1), "pooled": out_g.text_embeds}

    def text_to_image(self, size: int, steps: int, tokenize, seed: int = 0) -> Timed:
        pipe = self._pipeline()
        pipe.set_progress_bar_config(disable=True)

        def run():
            with torch.inference_mode():
                positive, negative = self._encode(tokenize(PROMPT)), self._encode(tokenize(NEGATIVE))
                kwargs = {"prompt_embeds": positive["embeds"], "negative_prompt_embeds": negative["embeds"]}
                if self.family.xl:
                    kwargs.update(pooled_prompt_embeds=positive["pooled"],
                                  negative_pooled_prompt_embeds=negative["pooled"])
                generator = torch.Generator("cpu").manual_seed(seed)
                return pipe(num_inference_steps=steps, guidance_scale=7.5, height=size, width=size,
                            generator=generator, output_type="pt", **kwargs).images.float().cpu()
        return timed(self.device, run)

    def release(self) -> None:
        self.models = {}


@contextlib.contextmanager
def threads(count: int | None):
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def weft_memory_options(mode: str, device: torch.device) -> MemoryOptions:
    if device.type == "cpu":
        return MemoryOptions(mode=VramMode.CPU)
    return MemoryOptions(mode=VramMode(mode))
