"""ldm.sampling.cfg_rescale: RescaleCFG's hook (Lin et al. 2023, section 3.4)."""

from __future__ import annotations

import torch

from ldm.sampling.cfg_rescale import rescale_cfg_function
from ldm.sampling.hooks import SamplingHooks
from ldm.sampling.guidance import GuidedModel, cfg_combine
from ldm.sampling.model_sampling import model_sampling


def _v(x, x0, sigma):
    sigma = sigma.reshape(-1, 1, 1, 1)
    alpha, sigma_vp = 1 / (sigma ** 2 + 1) ** 0.5, sigma / (sigma ** 2 + 1) ** 0.5
    eps = (x - x0) / sigma
    return alpha * eps - sigma_vp * x0  # v = alpha·eps - sigma·x0 in VP space (Salimans & Ho 2022)


def _case(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 5, 5, generator=g) * 3
    cond, uncond = torch.randn(2, 4, 5, 5, generator=g), torch.randn(2, 4, 5, 5, generator=g)
    return x, cond, uncond, torch.tensor([2.5, 0.7])


def _guided(hook=None):
    options = {"sampler_cfg_function": hook} if hook else {}
    return GuidedModel(apply_model=None, sampling=model_sampling(), hooks=SamplingHooks.from_model_options(options))


def test_multiplier_zero_is_plain_cfg():
    x, cond, uncond, sigma = _case()
    plain = cfg_combine(_guided(), cond, uncond, 7.0, x, sigma)
    rescaled = cfg_combine(_guided(rescale_cfg_function(0.0)), cond, uncond, 7.0, x, sigma)
    torch.testing.assert_close(rescaled, plain, atol=1e-5, rtol=1e-5)


def test_full_rescale_matches_the_conditional_std_in_v_space():
    x, cond, uncond, sigma = _case(1)
    out = cfg_combine(_guided(rescale_cfg_function(1.0)), cond, uncond, 7.0, x, sigma)
    v_out, v_cond = _v(x, out, sigma), _v(x, cond, sigma)
    v_cfg = _v(x, uncond, sigma) + 7.0 * (v_cond - _v(x, uncond, sigma))
    for i in range(2):
        assert torch.isclose(v_out[i].std(), v_cond[i].std(), rtol=1e-4)
        # same direction as the guided v: only its scale changed
        ratio = v_out[i] / v_cfg[i]
        torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio.mean())), atol=1e-3, rtol=1e-3)


def test_partial_rescale_blends_linearly():
    x, cond, uncond, sigma = _case(2)
    plain = cfg_combine(_guided(rescale_cfg_function(0.0)), cond, uncond, 5.0, x, sigma)
    full = cfg_combine(_guided(rescale_cfg_function(1.0)), cond, uncond, 5.0, x, sigma)
    partial = cfg_combine(_guided(rescale_cfg_function(0.7)), cond, uncond, 5.0, x, sigma)
    torch.testing.assert_close(partial, 0.7 * full + 0.3 * plain, atol=1e-4, rtol=1e-4)
