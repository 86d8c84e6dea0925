"""ldm.sampling.sigma_ops: the custom-sampling nodes' sigma operations."""

from __future__ import annotations

import torch

from ldm.sampling.sigma_ops import flip_sigmas, scheduled_sigmas, sd_turbo_sigmas, split_sigmas, split_sigmas_denoise
from ldm.sampling.schedulers import calculate_sigmas


def test_scheduled_sigmas_denoise_rule(sd_sampling):
    torch.testing.assert_close(scheduled_sigmas(sd_sampling, "karras", 10), calculate_sigmas(sd_sampling, "karras", 10))
    torch.testing.assert_close(scheduled_sigmas(sd_sampling, "normal", 6, 0.4),
                               calculate_sigmas(sd_sampling, "normal", 15)[-7:])
    assert scheduled_sigmas(sd_sampling, "normal", 6, 0.0).shape == (0,)


def test_sd_turbo_timesteps(sd_sampling):
    one = sd_turbo_sigmas(sd_sampling, 1)
    torch.testing.assert_close(one, torch.tensor([float(sd_sampling.sigmas[999]), 0.0]))
    four = sd_turbo_sigmas(sd_sampling, 4)
    torch.testing.assert_close(four[:-1], sd_sampling.sigmas[[999, 899, 799, 699]])
    half = sd_turbo_sigmas(sd_sampling, 2, denoise=0.5)  # starts 5 timesteps in: 499, 399
    torch.testing.assert_close(half[:-1], sd_sampling.sigmas[[499, 399]])
    # int(10 · 0.25) = 2 timesteps are left (199, 99), whatever steps asks for
    torch.testing.assert_close(sd_turbo_sigmas(sd_sampling, 10, denoise=0.25)[:-1], sd_sampling.sigmas[[199, 99]])


def test_split_sigmas_shares_the_split_sigma():
    sigmas = torch.linspace(10, 0, 6)
    high, low = split_sigmas(sigmas, 2)
    assert high.tolist() == [10, 8, 6] and low.tolist() == [6, 4, 2, 0]


def test_split_sigmas_denoise():
    sigmas = torch.linspace(10, 0, 11)  # 10 steps
    high, low = split_sigmas_denoise(sigmas, 0.3)
    assert high.tolist() == sigmas[:8].tolist() and low.tolist() == sigmas[7:].tolist()
    high, low = split_sigmas_denoise(sigmas, 1.0)
    assert high.tolist() == [10.0] and torch.equal(low, sigmas)
    high, low = split_sigmas_denoise(sigmas, 0.0)  # ComfyUI gives an empty high half here
    assert torch.equal(high, sigmas) and low.tolist() == [0.0]


def test_flip_sigmas():
    sigmas = torch.tensor([3.0, 1.0, 0.0])
    torch.testing.assert_close(flip_sigmas(sigmas), torch.tensor([0.0001, 1.0, 3.0]))
    assert sigmas.tolist() == [3.0, 1.0, 0.0]  # input untouched
    assert flip_sigmas(torch.tensor([3.0, 1.0])).tolist() == [1.0, 3.0]
    assert flip_sigmas(torch.zeros(0)).shape == (0,)
