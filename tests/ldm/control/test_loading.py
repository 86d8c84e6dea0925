"""ldm.control.loading: each kind of control file detected by its keys and built right."""

from __future__ import annotations

import pytest
import torch

from ldm.control.apply import attach, lend_in_place, prepare_control
from ldm.control.detect import ControlDetectionError
from ldm.control.loading import control_model_from_state_dict, load_control_model
from ldm.control.tiny import (control_lora_state_dict, controlnet_metadata, tiny_adapter_config,
                              tiny_adapter_state_dict, tiny_controlnet_state_dict, to_diffusers_layout,
                              write_tiny_controlnet)
from ldm.loading.detect import UNET_PREFIX, detect_unet
from ldm.loading.weights import strip_prefix
from ldm.model import build_unet
from ldm.sampling.model_sampling import model_sampling_for_family
from ldm.tiny import tiny_checkpoint


def _residuals(network, config, seed=0, y=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 4, 8, 8, generator=g)
    hint = torch.rand(1, 3, 64, 64, generator=g)
    context = torch.randn(1, 5, config.context_dim, generator=g)
    with torch.no_grad():
        return network(x=x, hint=hint, timesteps=torch.tensor([500.0]), context=context, y=y)


def _unet(family):
    state_dict, metadata = tiny_checkpoint(family, seed=5, include_text=False, dtype=torch.float32)
    unet_sd = strip_prefix(state_dict, UNET_PREFIX)
    return build_unet(unet_sd, detect_unet(unet_sd, metadata))


def test_original_layout_with_and_without_the_control_model_prefix(tmp_path):
    plain = write_tiny_controlnet(tmp_path / "a.safetensors", seed=1, dtype=torch.float32)
    prefixed = write_tiny_controlnet(tmp_path / "b.safetensors", seed=1, dtype=torch.float32,
                                     prefix="control_model.")
    a, b = load_control_model(plain), load_control_model(prefixed)
    assert a.kind == b.kind == "controlnet" and not a.global_average_pooling
    assert all(torch.equal(x, y) for x, y in zip(a.network.state_dict().values(), b.network.state_dict().values()))


def test_shuffle_files_pool_their_residuals_globally(tmp_path):
    path = write_tiny_controlnet(tmp_path / "control_v11e_sd15_shuffle.safetensors", seed=1)
    assert load_control_model(path).global_average_pooling


def test_sdxl_diffusers_layout_with_recorded_heads_matches_the_original():
    weights = tiny_controlnet_state_dict("sdxl", seed=4)
    metadata = controlnet_metadata("sdxl")
    original = control_model_from_state_dict(dict(weights), metadata).network
    from_diffusers = control_model_from_state_dict(to_diffusers_layout(weights), metadata).network
    assert from_diffusers.config == original.config
    y = torch.randn(1, original.config.unet.adm_in_channels)
    a = _residuals(original, original.config.unet, y=y)
    b = _residuals(from_diffusers, original.config.unet, y=y)
    assert all(torch.equal(p, q) for p, q in zip(a["output"] + a["middle"], b["output"] + b["middle"]))


def test_t2i_adapter_in_tencentarc_layout():
    config = tiny_adapter_config(channels=(32, 64), image_channels=1)
    control = control_model_from_state_dict(tiny_adapter_state_dict(config, seed=2))
    assert control.kind == "t2i_adapter" and control.image_channels == 1
    assert control.network.config == config


def test_unknown_weights_are_refused_with_a_message():
    with pytest.raises(ControlDetectionError, match="neither a ControlNet nor a T2I-Adapter"):
        control_model_from_state_dict({"some.weight": torch.zeros(2, 2)})


def test_diff_controlnet_adds_the_models_own_weights():
    handle = _unet("sd1")
    weights = tiny_controlnet_state_dict("sd1", seed=6)
    diff = {"control_model." + k: v for k, v in weights.items()} | {"difference": torch.tensor([])}
    control = control_model_from_state_dict(dict(diff), unet=handle.unet)
    unet_sd = handle.unet.state_dict()
    built = control.network.state_dict()
    key = "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"
    assert torch.allclose(built[key], weights[key] + unet_sd[key])
    assert torch.equal(built["zero_convs.0.0.weight"], weights["zero_convs.0.0.weight"])  # not in the UNet


def test_control_lora_builds_a_controlnet_from_the_models_unet_plus_low_rank_deltas():
    handle = _unet("sdxl")
    lora = control_lora_state_dict(handle.config, seed=7)
    control = control_model_from_state_dict(dict(lora))
    assert control.kind == "control_lora" and control.network is None
    applied = attach(control, torch.rand(1, 64, 64, 3), 1.0)
    run = prepare_control(applied, model_sampling_for_family("sdxl", "eps"), handle.unet, {})
    network = run.network
    key = "input_blocks.4.1.proj_in"
    base = handle.unet.state_dict()[key + ".weight"]
    delta = (lora[key + ".up"] @ lora[key + ".down"].flatten(start_dim=1)).reshape(base.shape)
    assert torch.allclose(network.state_dict()[key + ".weight"], base + delta, atol=1e-6)
    assert torch.equal(network.state_dict()["input_hint_block.0.weight"], lora["input_hint_block.0.weight"])
    x = torch.randn(1, 4, 8, 8)
    residuals = run.residuals(x, torch.tensor([1.0]), {"c_crossattn": torch.randn(1, 5, handle.config.context_dim),
                                                       "y": torch.randn(1, handle.config.adm_in_channels)},
                              1, lend_in_place)
    assert len(residuals["output"]) == len(handle.unet.input_blocks)
    assert residuals["output"][-1].shape[1:] == (64, 4, 4)
