"""Stage 2: the UNet in the frozen autoencoder's latent space, cross-attending to a text encoder
trained jointly with it (Rombach et al. 2022, sec. 3.3: "LDM-KL" with a transformer tau_theta).

The autoencoder is frozen, so every training image is encoded once (:func:`encode_dataset`)
and the steps run on latents. Per step: a batch of latents scaled by the SD latent factor,
timesteps uniform over the 1000 DDPM steps of the SD schedule, ``x_t = sqrt(a_t) x_0 +
sqrt(1 - a_t) eps`` (eps optionally with low-frequency components); captions replaced by the
empty one ``caption_dropout`` of the time (the unconditional model classifier-free guidance
needs, Ho & Salimans 2022); loss = min-SNR-weighted MSE between the predicted and the true eps
(or v, as an option); AdamW with warm-up and cosine decay; EMA weights.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ldm.data.captioned import CaptionedImages, image_batch
from ldm.latent_formats import SD15
from ldm.networks.autoencoder import AutoencoderKL
from ldm.networks.unet import UNetModel
from ldm.sampling.from_handle import guided_model
from ldm.sampling.model_sampling import SD_SCHEDULE, alphas_cumprod
from ldm.text.clip_model import ClipTextModel
from ldm.training.config import Architecture, DiffusionTraining, to_json
from ldm.training.ema import EMA
from ldm.training.generate import text_to_images, training_handle
from ldm.training.init import new_unet
from ldm.training.loop import (autocast, compute_dtype, flushing_denormals, set_learning_rate, step_generator,
                               warmup_cosine)
from ldm.training.previews import image_grid
from ldm.training.progress import Progress, ProgressCallback, no_progress
from ldm.training.state import restore_parts, save_parts
from ldm.training.text import caption_ids, clip_handle, encode_ids, new_text_encoder


@dataclass(frozen=True)
class TrainingLatents:
    """A dataset encoded once: posterior means ``[N, C, h, w]`` (raw, unscaled), caption ids ``[N, 77]``."""

    latents: torch.Tensor
    ids: torch.Tensor

    def __len__(self) -> int:
        return self.latents.shape[0]


@dataclass
class DiffusionResult:
    unet: UNetModel  # EMA weights
    text: ClipTextModel  # EMA weights
    steps: int


@torch.no_grad()
def encode_dataset(vae: AutoencoderKL, dataset: CaptionedImages, text_width: int, *, count: int | None = None,
                   batch_size: int = 64, precision: str = "auto",
                   progress: ProgressCallback = no_progress) -> TrainingLatents:
    """Every image through the frozen encoder (posterior mean), every caption through the tokenizer."""
    count = len(dataset) if count is None else min(count, len(dataset))
    dtype = compute_dtype(precision)
    latents = []
    started = time.monotonic()
    for start in range(0, count, batch_size):
        indices = range(start, min(start + batch_size, count))
        with autocast(dtype):
            latents.append(vae.encode(image_batch(dataset, indices))[0].float())
        done = indices[-1] + 1
        progress(Progress("latents", done, count, {}, time.monotonic() - started, step_in_run=done))
    ids = caption_ids([dataset.caption(i) for i in range(count)], text_width)
    return TrainingLatents(torch.cat(latents), ids)


def min_snr_weights(alpha_bar: torch.Tensor, gamma: float, prediction: str = "eps",
                    x0_floor: float = 0.0) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023): min(SNR, gamma) / SNR for eps-prediction,
    min(SNR, gamma) / (SNR + 1) for v-prediction; ones when gamma <= 0 (and no floor).

    In terms of the clean-image error, an eps loss weighted w is the x0 loss weighted w * SNR, so
    min-SNR gives the x0 error the weight min(SNR, gamma): about 0.005 at t = 999, where the
    layout is decided. ``x0_floor`` raises that weight to at least the floor (the eps weight
    becomes floor / SNR there), so the network is made to place things from the caption.
    """
    if gamma <= 0 and x0_floor <= 0:
        return torch.ones_like(alpha_bar)
    snr = alpha_bar / (1.0 - alpha_bar)
    x0_weight = (snr.clamp(max=gamma) if gamma > 0 else snr).clamp(min=x0_floor)
    return x0_weight / (snr + 1.0 if prediction == "v" else snr)


