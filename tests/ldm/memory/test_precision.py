"""Precision policy: device defaults, the precision flags, and the VAE's fp16 overflow fallback."""

from __future__ import annotations

import logging

import pytest
import torch

from ldm.devices import PrecisionOptions, apply_precision, detect_compute
from ldm.model import build_vae
from ldm.tiny import tiny_vae_state_dict


@pytest.fixture
def cpuinfo(tmp_path):
    fast = tmp_path / "bf16"
    fast.write_text("flags\t\t: fpu avx512f avx512_bf16\n")
    plain = tmp_path / "plain"
    plain.write_text("flags\t\t: fpu avx2\n")
    return fast, plain


def test_cpu_defaults(cpuinfo):
    fast, plain = cpuinfo
    settings = detect_compute("cpu", cpuinfo_path=fast)
    assert (settings.dtype, settings.vae_dtype, settings.text_dtype) == (torch.bfloat16, torch.bfloat16,
                                                                         torch.float32)
    assert settings.channels_last and settings.unet_weight_dtype == torch.bfloat16
    assert settings.vae_device == torch.device("cpu")
    assert detect_compute("cpu", cpuinfo_path=plain).dtype == torch.float32


def test_flags(cpuinfo):
    fast, _ = cpuinfo
    base = detect_compute("cpu", cpuinfo_path=fast)
    fp8 = apply_precision(base, PrecisionOptions(unet="fp8_e4m3fn"))
    assert fp8.dtype == torch.bfloat16 and fp8.unet_weight_dtype == torch.float8_e4m3fn
    assert apply_precision(base, PrecisionOptions(unet="fp32")).unet_weight_dtype == torch.float32
    forced = apply_precision(base, PrecisionOptions(force_fp32=True))
    assert {forced.dtype, forced.vae_dtype, forced.text_dtype} == {torch.float32}
    vae = apply_precision(base, PrecisionOptions(vae="fp32"))
    assert vae.vae_dtype == torch.float32 and vae.dtype == torch.bfloat16
    assert "VAE fp32" in vae.reason
    slow = apply_precision(base, PrecisionOptions(unet="fp16"))
    assert slow.dtype == torch.float16 and "slow" in slow.reason
    with pytest.raises(ValueError):
        PrecisionOptions(unet="fp4")


def test_cpu_vae_flag_moves_only_the_vae(cpuinfo):
    fast, _ = cpuinfo
    settings = detect_compute("cpu", cpuinfo_path=fast)
    moved = apply_precision(settings, PrecisionOptions(cpu_vae=True), cpuinfo_path=fast)
    assert moved.vae_device == torch.device("cpu") and moved.vae_dtype == torch.bfloat16


def test_fp16_vae_overflow_is_redone_in_the_fallback_dtype(caplog):
    weights = tiny_vae_state_dict()
    weights["decoder.conv_out.weight"] = weights["decoder.conv_out.weight"] * 1e5  # beyond fp16's 65504
    compute = detect_compute("cpu", force_dtype=torch.float16)
    stored = {k: v.half() if k != "decoder.conv_out.weight" else v for k, v in weights.items()}
    vae = build_vae(stored, compute=compute)
    assert vae.dtype == torch.float16 and vae.fallback_dtype == torch.float32
    latents = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    with caplog.at_level(logging.WARNING, logger="ldm.vae"):
        image = vae.decode(latents)
    assert torch.isfinite(image).all()
    assert "overflowed in float16" in caplog.text
    fp32 = build_vae({k: v.float() for k, v in stored.items()},
                     compute=detect_compute("cpu", force_dtype=torch.float32))
    torch.testing.assert_close(image, fp32.decode(latents), atol=1e-5, rtol=0)
