"""Writing trained networks as the files the loaders read.

A full model is an SD1 single-file checkpoint: the UNet under ``model.diffusion_model.``, the
autoencoder under ``first_stage_model.``, the text encoder under
``cond_stage_model.transformer.`` (Hugging Face CLIP names) — so ``CheckpointLoaderSimple``
loads it through the normal path and detects family ``sd1`` from its shapes. What shapes cannot
tell goes into the safetensors metadata the detector honours (``weft.num_head_channels``,
``modelspec.prediction_type``), with a description and the training configuration beside it.
An autoencoder alone is a VAE file (unprefixed keys) for ``VAELoader``.
"""

from __future__ import annotations

import json
import os

import torch
from torch import nn

from ldm.loading.checkpoint import save_state_dict
from ldm.loading.detect import META_PREDICTION, UNET_PREFIX, VAE_PREFIX, head_metadata
from ldm.networks.autoencoder import AutoencoderKL
from ldm.networks.unet import UNetModel
from ldm.text.clip_model import ClipTextModel
from ldm.training.text import checkpoint_weights

#: Storage dtype: bf16 halves the file, and it is what the networks computed in while they trained
#: (bf16 autocast casts every weight per call), so nothing is lost that training relied on; on
#: CPUs with native bf16 the layers then run without a per-call cast.
STORAGE_DTYPE = torch.bfloat16


def _cast(weights: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(dtype).contiguous() if v.is_floating_point() else v.detach().contiguous()
            for k, v in weights.items()}


def _prefixed(prefix: str, module: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in _cast(module.state_dict(), dtype).items()}


def model_metadata(unet: UNetModel, *, title: str, description: str, resolution: int,
                   training: dict | None = None, prediction: str = "eps") -> dict[str, str]:
    meta = head_metadata(unet.config)
    meta[META_PREDICTION] = {"eps": "epsilon", "v": "v"}[prediction]
    meta["modelspec.architecture"] = "stable-diffusion-v1"  # the key layout and conditioning
    meta["modelspec.title"] = title
    meta["modelspec.description"] = description
    meta["modelspec.resolution"] = f"{resolution}x{resolution}"
    if training is not None:
        meta["weft.training"] = json.dumps(training, sort_keys=True)
    return meta


def write_checkpoint(path: str | os.PathLike, unet: UNetModel, text: ClipTextModel, vae: AutoencoderKL,
                     metadata: dict[str, str]) -> None:
    """One SD1-layout ``.safetensors`` file holding all three networks."""
    weights = _prefixed(UNET_PREFIX, unet, STORAGE_DTYPE)
    weights.update(_prefixed(VAE_PREFIX, vae, STORAGE_DTYPE))
    weights.update(_cast(checkpoint_weights(text), STORAGE_DTYPE))
    save_state_dict(path, weights, metadata)


def write_vae(path: str | os.PathLike, vae: AutoencoderKL, metadata: dict[str, str] | None = None) -> None:
    """A VAE-only file (CompVis keys without prefix), as ``VAELoader`` lists in ``models/vae``."""
    save_state_dict(path, _cast(vae.state_dict(), STORAGE_DTYPE), dict(metadata or {}))