def prediction_target(batch: "Batch", alpha_bar: torch.Tensor, prediction: str) -> torch.Tensor:
    """What the UNet learns to output: the noise (eps), or v = sqrt(a) eps - sqrt(1 - a) x0.

    Why v is offered: with eps, the clean image at high noise is recovered as
    ``(x_t - sqrt(1 - a) eps) / sqrt(a)``, which multiplies the network's error by up to 14 on
    the SD schedule, and the layout is decided there; at high noise v is about -x0. On the
    starter data it nevertheless did worse than eps (docs/training.md), so eps stays the default.
    """
    if prediction == "eps":
        return batch.noise
    if prediction == "v":
        return alpha_bar.sqrt() * batch.noise - (1.0 - alpha_bar).sqrt() * batch.x0
    raise ValueError(f"prediction must be 'eps' or 'v', got {prediction!r}")


@dataclass(frozen=True)
class Batch:
    x0: torch.Tensor  # [B, C, h, w] latents in the model's space (scaled)
    ids: torch.Tensor  # [B, 77] caption token ids (the empty caption where dropped)
    timesteps: torch.Tensor  # [B] int64 in 0..999
    noise: torch.Tensor  # [B, C, h, w]
    dropped: torch.Tensor  # [B] bool


#: Grid sizes of the low-frequency noise components (1 x 1 is the classic "offset noise").
LOW_FREQUENCY_GRIDS = (1, 2, 4)


def low_frequency_noise(shape: tuple[int, ...], weight: float, generator: torch.Generator) -> torch.Tensor:
    """Noise on coarse grids (:data:`LOW_FREQUENCY_GRIDS`), upsampled bilinearly to ``shape``
    ``[B, C, h, w]``, each grid's noise scaled by ``weight``.

    Why: the SD schedule never destroys the signal completely (at t = 999 about 7 % of it is
    left), and an image's coarse structure — its mean colour, where the big blob is — is an
    average over many latent cells, so it survives far more noise than single cells do. A model
    trained on iid noise learns to read the background and layout off its noisy input instead of
    from the text, and at sampling time (pure iid noise) it has nothing to read. Adding noise to
    those coarse components while training (offset noise, Guttenberg 2023; multi-resolution
    noise, Whitaker 2023) hides them, so the text has to decide them.
    """
    batch, channels, height, width = shape
    total = torch.zeros(shape)
    for grid in LOW_FREQUENCY_GRIDS:
        coarse = torch.randn((batch, channels, grid, grid), generator=generator)
        total += weight * F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return total


def draw_batch(data: TrainingLatents, batch_size: int, caption_dropout: float, empty_ids: torch.Tensor,
               generator: torch.Generator, timesteps: int = SD_SCHEDULE.timesteps,
               low_frequency: float = 0.0, high_noise_fraction: float = 0.0,
               high_noise_from: int = 900) -> Batch:
    """Latents, captions (dropped with probability ``caption_dropout``), timesteps and noise
    (with :func:`low_frequency_noise` of weight ``low_frequency`` added, the sum rescaled to
    about unit variance). The first ``high_noise_fraction`` of the batch takes its timesteps from
    ``high_noise_from`` .. the last instead of the whole schedule."""
    indices = torch.randint(len(data), (batch_size,), generator=generator)
    steps = torch.randint(timesteps, (batch_size,), generator=generator)
    noise = torch.randn((batch_size, *data.latents.shape[1:]), generator=generator)
    dropped = torch.rand(batch_size, generator=generator) < caption_dropout
    if low_frequency > 0:
        noise = noise + low_frequency_noise(tuple(noise.shape), low_frequency, generator)
        noise = noise / (1.0 + len(LOW_FREQUENCY_GRIDS) * low_frequency ** 2) ** 0.5
    high = round(batch_size * high_noise_fraction)
    if high:  # drawn last, so a batch without them is what it always was
        steps[:high] = torch.randint(high_noise_from, timesteps, (high,), generator=generator)
    ids = torch.where(dropped[:, None], empty_ids[None], data.ids[indices])
    return Batch(SD15.process_in(data.latents[indices]), ids, steps, noise, dropped)


