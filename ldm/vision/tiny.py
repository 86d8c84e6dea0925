"""Tiny random files in the real layouts of this package's models, for tests and offline demos.

- a CLIP vision tower (HF ``vision_model.*`` or OpenCLIP ``visual.*``): width 32, 3 layers,
  2 heads, 224-pixel input in 32-pixel patches, projection to ``projection_dim`` (768 by default:
  the unCLIP-L embedding width, so the tiny tower can drive a tiny unCLIP UNet);
- an unCLIP checkpoint: the tiny SD 2.x checkpoint of :mod:`ldm.tiny` whose UNet has the real
  unCLIP-L label width (1536 = 768 image embedding + 768 noise-level embedding), the vision tower
  under ``embedder.model.visual.`` and the noise augmentor's schedule buffers;
- a T2I style adapter (``style_embedding``, ``transformer_layes.N``), an A1111 hypernetwork, a
  GLIGEN file for a given UNet (fusers with open gates, position net) and a PhotoMaker ID encoder.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from ldm.loading.checkpoint import save_state_dict
from ldm.loading.detect import UNET_PREFIX, VAE_PREFIX, head_metadata
from ldm.loading.weights import random_weights
from ldm.networks.unet import UNetModel
from ldm.tiny import TextWidths, tiny_text_state_dict, tiny_unet_config, tiny_vae_state_dict
from ldm.vision.clip_vision import ClipVisionConfig, ClipVisionModel, hf_to_openclip_visual
from ldm.vision.unclip import UNCLIP_L_EMBED_WIDTH, squaredcos_betas

TINY_VISION = ClipVisionConfig(width=32, layers=3, heads=2, mlp_width=64, activation="gelu", patch_size=32,
                               image_size=224, projection_dim=UNCLIP_L_EMBED_WIDTH)


def tiny_vision_weights(seed: int = 0, config: ClipVisionConfig = TINY_VISION) -> dict[str, torch.Tensor]:
    """Random tower weights in our (HF) names."""
    with torch.device("meta"):
        model = ClipVisionModel(config)
    weights = random_weights(model, torch.Generator().manual_seed(seed))
    # Embeddings of unit scale, as trained towers have; fan-in scaling would make them vanish.
    for key in ("vision_model.embeddings.class_embedding", "vision_model.embeddings.position_embedding.weight"):
        weights[key] = torch.randn(weights[key].shape, generator=torch.Generator().manual_seed(seed + 1))
    return weights


def tiny_vision_state_dict(seed: int = 0, layout: str = "hf", prefix: str = "",
                           config: ClipVisionConfig = TINY_VISION) -> dict[str, torch.Tensor]:
    """A tower as a file holds it: ``layout`` "hf" (transformers names) or "openclip"."""
    weights = tiny_vision_weights(seed, config)
    if layout == "openclip":
        weights = hf_to_openclip_visual(weights)
    elif layout != "hf":
        raise ValueError(f"layout must be 'hf' or 'openclip', got {layout!r}")
    return {prefix + k: v for k, v in weights.items()}


def write_tiny_clip_vision(path: str | os.PathLike, seed: int = 0, layout: str = "hf",
                           dtype: torch.dtype = torch.float16) -> Path:
    """A standalone vision tower, as kept in ``models/clip_vision``."""
    prefix = "visual." if layout == "openclip" else ""
    weights = {k: v.to(dtype) for k, v in tiny_vision_state_dict(seed, layout, prefix).items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(path, weights)
    return Path(path)


def noise_augmentor_buffers() -> dict[str, torch.Tensor]:
    """The schedule buffers an unCLIP checkpoint carries under ``noise_augmentor.`` (loaders
    ignore them: the schedule is fixed)."""
    betas = squaredcos_betas()
    alpha_bar = torch.cumprod(1 - betas, dim=0)
    return {"betas": betas.float(), "alphas_cumprod": alpha_bar.float(),
            "sqrt_alphas_cumprod": alpha_bar.sqrt().float(),
            "sqrt_one_minus_alphas_cumprod": (1 - alpha_bar).sqrt().float()}


def tiny_unclip_checkpoint(seed: int = 0, dtype: torch.dtype = torch.float32):
    """``(state_dict, metadata)`` of a tiny SD 2.1 unCLIP-L checkpoint."""
    text_sd = tiny_text_state_dict("sd2", seed)
    widths = TextWidths(context=text_sd["cond_stage_model.model.ln_final.weight"].shape[0])
    config = dataclasses.replace(tiny_unet_config("sd2", widths), adm_in_channels=2 * UNCLIP_L_EMBED_WIDTH)
    generator = torch.Generator().manual_seed(seed)
    unet_sd = random_weights(UNetModel(config), generator)
    state_dict = {UNET_PREFIX + k: v for k, v in unet_sd.items()}
    state_dict.update({VAE_PREFIX + k: v for k, v in tiny_vae_state_dict("sd2", seed).items()})
    state_dict.update(text_sd)
    state_dict.update(tiny_vision_state_dict(seed, "openclip", "embedder.model.visual."))
    state_dict.update({f"noise_augmentor.{k}": v for k, v in noise_augmentor_buffers().items()})
    state_dict = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
    return state_dict, head_metadata(config)


def write_tiny_unclip_checkpoint(path: str | os.PathLike, seed: int = 0,
                                 dtype: torch.dtype = torch.float16) -> Path:
    state_dict, metadata = tiny_unclip_checkpoint(seed, dtype)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(path, state_dict, metadata)
    return Path(path)


def tiny_style_adapter_state_dict(seed: int = 0, width: int = TINY_VISION.width, context_dim: int = 32,
                                  layers: int = 2, tokens: int = 4) -> dict[str, torch.Tensor]:
    """A T2I style adapter over the tiny tower's hidden states, in the file's names."""
    from ldm.vision.style_model import StyleAdapter

    with torch.device("meta"):
        adapter = StyleAdapter(width, context_dim, layers, tokens)
    return random_weights(adapter, torch.Generator().manual_seed(seed))


def write_tiny_style_model(path: str | os.PathLike, seed: int = 0) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(path, tiny_style_adapter_state_dict(seed))
    return Path(path)


def tiny_hypernetwork(widths: tuple[int, ...], hidden_factor: int = 2, layer_norm: bool = False,
                      activation: str = "relu", seed: int = 0) -> dict:
    """An A1111 hypernetwork dict (layer structure 1, ``hidden_factor``, 1) for ``widths``."""
    generator = torch.Generator().manual_seed(seed)
    out: dict = {}
    for width in widths:
        pair = []
        for _ in range(2):  # keys, values
            state, index = {}, 0
            for fan_in, fan_out in ((width, width * hidden_factor), (width * hidden_factor, width)):
                state[f"linear.{index}.weight"] = torch.randn(fan_out, fan_in, generator=generator) / fan_in ** 0.5
                state[f"linear.{index}.bias"] = 0.05 * torch.randn(fan_out, generator=generator)
                index += 2 if activation != "linear" else 1  # A1111 numbers the activation layer too
                if layer_norm:
                    state[f"linear.{index}.weight"] = 1 + 0.1 * torch.randn(fan_out, generator=generator)
                    state[f"linear.{index}.bias"] = 0.05 * torch.randn(fan_out, generator=generator)
                    index += 1
            pair.append(state)
        out[width] = pair
    out.update({"layer_structure": [1, hidden_factor, 1], "activation_func": activation,
                "is_layer_norm": layer_norm, "use_dropout": False, "activate_output": False,
                "last_layer_dropout": False, "name": "tiny", "step": 0})
    return out


def write_tiny_hypernetwork(path: str | os.PathLike, widths: tuple[int, ...], **options) -> Path:
    """The ``.pt`` pickle A1111 writes."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(tiny_hypernetwork(widths, **options), path)
    return Path(path)


