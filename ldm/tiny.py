"""Tiny random checkpoints in each family's real key layout, for tests and offline demos.

Each file is what a real download of that family looks like (``model.diffusion_model.``,
``first_stage_model.``, text encoders under ``cond_stage_model.`` / ``conditioner.embedders.``),
with the real block structure but small channel counts, so it goes through the very loading,
detection and conversion code paths a real checkpoint takes (ours and diffusers').
Weights are random (seeded); a few MB per file.

    python -m ldm.tiny OUT_DIR        # every family, UNet-only and VAE-only files, an SD1 ControlNet
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ldm import text
from ldm.loading.checkpoint import save_state_dict
from ldm.loading.detect import FAMILIES, SDXL_SIZE_EMBED, UNET_PREFIX, VAE_PREFIX, head_metadata
from ldm.loading.weights import random_weights
from ldm.networks.autoencoder import AutoencoderKL, VaeConfig
from ldm.networks.unet import UNetConfig, UNetModel

#: Context widths used when no text-encoder weights are generated (CLIP-L, OpenCLIP-H/bigG stand-ins).
DEFAULT_TEXT_WIDTHS = {"clip_l": 32, "clip_g": 48, "clip_h": 48}

SD_VAE = VaeConfig(ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1, z_channels=4, embed_dim=4)
X4_VAE = VaeConfig(ch=32, ch_mult=(1, 1, 2), num_res_blocks=1, z_channels=4, embed_dim=4)

#: std of ``norm1.bias`` in the last output block's first transformer: eps models stay under the
#: 0.09 v-prediction threshold, the v model above it.
EPS_NORM_BIAS_STD = 0.03
V_NORM_BIAS_STD = 0.2


@dataclass(frozen=True)
class TextWidths:
    context: int  # cross-attention context width
    pooled: int | None = None  # SDXL pooled text width


def _text_widths(family: str, text_sd: dict | None) -> TextWidths:
    """The conditioning widths of ``family``, read from its text weights when there are some."""
    def width(key: str, default: int, dim: int = 0) -> int:
        return int(text_sd[key].shape[dim]) if text_sd and key in text_sd else default

    d = DEFAULT_TEXT_WIDTHS
    if family.startswith("sd1"):
        clip_l = width("cond_stage_model.transformer.text_model.final_layer_norm.weight", d["clip_l"])
        return TextWidths(clip_l)
    if family.startswith("sd2") or family == "sd_x4":
        return TextWidths(width("cond_stage_model.model.ln_final.weight", d["clip_h"]))
    if family == "sdxl":
        clip_l = width("conditioner.embedders.0.transformer.text_model.final_layer_norm.weight", d["clip_l"])
        clip_g = width("conditioner.embedders.1.model.ln_final.weight", d["clip_g"])
        pooled = width("conditioner.embedders.1.model.text_projection", clip_g, dim=1)
        return TextWidths(clip_l + clip_g, pooled)
    if family == "sdxl_refiner":
        clip_g = width("conditioner.embedders.0.model.ln_final.weight", d["clip_g"])
        return TextWidths(clip_g, width("conditioner.embedders.0.model.text_projection", clip_g, dim=1))
    raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")


def tiny_unet_config(family: str, widths: TextWidths) -> UNetConfig:
    """A small UNet with ``family``'s real structure (projection kind, labels, attention levels)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")
    in_channels = 9 if family.endswith("_inpaint") else 7 if family == "sd_x4" else 4
    common = dict(in_channels=in_channels, out_channels=4, model_channels=32, context_dim=widths.context)
    if family.startswith("sd1"):  # attention at every level, 8 heads, conv projections
        return UNetConfig(channel_mult=(1, 2), num_res_blocks=(2, 2), transformer_depth=(1, 1, 1, 1),
                          transformer_depth_middle=1, transformer_depth_output=(1,) * 6,
                          use_linear_in_transformer=False, num_heads=8, **common)
    if family.startswith("sd2"):  # as SD1 with linear projections and fixed head width
        return UNetConfig(channel_mult=(1, 2), num_res_blocks=(2, 2), transformer_depth=(1, 1, 1, 1),
                          transformer_depth_middle=1, transformer_depth_output=(1,) * 6,
                          use_linear_in_transformer=True, num_head_channels=8, **common)
    if family == "sdxl":  # no attention at full resolution, deeper transformers below, ADM label
        return UNetConfig(channel_mult=(1, 2), num_res_blocks=(2, 2), transformer_depth=(0, 0, 2, 2),
                          transformer_depth_middle=2, transformer_depth_output=(2, 2, 2, 0, 0, 0),
                          use_linear_in_transformer=True, num_head_channels=8,
                          adm_in_channels=widths.pooled + 6 * SDXL_SIZE_EMBED, **common)
    if family == "sdxl_refiner":  # attention only at the middle levels, five size embeddings
        return UNetConfig(channel_mult=(1, 2, 2), num_res_blocks=(2, 2, 2),
                          transformer_depth=(0, 0, 1, 1, 0, 0), transformer_depth_middle=1,
                          transformer_depth_output=(0, 0, 0, 1, 1, 1, 0, 0, 0),
                          use_linear_in_transformer=True, num_head_channels=8,
                          adm_in_channels=widths.pooled + 5 * SDXL_SIZE_EMBED, **common)
    # sd_x4: noise-level Embedding, low-res image concatenated (7 channels), attn1 over the
    # context at the inner levels except the last (real: disable_self_attentions T, T, T, F)
    return UNetConfig(channel_mult=(1, 2, 2), num_res_blocks=(2, 2, 2),
                      transformer_depth=(0, 0, 1, 1, 1, 1), transformer_depth_middle=1,
                      transformer_depth_output=(1, 1, 1, 1, 1, 1, 0, 0, 0),
                      use_linear_in_transformer=True, num_heads=8, num_classes=1000,
                      disable_self_attn=(False, True, False), **common)


