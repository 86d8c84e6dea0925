"""ldm.networks.unet: parity with diffusers' UNet2DConditionModel on tiny checkpoints of each family shape."""

from __future__ import annotations

import pytest
import torch

from ldm.loading.detect import UNET_PREFIX, detect_unet
from ldm.loading.weights import WeightsError, adopt_weights, strip_prefix
from ldm.model import build_unet
from ldm.networks.adm import sdxl_label, sdxl_refiner_label
from ldm.networks.unet import UNetModel, timestep_embedding, unet_config_from_state_dict
from ldm.tiny import tiny_checkpoint


def _ours_and_theirs(family, fp32, oracle):
    state_dict, metadata = tiny_checkpoint(family, seed=3, include_text=False)
    unet_sd = strip_prefix(state_dict, UNET_PREFIX)
    handle = build_unet(unet_sd, detect_unet(unet_sd, metadata), compute=fp32)
    return handle, oracle.unet(state_dict, handle.config)


def _inputs(config, batch=2, size=(16, 16), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, config.in_channels, *size, generator=g)
    t = torch.tensor([3.0, 741.0])[:batch]
    context = torch.randn(batch, 7, config.context_dim, generator=g)
    return x, t, context


def _assert_parity(ours, theirs):
    scale = theirs.abs().max().item()
    assert scale > 0.1  # a meaningful output, not a vanishing one
    diff = (ours - theirs).abs().max().item()
    assert diff <= 1e-4 * scale, f"max abs diff {diff:.3g} vs output scale {scale:.3g}"


@pytest.mark.parametrize("family", ["sd1", "sd1_inpaint", "sd2", "sd2_v"])
def test_sd1_sd2_parity_with_diffusers(family, fp32, oracle):
    handle, reference = _ours_and_theirs(family, fp32, oracle)
    x, t, context = _inputs(handle.config)
    with torch.no_grad():
        _assert_parity(handle.unet(x, t, context), reference(x, t, context).sample)


def test_odd_latent_sizes_match_diffusers(fp32, oracle):
    handle, reference = _ours_and_theirs("sd2", fp32, oracle)
    x, t, context = _inputs(handle.config, size=(15, 13))
    with torch.no_grad():
        ours = handle.unet(x, t, context)
        _assert_parity(ours, reference(x, t, context).sample)
    assert ours.shape == (2, 4, 15, 13)


def test_sdxl_parity_with_text_time_embedding(fp32, oracle):
    handle, reference = _ours_and_theirs("sdxl", fp32, oracle)
    x, t, context = _inputs(handle.config)
    pooled = torch.randn(2, handle.config.adm_in_channels - 6 * 256)
    y = sdxl_label(pooled, width=1024, height=768, crop_w=16, crop_h=8, target_width=1152, target_height=896)
    time_ids = torch.tensor([[768.0, 1024.0, 8.0, 16.0, 896.0, 1152.0]] * 2)
    with torch.no_grad():
        added = {"text_embeds": pooled, "time_ids": time_ids}
        theirs = reference(x, t, context, added_cond_kwargs=added).sample
        _assert_parity(handle.unet(x, t, context, y=y), theirs)


def test_sdxl_refiner_parity(fp32, oracle):
    handle, reference = _ours_and_theirs("sdxl_refiner", fp32, oracle)
    x, t, context = _inputs(handle.config)
    pooled = torch.randn(2, handle.config.adm_in_channels - 5 * 256)
    y = sdxl_refiner_label(pooled, width=1024, height=1024, aesthetic_score=2.5)
    time_ids = torch.tensor([[1024.0, 1024.0, 0.0, 0.0, 2.5]] * 2)
    with torch.no_grad():
        added = {"text_embeds": pooled, "time_ids": time_ids}
        theirs = reference(x, t, context, added_cond_kwargs=added).sample
        _assert_parity(handle.unet(x, t, context, y=y), theirs)


