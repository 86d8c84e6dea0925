"""ldm.control.network: residuals equal diffusers' ControlNetModel fed the same tiny random weights.

diffusers builds its model from the original single-file layout with its own converter
(``convert_controlnet_checkpoint``); our loader reads both that layout and diffusers' names.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from ldm.control.loading import control_model_from_state_dict
from ldm.control.tiny import controlnet_metadata, tiny_controlnet_state_dict, to_diffusers_layout
from ldm.networks.adm import sdxl_label
from tests.ldm.conftest import ldm_yaml

#: diffusers' parameter names of UNet config fields that its ControlNetModel shares.
_SHARED = ("in_channels", "down_block_types", "block_out_channels", "layers_per_block", "cross_attention_dim",
           "attention_head_dim", "use_linear_projection", "class_embed_type", "addition_embed_type",
           "addition_time_embed_dim", "projection_class_embeddings_input_dim", "transformer_layers_per_block")


def diffusers_controlnet(weights: dict, config):
    """diffusers' ControlNetModel holding ``weights`` (original layout), converted by diffusers."""
    from diffusers import ControlNetModel
    from diffusers.loaders.single_file_utils import (convert_controlnet_checkpoint,
                                                     create_unet_diffusers_config_from_ldm)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unet = create_unet_diffusers_config_from_ldm(
            ldm_yaml(config), {"model.diffusion_model." + k: v for k, v in weights.items()}, image_size=64)
    dconfig = {key: unet[key] for key in _SHARED} | {"conditioning_channels": 3}
    if config.adm_in_channels is not None:  # as in tests/ldm/conftest.py: tiny widths hide SDXL's embedding
        dconfig.update(class_embed_type=None, addition_embed_type="text_time", addition_time_embed_dim=256,
                       projection_class_embeddings_input_dim=config.adm_in_channels)
    converted = convert_controlnet_checkpoint(weights, dconfig)
    # diffusers' ControlNet converter has no entry for SDXL's label embedding; its UNet's names apply.
    for theirs, ours in (("linear_1", "0"), ("linear_2", "2")):
        for leaf in ("weight", "bias"):
            if f"label_emb.0.{ours}.{leaf}" in weights:
                converted[f"add_embedding.{theirs}.{leaf}"] = weights[f"label_emb.0.{ours}.{leaf}"]
    model = ControlNetModel(**dconfig)
    model.load_state_dict(converted, strict=True)
    return model.eval(), converted


def _inputs(config, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 16, 12, generator=g)
    hint = torch.rand(2, 3, 128, 96, generator=g)
    context = torch.randn(2, 7, config.context_dim, generator=g)
    return x, torch.tensor([3.0, 741.0]), context, hint


def _assert_close(ours, theirs):
    scale = theirs.abs().max().item()
    assert scale > 0.1
    assert (ours - theirs).abs().max().item() <= 1e-4 * scale


def _sdxl_label_inputs(config):
    pooled = torch.randn(2, config.adm_in_channels - 6 * 256, generator=torch.Generator().manual_seed(5))
    y = sdxl_label(pooled, width=1024, height=768, crop_w=16, crop_h=8, target_width=1152, target_height=896)
    time_ids = torch.tensor([[768.0, 1024.0, 8.0, 16.0, 896.0, 1152.0]] * 2)
    return y, {"text_embeds": pooled, "time_ids": time_ids}


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_residuals_match_diffusers_controlnet(family):
    weights = tiny_controlnet_state_dict(family, seed=1)
    ours = control_model_from_state_dict(dict(weights), controlnet_metadata(family)).network
    config = ours.config.unet
    theirs, _ = diffusers_controlnet(weights, config)
    x, t, context, hint = _inputs(config)
    y, added = _sdxl_label_inputs(config) if config.adm_in_channels else (None, None)
    with torch.no_grad():
        mine = ours(x=x, hint=hint, timesteps=t, context=context, y=y)
        down, middle = theirs(x, t, context, hint, added_cond_kwargs=added, return_dict=False)
    assert len(mine["output"]) == len(down) == 3 * len(config.channel_mult)
    for a, b in zip(mine["output"], down):
        _assert_close(a, b)
    _assert_close(mine["middle"][0], middle)


def test_diffusers_layout_loads_to_the_same_network():
    """A file in diffusers' names (as diffusers' converter produces them) gives the same residuals."""
    weights = tiny_controlnet_state_dict("sd1", seed=2)
    original = control_model_from_state_dict(dict(weights)).network
    _, converted = diffusers_controlnet(weights, original.config.unet)
    from_diffusers = control_model_from_state_dict(dict(converted)).network
    assert from_diffusers.config == original.config
    x, t, context, hint = _inputs(original.config.unet)
    with torch.no_grad():
        a = original(x=x, hint=hint, timesteps=t, context=context)
        b = from_diffusers(x=x, hint=hint, timesteps=t, context=context)
    for left, right in zip(a["output"] + a["middle"], b["output"] + b["middle"]):
        assert torch.equal(left, right)


def test_our_diffusers_writer_uses_diffusers_names():
    weights = tiny_controlnet_state_dict("sdxl", seed=2)
    config = control_model_from_state_dict(dict(weights), controlnet_metadata("sdxl")).network.config.unet
    theirs, converted = diffusers_controlnet(weights, config)
    assert set(to_diffusers_layout(weights)) == set(converted)
