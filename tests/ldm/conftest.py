"""Fixtures for the engine tests: fp32 CPU compute, tiny checkpoints, the diffusers oracle.

diffusers is a test oracle only. Its models are fed our tiny checkpoints through its own
LDM->diffusers converters (``diffusers.loaders.single_file_utils``), with a configuration built
by its own ``create_*_diffusers_config_from_ldm`` from an LDM-style YAML dict that we describe
from the detected config.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from ldm.devices import detect_compute
from ldm.networks.autoencoder import VaeConfig
from ldm.networks.unet import UNetConfig


@pytest.fixture
def fp32():
    """Compute settings that force float32 on the CPU (oracle comparisons)."""
    return detect_compute("cpu", force_dtype=torch.float32)


def ldm_unet_yaml(config: UNetConfig) -> dict:
    """The ``unet_config.params`` an LDM/SGM YAML would hold for ``config``."""
    level_depths, index = [], 0
    for blocks in config.num_res_blocks:
        level_depths.append(config.transformer_depth[index])
        index += blocks
    nonzero = {d for d in level_depths if d}
    params = {
        "in_channels": config.in_channels, "out_channels": config.out_channels,
        "model_channels": config.model_channels, "channel_mult": list(config.channel_mult),
        "num_res_blocks": config.num_res_blocks[0],
        "attention_resolutions": [2 ** level for level, d in enumerate(level_depths) if d],
        "transformer_depth": nonzero.pop() if len(nonzero) == 1 else level_depths,
        "context_dim": config.context_dim,
        "use_linear_in_transformer": config.use_linear_in_transformer,
    }
    if config.num_heads > 0:
        params["num_heads"] = config.num_heads
    else:
        params["num_head_channels"] = config.num_head_channels
    if config.adm_in_channels is not None:
        params["num_classes"] = "sequential"
        params["adm_in_channels"] = config.adm_in_channels
    if config.num_classes is not None:
        params["num_classes"] = config.num_classes
    if config.disable_self_attn:
        params["disable_self_attentions"] = list(config.disable_self_attn)
    return params


def ldm_yaml(unet: UNetConfig | None = None, vae: VaeConfig | None = None) -> dict:
    vae = vae or VaeConfig(ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1, z_channels=4, embed_dim=4)
    ddconfig = {"ch": vae.ch, "ch_mult": list(vae.ch_mult), "num_res_blocks": vae.num_res_blocks,
                "z_channels": vae.z_channels, "in_channels": vae.in_channels, "out_ch": vae.out_channels}
    params = {"first_stage_config": {"params": {"ddconfig": ddconfig}}}
    if unet is not None:
        params["unet_config"] = {"params": ldm_unet_yaml(unet)}
    return {"model": {"params": params}}


def diffusers_unet(full_state_dict: dict, config: UNetConfig):
    """diffusers' UNet2DConditionModel with the UNet of an LDM checkpoint, converted by diffusers."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (convert_ldm_unet_checkpoint,
                                                     create_unet_diffusers_config_from_ldm)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dconfig = create_unet_diffusers_config_from_ldm(ldm_yaml(config), full_state_dict, image_size=64)
    if config.adm_in_channels is not None:
        # diffusers picks SDXL's "text_time" add-embedding only for the real context widths
        # (2048 / 1280), which a tiny model cannot have; the weights and maths are the same.
        dconfig.update(class_embed_type=None, addition_embed_type="text_time", addition_time_embed_dim=256)
    model = UNet2DConditionModel(**dconfig)
    converted = convert_ldm_unet_checkpoint(full_state_dict, dconfig)
    model.load_state_dict({k: v.float() for k, v in converted.items()}, strict=True)
    return model.eval()


def diffusers_vae(full_state_dict: dict, config: VaeConfig):
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import (convert_ldm_vae_checkpoint,
                                                     create_vae_diffusers_config_from_ldm)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dconfig = create_vae_diffusers_config_from_ldm(ldm_yaml(vae=config), full_state_dict, image_size=64)
    model = AutoencoderKL(**dconfig)
    converted = convert_ldm_vae_checkpoint(full_state_dict, dconfig)
    model.load_state_dict({k: v.float() for k, v in converted.items()}, strict=True)
    return model.eval()


@pytest.fixture
def oracle():
    """Builders of diffusers reference models: ``oracle.unet(state_dict, config)``, ``oracle.vae(...)``."""
    from types import SimpleNamespace

    return SimpleNamespace(unet=diffusers_unet, vae=diffusers_vae)
