"""Sampling objects for a MODEL handle (``ldm.model.ModelHandle``) and the UNet the engine lends.

The node layer holds a handle and, for the length of a sampling run, the UNet that
``engine.use_unet(handle)`` yields (LoRA patches applied, resident where it runs). From those
two, :func:`guided_model` builds what :mod:`ldm.sampling.sample` samples with:

- the model sampling: a ``ModelSamplingDiscrete`` override in ``handle.hooks.model_sampling``
  or the family's own (eps / v, the x4 upscaler's schedule);
- the family's conditioning builder (SDXL ``y``, inpainting / x4 ``c_concat``);
- the latent format's ``process_in`` / ``process_out``;
- the UNet called in the handle's compute dtype and device (:class:`ComputeCast`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ldm.control.apply import lend_in_place
from ldm.networks.adm import SIZE_EMBED_DIM
from ldm.sampling.denoiser import UNetDenoiser
from ldm.sampling.guidance import GuidedModel
from ldm.sampling.model_conds import model_conds_for_family
from ldm.sampling.model_sampling import ModelSampling, model_sampling_for_family

def model_sampling_of(handle: Any) -> ModelSampling:
    """The handle's sampling: its override if a patch node set one, else its family's."""
    override = handle.hooks.model_sampling
    if override is not None:
        return override
    # Handles assembled by hand (test doubles, packs' stand-ins) may carry no schedule of their own.
    return model_sampling_for_family(handle.family, handle.prediction, schedule=getattr(handle, "schedule", None))


@dataclass(frozen=True)
class ComputeCast:
    """A UNet whose latent input is cast to the compute dtype and device first.

    The CompVis UNet casts ``context`` and ``y`` to its input's dtype itself; sampling state stays
    float32 (``UNetDenoiser`` casts the output back), so reduced-precision models still sample in
    float32 as ComfyUI does.
    """

    unet: Any
    dtype: torch.dtype
    device: torch.device

    def __call__(self, x: Tensor, timesteps: Tensor, **kwargs: Any) -> Tensor:
        return self.unet(x.to(device=self.device, dtype=self.dtype), timesteps.to(self.device), **kwargs)


def _size_embed_dim(handle: Any) -> int:
    """The width of SDXL's size embeddings in ``handle``'s UNet; handles assembled by hand (test
    doubles, packs' stand-ins) may carry no UNet config and get the published width."""
    config = getattr(handle, "config", None)
    return getattr(config, "size_embed_dim", SIZE_EMBED_DIM)


def guided_model(handle: Any, unet: Any) -> GuidedModel:
    """The :class:`GuidedModel` of a handle, running ``unet`` (the engine's, for this run)."""
    sampling = model_sampling_of(handle)
    network = ComputeCast(unet, handle.dtype, torch.device(handle.device))
    # The engine's UNet lends ControlNets through its memory manager; a bare module runs them in place.
    lend = getattr(unet, "lend", lend_in_place)
    return GuidedModel(apply_model=UNetDenoiser(network, sampling), sampling=sampling,
                       model_conds=model_conds_for_family(handle.family, _size_embed_dim(handle)),
                       hooks=handle.hooks,
                       process_latent_in=handle.latent_format.process_in,
                       process_latent_out=handle.latent_format.process_out,
                       lend=lend, diffusion_model=getattr(unet, "module", unet))


def fix_empty_latent_channels(samples: Tensor, channels: int, made_for_ratio: int | None = None,
                              model_ratio: int = 8) -> Tensor:
    """An all-zero latent (EmptyLatentImage always makes 4 channels at 1/8 of the size asked) is
    fitted to the model: widened or cut to its ``channels`` and, when the latent says which
    downscale ratio it was made for (ComfyUI's ``downscale_ratio_spacial``), resized to the model's
    (an f4 model then still makes the picture size asked). A latent with content is left alone."""
    if torch.count_nonzero(samples) > 0:
        return samples
    shape = list(samples.shape)
    shape[1] = channels
    if made_for_ratio and made_for_ratio != model_ratio:
        shape[-2:] = [round(side * made_for_ratio / model_ratio) for side in shape[-2:]]
    return samples if list(samples.shape) == shape else samples.new_zeros(shape)
