"""ldm.patches.freeu against diffusers' FreeU (fourier_filter, apply_freeu) and the FreeU v2 rule."""

from __future__ import annotations

import pytest
import torch
from diffusers.utils.torch_utils import apply_freeu, fourier_filter as diffusers_fourier_filter

from ldm.patches.freeu import fourier_filter, freeu_output_patch

MODEL_CHANNELS = 32


def features(channels: int, seed: int = 0, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, channels, size, size, generator=g), torch.randn(2, channels, size, size, generator=g)


@pytest.mark.parametrize("size", [8, 6])
def test_fourier_filter_matches_diffusers(size):
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(fourier_filter(x, 1, 0.2), diffusers_fourier_filter(x, 1, 0.2))
    torch.testing.assert_close(fourier_filter(x, 1, 1.0), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("level", "channels"), [(0, 4 * MODEL_CHANNELS), (1, 2 * MODEL_CHANNELS)])
def test_freeu_matches_diffusers_apply_freeu(level, channels):
    b1, b2, s1, s2 = 1.1, 1.2, 0.9, 0.2
    patch = freeu_output_patch(MODEL_CHANNELS, b1, b2, s1, s2, version=1)
    h, skip = features(channels)
    got_h, got_skip = patch(h.clone(), skip.clone(), {})
    want_h, want_skip = apply_freeu(level, h.clone(), skip.clone(), b1=b1, b2=b2, s1=s1, s2=s2)
    torch.testing.assert_close(got_h, want_h)
    torch.testing.assert_close(got_skip, want_skip)
    assert not torch.allclose(got_h, h) and not torch.allclose(got_skip, skip)


@pytest.mark.parametrize("version", [1, 2])
def test_neutral_factors_and_other_widths_leave_features_alone(version):
    patch = freeu_output_patch(MODEL_CHANNELS, 1.0, 1.0, 1.0, 1.0, version)
    h, skip = features(2 * MODEL_CHANNELS)
    got_h, got_skip = patch(h, skip, {})
    torch.testing.assert_close(got_h, h, atol=1e-6, rtol=0)
    torch.testing.assert_close(got_skip, skip, atol=1e-6, rtol=0)
    strong = freeu_output_patch(MODEL_CHANNELS, 2.0, 2.0, 0.1, 0.1, version)
    h, skip = features(MODEL_CHANNELS)  # the top level is never touched
    got_h, got_skip = strong(h, skip, {})
    assert got_h is h and got_skip is skip


def test_freeu_v2_scales_by_normalised_channel_mean():
    b2 = 1.4
    patch = freeu_output_patch(MODEL_CHANNELS, 1.3, b2, 0.9, 0.2, version=2)
    h, skip = features(2 * MODEL_CHANNELS, seed=4)
    got_h, got_skip = patch(h.clone(), skip.clone(), {})
    half = h.shape[1] // 2
    for i in range(h.shape[0]):  # per image, the paper's rule written out
        mean = h[i].mean(0)
        weight = (mean - mean.min()) / (mean.max() - mean.min())
        torch.testing.assert_close(got_h[i, :half], h[i, :half] * (1 + (b2 - 1) * weight))
    torch.testing.assert_close(got_h[:, half:], h[:, half:])
    torch.testing.assert_close(got_skip, diffusers_fourier_filter(skip, 1, 0.2))
