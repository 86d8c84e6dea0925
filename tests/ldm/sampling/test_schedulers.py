import math

import numpy
import pytest
import scipy.stats
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler

from ldm.sampling.beta_distribution import beta_cdf, beta_ppf
from ldm.sampling.schedulers import SCHEDULER_NAMES, SCHEDULERS, calculate_sigmas, kl_optimal_sigmas

SD = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def test_scheduler_names_are_comfyuis():
    assert SCHEDULER_NAMES == ("simple", "sgm_uniform", "karras", "exponential", "ddim_uniform",
                               "beta", "normal", "linear_quadratic", "kl_optimal")


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
@pytest.mark.parametrize("steps", [1, 7, 20])
def test_every_scheduler_decreases_to_zero(name, steps, sd_sampling):
    sigmas = calculate_sigmas(sd_sampling, name, steps)
    assert sigmas.dtype == torch.float32
    assert float(sigmas[-1]) == 0.0
    assert torch.all(sigmas[:-1] > sigmas[1:])
    assert float(sigmas[0]) <= float(sd_sampling.sigma_max) * (1 + 1e-5)
    if name not in ("beta", "ddim_uniform"):
        assert len(sigmas) == steps + 1
    if name not in ("ddim_uniform",):
        assert float(sigmas[0]) == pytest.approx(float(sd_sampling.sigma_max), rel=1e-5)


def test_unknown_scheduler_is_rejected(sd_sampling):
    with pytest.raises(ValueError, match="unknown scheduler"):
        calculate_sigmas(sd_sampling, "nope", 5)


def test_karras_matches_diffusers(sd_sampling):
    ref = EulerDiscreteScheduler(**SD, use_karras_sigmas=True)
    ref.set_timesteps(25)
    torch.testing.assert_close(calculate_sigmas(sd_sampling, "karras", 25), ref.sigmas.float(),
                               rtol=1e-5, atol=1e-6)


def test_exponential_matches_diffusers(sd_sampling):
    ref = EulerDiscreteScheduler(**SD, use_exponential_sigmas=True)
    ref.set_timesteps(25)
    torch.testing.assert_close(calculate_sigmas(sd_sampling, "exponential", 25), ref.sigmas.float(),
                               rtol=1e-5, atol=1e-6)


def test_simple_is_diffusers_trailing_spacing(sd_sampling):
    # Equal when 1000 / steps is an integer: trailing rounds, ComfyUI's "simple" truncates.
    ref = EulerDiscreteScheduler(**SD, timestep_spacing="trailing")
    ref.set_timesteps(20)
    torch.testing.assert_close(calculate_sigmas(sd_sampling, "simple", 20), ref.sigmas.float(),
                               rtol=1e-5, atol=0)


def test_ddim_uniform_is_ddims_leading_spacing_with_offset_one(sd_sampling):
    ref = DDIMScheduler(**SD, steps_offset=1, timestep_spacing="leading")
    ref.set_timesteps(25)
    ab = ref.alphas_cumprod[ref.timesteps]
    expected = torch.cat([((1 - ab) / ab) ** 0.5, torch.zeros(1)])
    torch.testing.assert_close(calculate_sigmas(sd_sampling, "ddim_uniform", 25), expected.float(),
                               rtol=2e-5, atol=0)


def test_ddim_uniform_can_give_more_steps_like_comfyui(sd_sampling):
    # 1000 // 30 = 33 and 1, 34, …, 991 are 31 timesteps (ComfyUI behaves the same way).
    assert len(calculate_sigmas(sd_sampling, "ddim_uniform", 30)) == 32


def test_sgm_uniform_and_normal_timesteps(sd_sampling):
    sgm = calculate_sigmas(sd_sampling, "sgm_uniform", 10)
    torch.testing.assert_close(sgm[:-1], sd_sampling.sigma(torch.linspace(999, 0, 11)[:-1]))
    normal = calculate_sigmas(sd_sampling, "normal", 10)
    torch.testing.assert_close(normal[:-1], sd_sampling.sigma(torch.linspace(999, 0, 10)))
    assert float(normal[-2]) == pytest.approx(float(sd_sampling.sigma_min))


def test_beta_scheduler_matches_the_scipy_quantiles(sd_sampling):
    for steps in (5, 20, 60):
        q = 1 - numpy.linspace(0, 1, steps, endpoint=False)
        t = numpy.rint(scipy.stats.beta.ppf(q, 0.6, 0.6) * 999)
        expected, last = [], None
        for ti in t:
            if ti != last:
                expected.append(float(sd_sampling.sigmas[int(ti)]))
            last = ti
        torch.testing.assert_close(calculate_sigmas(sd_sampling, "beta", steps),
                                   torch.tensor(expected + [0.0]))


@pytest.mark.parametrize("a,b", [(0.6, 0.6), (0.5, 2.0), (2.0, 5.0), (1.0, 1.0), (3.0, 0.3)])
def test_beta_quantiles_match_scipy(a, b):
    for p in (1e-9, 1e-4, 0.01, 0.2, 0.5, 0.77, 0.99, 1 - 1e-7):
        assert beta_ppf(p, a, b) == pytest.approx(float(scipy.stats.beta.ppf(p, a, b)), abs=1e-9)
        x = beta_ppf(p, a, b)
        if x < 1 - 1e-9:  # closer to 1 the quantile is not representable in float64
            assert beta_cdf(x, a, b) == pytest.approx(p, rel=1e-9)
    assert beta_ppf(0.0, a, b) == 0.0 and beta_ppf(1.0, a, b) == 1.0


def test_kl_optimal_is_uniform_in_arctan():
    sigmas = kl_optimal_sigmas(6, 0.03, 14.6)
    angles = torch.atan(sigmas[:-1].double())
    torch.testing.assert_close(angles[:-1] - angles[1:], torch.full((5,), (math.atan(14.6) - math.atan(0.03)) / 5,
                                                                   dtype=torch.float64), rtol=1e-5, atol=1e-6)
    assert float(sigmas[0]) == pytest.approx(14.6, rel=1e-5) and float(sigmas[-2]) == pytest.approx(0.03, rel=1e-5)


def test_linear_quadratic_shape(sd_sampling):
    sigmas = calculate_sigmas(sd_sampling, "linear_quadratic", 10)
    fraction = 1 - sigmas / sd_sampling.sigma_max
    # The first half of the steps removes noise linearly up to threshold 0.025 …
    torch.testing.assert_close(fraction[:6], torch.arange(6) * 0.025 / 5, atol=1e-6, rtol=0)
    # … the rest quadratically to all of it.
    assert float(fraction[-1]) == pytest.approx(1.0)
    assert torch.all(torch.diff(fraction[5:], n=2) > 0)
