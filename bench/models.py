"""Real-size model layouts, random single-file checkpoints of them, and diffusers' models of the
same file (built with diffusers' own LDM converters, as its ``from_single_file`` does).

Weights are random — uniform with the variance of N(0, 1/fan_in) for matrices and kernels, norm
scales near 1, small biases — so activations keep their scale through the real depth and both
implementations compute on identical numbers. Generated in fp16 (the dtype of the published
files) and cached under ``bench/.cache``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ldm.loading.checkpoint import save_state_dict
from ldm.loading.detect import UNET_PREFIX, VAE_PREFIX
from ldm.networks.autoencoder import AutoencoderKL, VaeConfig
from ldm.networks.unet import UNetConfig, UNetModel
from ldm.text.clip_model import ClipTextConfig, ClipTextModel
from ldm.text.layouts import hf_to_openclip

CACHE = Path(__file__).resolve().parent / ".cache"

SD_VAE = VaeConfig(ch=128, ch_mult=(1, 2, 4, 4), num_res_blocks=2, z_channels=4, embed_dim=4)
CLIP_L = ClipTextConfig(width=768, layers=12, heads=12, mlp_width=3072, activation="quick_gelu")
CLIP_G = ClipTextConfig(width=1280, layers=32, heads=20, mlp_width=5120, activation="gelu", projection_dim=1280)


@dataclass(frozen=True)
class Family:
    name: str
    unet: UNetConfig
    ldm_unet_params: dict  # the published YAML's unet params (diffusers builds its config from them)
    scale_factor: float
    xl: bool


SD15 = Family(
    "sd15",
    UNetConfig(4, 4, 320, (1, 2, 4, 4), (2, 2, 2, 2), (1,) * 6 + (0, 0), 1, (0, 0, 0) + (1,) * 9, 768, False,
               num_heads=8),
    {"in_channels": 4, "out_channels": 4, "model_channels": 320, "attention_resolutions": [4, 2, 1],
     "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4], "num_heads": 8, "transformer_depth": 1,
     "context_dim": 768, "use_linear_in_transformer": False},
    0.18215, False)
SDXL = Family(
    "sdxl",
    UNetConfig(4, 4, 320, (1, 2, 4), (2, 2, 2), (0, 0, 2, 2, 10, 10), 10, (10, 10, 10, 2, 2, 2, 0, 0, 0), 2048,
               True, num_head_channels=64, adm_in_channels=2816),
    {"in_channels": 4, "out_channels": 4, "model_channels": 320, "attention_resolutions": [4, 2],
     "num_res_blocks": 2, "channel_mult": [1, 2, 4], "num_head_channels": 64, "transformer_depth": [1, 2, 10],
     "context_dim": 2048, "use_linear_in_transformer": True, "adm_in_channels": 2816,
     "num_classes": "sequential"},
    0.13025, True)
FAMILIES = {f.name: f for f in (SD15, SDXL)}


def _shapes(module_factory) -> dict[str, torch.Size]:
    with torch.device("meta"):
        return {k: v.shape for k, v in module_factory().state_dict().items()}


def _fill(key: str, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    out = torch.empty(shape, dtype=torch.float16)
    if len(shape) >= 2 and "embedding" not in key:
        bound = math.sqrt(3.0 / math.prod(shape[1:]))  # uniform with variance 1 / fan_in
        return out.uniform_(-bound, bound, generator=generator)
    if "embedding" in key:
        return out.uniform_(-0.5, 0.5, generator=generator)
    if key.endswith("weight") and len(shape) == 1:  # norm scales
        return out.uniform_(0.9, 1.1, generator=generator)
    return out.uniform_(-0.05, 0.05, generator=generator)


def _random(shapes: dict[str, torch.Size], generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {key: _fill(key, shape, generator) for key, shape in sorted(shapes.items())}


def random_checkpoint(family: Family, seed: int = 0) -> dict[str, torch.Tensor]:
    """A full single-file checkpoint (UNet, VAE, text encoders) in the real key layout, fp16."""
    g = torch.Generator().manual_seed(seed)
    state = {UNET_PREFIX + k: v for k, v in _random(_shapes(lambda: UNetModel(family.unet)), g).items()}
    state.update({VAE_PREFIX + k: v for k, v in _random(_shapes(lambda: AutoencoderKL(SD_VAE)), g).items()})
    clip_l = _random(_shapes(lambda: ClipTextModel(CLIP_L)), g)
    prefix_l = "conditioner.embedders.0.transformer." if family.xl else "cond_stage_model.transformer."
    state.update({prefix_l + k: v for k, v in clip_l.items()})
    if family.xl:
        clip_g = hf_to_openclip(_random(_shapes(lambda: ClipTextModel(CLIP_G)), g))
        state.update({"conditioner.embedders.1.model." + k: v for k, v in clip_g.items()})
        state["conditioner.embedders.1.model.logit_scale"] = torch.tensor(4.6052)
    return state


def checkpoint_file(family: Family, seed: int = 0, log=print) -> Path:
    """The cached random checkpoint of ``family`` (written on first use)."""
    path = CACHE / f"{family.name}-random-{seed}.safetensors"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        state = random_checkpoint(family, seed)
        partial = path.with_suffix(".partial")
        save_state_dict(partial, state)
        partial.rename(path)
        log(f"wrote {path.name} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.0f} s")
    return path


# --- diffusers' models of the same file ------------------------------------------------------------

def _ldm_yaml(family: Family) -> dict:
    ddconfig = {"ch": SD_VAE.ch, "ch_mult": list(SD_VAE.ch_mult), "num_res_blocks": SD_VAE.num_res_blocks,
                "z_channels": 4, "in_channels": 3, "out_ch": 3, "double_z": True, "resolution": 256,
                "attn_resolutions": [], "dropout": 0.0}
    key = "network_config" if family.xl else "unet_config"
    params = {key: {"params": dict(family.ldm_unet_params)},
              "first_stage_config": {"params": {"ddconfig": ddconfig, "embed_dim": 4}},
              "scale_factor": family.scale_factor}
    return {"model": {"params": params}}


def _on_meta_then_assign(factory, weights: dict[str, torch.Tensor], dtype: torch.dtype):
    """Build on the meta device and adopt ``weights`` (what diffusers does with accelerate)."""
    with torch.device("meta"):
        model = factory()
    own = model.state_dict().keys()
    if not any(k.startswith("text_model.") for k in own):  # transformers 5 dropped the prefix here
        weights = {k.removeprefix("text_model."): v for k, v in weights.items()}
    missing, unexpected = model.load_state_dict(weights, strict=False, assign=True)
    for name, buffer in list(model.named_buffers()):  # non-persistent buffers (CLIP position ids)
        if buffer.is_meta and name.endswith("position_ids"):
            owner, _, attr = name.rpartition(".")
            model.get_submodule(owner).register_buffer(attr, torch.arange(buffer.shape[-1]).expand(1, -1),
                                                       persistent=False)
    still_meta = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if still_meta or [k for k in unexpected if "position_ids" not in k]:
        raise RuntimeError(f"diffusers model did not take the weights: meta {still_meta[:3]}, "
                           f"unexpected {unexpected[:3]}")
    return model.to(dtype).eval().requires_grad_(False)


def diffusers_models(state: dict[str, torch.Tensor], family: Family, dtype: torch.dtype) -> dict:
    """diffusers' UNet, VAE and transformers' text encoders holding the file's weights."""
    import warnings

    from diffusers import AutoencoderKL as DiffusersVAE
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (convert_ldm_clip_checkpoint, convert_ldm_unet_checkpoint,
                                                     convert_ldm_vae_checkpoint, convert_open_clip_checkpoint,
                                                     create_unet_diffusers_config_from_ldm,
                                                     create_vae_diffusers_config_from_ldm)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    yaml = _ldm_yaml(family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unet_config = create_unet_diffusers_config_from_ldm(yaml, state, image_size=128 if family.xl else 64)
        vae_config = create_vae_diffusers_config_from_ldm(yaml, state, image_size=1024 if family.xl else 512)
    models = {
        "unet": _on_meta_then_assign(lambda: UNet2DConditionModel(**unet_config),
                                     convert_ldm_unet_checkpoint(state, unet_config), dtype),
        "vae": _on_meta_then_assign(lambda: DiffusersVAE(**vae_config), convert_ldm_vae_checkpoint(state, vae_config),
                                    dtype)}
    l_config = CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                              max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
    prefix_l = "conditioner.embedders.0.transformer." if family.xl else "cond_stage_model.transformer."
    models["text_encoder"] = _on_meta_then_assign(lambda: CLIPTextModel(l_config),
                                                  convert_ldm_clip_checkpoint(state, prefix_l), dtype)
    if family.xl:
        g_config = CLIPTextConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                                  num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu",
                                  projection_dim=1280)
        with torch.device("meta"):
            probe = CLIPTextModelWithProjection(g_config)
        weights = convert_open_clip_checkpoint(probe, state, prefix="conditioner.embedders.1.model.")
        models["text_encoder_2"] = _on_meta_then_assign(lambda: CLIPTextModelWithProjection(g_config), weights,
                                                        dtype)
    return models