def tiny_vae_config(family: str) -> VaeConfig:
    return X4_VAE if family == "sd_x4" else SD_VAE


def tiny_text_state_dict(family: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Tiny random text-encoder weights in ``family``'s checkpoint layout (``ldm.text``)."""
    return text.tiny_text_state_dict(family, seed=seed)


def tiny_unet_state_dict(family: str, seed: int = 0,
                         widths: TextWidths | None = None) -> dict[str, torch.Tensor]:
    """Random UNet weights (keys without prefix) of ``family``'s tiny configuration."""
    config = tiny_unet_config(family, widths or _text_widths(family, None))
    generator = torch.Generator().manual_seed(seed)
    weights = random_weights(UNetModel(config), generator)
    last = len(config.transformer_depth_output) - 1
    key = f"output_blocks.{last}.1.transformer_blocks.0.norm1.bias"
    if key in weights:  # the statistic that tells SD2 v-prediction from eps (see ldm.loading.detect)
        std = V_NORM_BIAS_STD if family == "sd2_v" else EPS_NORM_BIAS_STD
        weights[key] = torch.randn(weights[key].shape, generator=generator) * std
    return weights


def tiny_vae_state_dict(family: str = "sd1", seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed + 1)
    return random_weights(AutoencoderKL(tiny_vae_config(family)), generator)


def tiny_checkpoint(family: str, seed: int = 0, include_text: bool | None = None,
                    dtype: torch.dtype = torch.float32) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(state_dict, metadata)`` of a full tiny single-file checkpoint of ``family``.

    ``include_text``: None or True adds the family's text encoders, False leaves them out.
    All floating-point weights are stored in ``dtype`` (fp16 by default, like most downloads).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {sorted(FAMILIES)}")
    text_sd = tiny_text_state_dict(family, seed) if include_text in (None, True) else None
    widths = _text_widths(family, text_sd)
    unet_sd = tiny_unet_state_dict(family, seed, widths)
    state_dict = {UNET_PREFIX + k: v.to(dtype) for k, v in unet_sd.items()}
    state_dict.update({VAE_PREFIX + k: v.to(dtype) for k, v in tiny_vae_state_dict(family, seed).items()})
    state_dict.update({k: v.to(dtype) if v.is_floating_point() else v for k, v in (text_sd or {}).items()})
    return state_dict, _metadata(family, widths)


def _metadata(family: str, widths: TextWidths) -> dict[str, str]:
    # Real SD1/x4 files need no head metadata (8 heads is the convention); the others do, since a
    # tiny width cannot hold their 64-channel heads.
    config = tiny_unet_config(family, widths)
    return {} if family.startswith("sd1") or family == "sd_x4" else head_metadata(config)


def write_tiny_checkpoint(path: str | os.PathLike, family: str, seed: int = 0,
                          include_text: bool | None = None, dtype: torch.dtype = torch.float16) -> Path:
    """Write a tiny single-file checkpoint of ``family`` (safetensors) and return its path.

    Weights are stored in fp16 by default, like most downloads (a few MB per file).
    """
    state_dict, metadata = tiny_checkpoint(family, seed, include_text, dtype)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(path, state_dict, metadata)
    return Path(path)


def write_tiny_unet(path: str | os.PathLike, family: str, seed: int = 0,
                    dtype: torch.dtype = torch.float16) -> Path:
    """A UNet-only file (CompVis keys, no prefix), as kept in ``models/diffusion_models``."""
    widths = _text_widths(family, tiny_text_state_dict(family, seed))
    weights = {k: v.to(dtype) for k, v in tiny_unet_state_dict(family, seed, widths).items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(path, weights, _metadata(family, widths))
    return Path(path)


def write_tiny_vae(path: str | os.PathLike, family: str = "sd1", seed: int = 0,
                   dtype: torch.dtype = torch.float16) -> Path:
    """A VAE-only file (CompVis keys, no prefix), as kept in ``models/vae``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(path, {k: v.to(dtype) for k, v in tiny_vae_state_dict(family, seed).items()})
    return Path(path)


def write_all(out_dir: str | os.PathLike, seed: int = 0) -> list[Path]:
    out = Path(out_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "diffusion_models").mkdir(exist_ok=True)
    (out / "vae").mkdir(exist_ok=True)
    written = [write_tiny_checkpoint(out / "checkpoints" / f"tiny_{family}.safetensors", family, seed)
               for family in FAMILIES]
    written.append(write_tiny_unet(out / "diffusion_models" / "tiny_sd1_unet.safetensors", "sd1", seed))
    written.append(write_tiny_unet(out / "diffusion_models" / "tiny_sdxl_unet.safetensors", "sdxl", seed))
    written.append(write_tiny_vae(out / "vae" / "tiny_sd_vae.safetensors", "sd1", seed))
    written.append(write_tiny_vae(out / "vae" / "tiny_x4_vae.safetensors", "sd_x4", seed))
    # Imported here: ldm.control.tiny builds its encoder from this module's tiny configurations.
    from ldm.control.tiny import write_tiny_controlnet

    # The encoder of tiny_sd1's UNet, so it steers that checkpoint in a ControlNet workflow.
    written.append(write_tiny_controlnet(out / "controlnet" / "tiny-sd1-controlnet.safetensors", "sd1", seed))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ldm.tiny", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="folder to write checkpoints/, diffusion_models/, vae/ and controlnet/ into")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in write_all(args.out_dir, args.seed):
        print(f"{path}  {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