def test_x4_upscaler_parity_with_noise_level_labels(fp32, oracle):
    handle, reference = _ours_and_theirs("sd_x4", fp32, oracle)
    assert handle.config.disable_self_attn == (False, True, False)
    x, t, context = _inputs(handle.config)
    noise_level = torch.tensor([20, 350])
    with torch.no_grad():
        _assert_parity(handle.unet(x, t, context, y=noise_level),
                       reference(x, t, context, class_labels=noise_level).sample)


def test_config_round_trips_through_the_state_dict():
    state_dict, metadata = tiny_checkpoint("sdxl_refiner", include_text=False)
    unet_sd = strip_prefix(state_dict, UNET_PREFIX)
    config = detect_unet(unet_sd, metadata).config
    rebuilt = UNetModel(config)
    assert set(rebuilt.state_dict()) == set(unet_sd)
    assert unet_config_from_state_dict(unet_sd, num_head_channels=8) == config


def test_fp16_weights_stay_fp16_and_compute_in_the_input_dtype(fp32):
    state_dict, metadata = tiny_checkpoint("sd1", include_text=False, dtype=torch.float16)
    unet_sd = strip_prefix(state_dict, UNET_PREFIX)
    handle = build_unet(unet_sd, detect_unet(unet_sd, metadata), compute=fp32)
    assert all(p.dtype == torch.float16 for p in handle.unet.parameters())
    x, t, context = _inputs(handle.config)
    out = handle.unet(x, t, context)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    reference = build_unet({k: v.float() for k, v in unet_sd.items()}, detect_unet(unet_sd, metadata),
                           compute=fp32).unet(x, t, context)
    torch.testing.assert_close(out, reference)


def test_missing_and_unexpected_weights_are_named():
    state_dict, metadata = tiny_checkpoint("sd1", include_text=False)
    unet_sd = strip_prefix(state_dict, UNET_PREFIX)
    config = detect_unet(unet_sd, metadata).config
    broken = dict(unet_sd)
    del broken["middle_block.1.proj_in.weight"]
    broken["input_blocks.1.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError) as info:
        adopt_weights(UNetModel(config), broken, what="sd1 UNet")
    message = str(info.value)
    assert "middle_block.1.proj_in.weight" in message and "input_blocks.1.0.extra.weight" in message


def test_label_input_is_required_and_unknown_arguments_refused(fp32):
    state_dict, metadata = tiny_checkpoint("sdxl", include_text=False)
    unet_sd = strip_prefix(state_dict, UNET_PREFIX)
    handle = build_unet(unet_sd, detect_unet(unet_sd, metadata), compute=fp32)
    x, t, context = _inputs(handle.config, batch=1)
    with pytest.raises(ValueError, match="label input y"):
        handle.unet(x, t, context)
    with pytest.raises(TypeError, match="not_an_input"):
        handle.unet(x, t, context, y=torch.zeros(1, handle.config.adm_in_channels), not_an_input={})


def test_timestep_embedding_is_cos_then_sin():
    emb = timestep_embedding(torch.tensor([0.0, 10.0]), 8)
    assert emb.shape == (2, 8)
    torch.testing.assert_close(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    freqs = torch.exp(-torch.log(torch.tensor(10000.0)) * torch.arange(4) / 4)
    torch.testing.assert_close(emb[1], torch.cat([torch.cos(10 * freqs), torch.sin(10 * freqs)]))


def test_bf16_compute_from_fp16_weights_tracks_fp32(fp32):
    """The default on CPUs with native bf16: weights stored fp16, cast per layer to bf16."""
    state_dict, metadata = tiny_checkpoint("sdxl", include_text=False, dtype=torch.float16)
    unet_sd = strip_prefix(state_dict, UNET_PREFIX)
    handle = build_unet(unet_sd, detect_unet(unet_sd, metadata), compute=fp32)
    x, t, context = _inputs(handle.config, batch=1)
    y = torch.randn(1, handle.config.adm_in_channels)
    with torch.no_grad():
        full = handle.unet(x, t, context, y=y)
        half = handle.unet(x.bfloat16(), t, context.bfloat16(), y=y.bfloat16())
    assert half.dtype == torch.bfloat16
    assert (half.float() - full).abs().max().item() < 0.05 * full.abs().max().item()