def noise_prediction_loss(unet: UNetModel, text: ClipTextModel, batch: Batch, alpha_bars: torch.Tensor,
                          min_snr_gamma: float = 0.0, dtype: torch.dtype = torch.float32,
                          prediction: str = "eps", x0_floor: float = 0.0):
    """``(weighted loss, per-item MSE [B])`` of the eps or v prediction on ``x_t`` (DDPM forward
    process)."""
    alpha_bar = alpha_bars[batch.timesteps].view(-1, 1, 1, 1)
    noisy = alpha_bar.sqrt() * batch.x0 + (1.0 - alpha_bar).sqrt() * batch.noise
    with autocast(dtype):
        predicted = unet(noisy, batch.timesteps, context=encode_ids(text, batch.ids)).float()
    target = prediction_target(batch, alpha_bar, prediction)
    per_item = F.mse_loss(predicted, target, reduction="none").flatten(1).mean(1)
    weights = min_snr_weights(alpha_bar.flatten(), min_snr_gamma, prediction, x0_floor)
    return (per_item * weights).mean(), per_item


@dataclass(frozen=True)
class PreviewSpec:
    """What to sample now and then while training: prompts, and how to decode raw latents."""

    prompts: tuple[str, ...]
    decode: Callable[[torch.Tensor], torch.Tensor]  # raw latents -> [N, 3, H, W] in 0..1
    cfg: float = 5.0


def _preview(unet: UNetModel, text: ClipTextModel, spec: PreviewSpec, latent_shape, steps: int,
             dtype: torch.dtype, prediction: str = "eps"):
    model = guided_model(training_handle(unet, dtype, prediction), unet)
    with autocast(dtype):
        images = text_to_images(model, clip_handle(text), spec.decode, list(spec.prompts), steps=steps,
                                cfg=spec.cfg, latent_shape=latent_shape)
    return image_grid(images.float(), columns=len(spec.prompts))


def train_diffusion(data: TrainingLatents, architecture: Architecture, config: DiffusionTraining,
                    state_path: str | os.PathLike | None = None, progress: ProgressCallback = no_progress,
                    preview: PreviewSpec | None = None, start_from: DiffusionResult | None = None,
                    stage: str = "diffusion") -> DiffusionResult:
    """Train from scratch, or on from ``start_from``'s networks (a second phase), or resume from
    ``state_path``; returns the EMA networks."""
    config_json = to_json(architecture.unet, architecture.text, config)
    dtype = compute_dtype(config.precision)
    unet = new_unet(architecture.unet, config.seed)
    text = new_text_encoder(architecture.text, config.seed + 1)
    if start_from is not None:
        unet.load_state_dict(start_from.unet.state_dict())
        text.load_state_dict(start_from.text.state_dict())
    parameters = list(unet.parameters()) + list(text.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.0)
    ema_unet, ema_text = EMA(unet, config.ema_decay), EMA(text, config.ema_decay)
    parts = {"unet": unet, "text": text, "ema_unet": ema_unet, "ema_text": ema_text, "optimizer": optimizer}
    step = restore_parts(state_path, config_json, parts) if state_path else 0

    def save() -> None:
        if state_path:
            save_parts(state_path, config_json, step, parts)

    alpha_bars = alphas_cumprod(SD_SCHEDULE).float()
    empty_ids = caption_ids([""], architecture.text.width)[0]
    latent_shape = tuple(data.latents.shape[1:])
    started, first_step = time.monotonic(), step
    with flushing_denormals():
        while step < config.steps:
            batch = draw_batch(data, config.batch_size, config.caption_dropout, empty_ids,
                               step_generator(config.seed, step), len(alpha_bars), config.low_frequency_noise,
                               config.high_noise_fraction, config.high_noise_from)
            set_learning_rate(optimizer, warmup_cosine(step, config.steps, config.learning_rate,
                                                       config.final_learning_rate, config.warmup_steps))
            loss, per_item = noise_prediction_loss(unet, text, batch, alpha_bars, config.min_snr_gamma, dtype,
                                                   config.prediction, config.min_x0_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
            optimizer.step()
            ema_unet.update(unet, step)
            ema_text.update(text, step)

            step += 1
            if step % config.save_every == 0 or step == config.steps:
                save()
            image = None
            if preview is not None and (step % config.preview_every == 0 or step == config.steps):
                image = _preview(ema_unet.model, ema_text.model, preview, latent_shape, config.preview_steps,
                                 dtype, config.prediction)
            losses = {"loss": loss.item(), "mse": per_item.mean().item()}
            progress(Progress(stage, step, config.steps, losses, time.monotonic() - started, image,
                              step_in_run=step - first_step))
    return DiffusionResult(ema_unet.model, ema_text.model, step)