def tiny_gligen_state_dict(unet_config, key_dim: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A GLIGEN file for a UNet of ``unet_config``: a fuser in each transformer's first block
    (keys as the real files: ``input_blocks.1.1.transformer_blocks.0.fuser.…``) and a position
    net over ``key_dim``-wide phrase embeddings. The gates are opened (α = 1) so tests see them."""
    from ldm.networks.ops import Operations
    from ldm.vision.gligen import GatedSelfAttentionDense, PositionNet

    generator = torch.Generator().manual_seed(seed)
    meta = Operations(device="meta")
    with torch.device("meta"):
        unet = UNetModel(unet_config)
    out: dict[str, torch.Tensor] = {}
    for name, module in unet.named_modules():
        if name.endswith("transformer_blocks.0"):
            dim = module.attn1.to_q.in_features
            fuser = GatedSelfAttentionDense(dim, key_dim, module.n_heads, module.d_head, meta)
            for key, value in random_weights(fuser, generator).items():
                out[f"{name}.fuser.{key}"] = torch.tensor(1.0) if key.startswith("alpha") else value
    for key, value in random_weights(PositionNet(key_dim, key_dim, meta), generator).items():
        out[f"position_net.{key}"] = value
    return out


def tiny_photomaker_weights(seed: int = 0, projection_dim: int = 32, second_projection_dim: int = 32) -> dict:
    """A PhotoMaker ID encoder for a tiny SDXL (context 32 + 32): the tiny tower projected twice
    and a fuse module of width ``projection_dim + second_projection_dim``."""
    from ldm.vision.photomaker import PhotoMakerIdEncoder

    config = dataclasses.replace(TINY_VISION, projection_dim=projection_dim)
    with torch.device("meta"):
        encoder = PhotoMakerIdEncoder(config, second_projection_dim)
    weights = random_weights(encoder, torch.Generator().manual_seed(seed))
    weights.update(tiny_vision_weights(seed, config))
    return weights


def write_tiny_photomaker(path: str | os.PathLike, seed: int = 0) -> Path:
    """The pickle layout of ``photomaker-v1.bin``: ``{"id_encoder": …, "lora_weights": …}``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"id_encoder": tiny_photomaker_weights(seed), "lora_weights": {}}, path)
    return Path(path)
