"""ldm.sampling.schedulers_extra and sigma_edits: formula schedules, published tables, SIGMAS edits."""

import math

import numpy
import pytest
import torch
from diffusers.schedulers.scheduling_utils import AysSchedules

from ldm.sampling import schedulers_extra as extra
from ldm.sampling import sigma_edits
from ldm.sampling.model_sampling import model_sampling
from ldm.sampling.noise_level_tables import GITS
from ldm.sampling.schedulers import exponential_sigmas


@pytest.mark.parametrize("model_type,reference", [("SD1", "StableDiffusionSigmas"),
                                                  ("SDXL", "StableDiffusionXLSigmas"),
                                                  ("SVD", "StableDiffusionVideoSigmas")])
def test_align_your_steps_is_nvidias_schedule(model_type, reference):
    # diffusers ships NVIDIA's 10-step schedules too, re-derived from rounded timesteps (within 1.5 %).
    sigmas = extra.align_your_steps_sigmas(model_type, 10)
    assert sigmas.dtype == torch.float32
    assert sigmas.tolist() == pytest.approx(AysSchedules[reference], rel=0.015)


def test_table_schedules_resample_in_log_sigma_and_honour_denoise():
    ten = extra.align_your_steps_sigmas("SD1", 10)
    twenty = extra.align_your_steps_sigmas("SD1", 20)
    assert len(twenty) == 21 and float(twenty[-1]) == 0.0
    # every other sigma of the 20-step schedule is a table sigma; between them the log midpoint
    torch.testing.assert_close(twenty[:-1:2], ten[:-1])
    assert float(twenty[1]) == pytest.approx(math.sqrt(float(ten[0]) * float(ten[1])), rel=1e-5)
    half = extra.align_your_steps_sigmas("SD1", 10, denoise=0.5)
    torch.testing.assert_close(half[:-1], ten[5:-1])
    assert len(half) == 6 and float(half[-1]) == 0.0
    assert len(extra.align_your_steps_sigmas("SD1", 10, denoise=0.0)) == 0
    optimal = extra.optimal_steps_sigmas("FLUX", 10)
    assert optimal[:-1].tolist() == pytest.approx([0.9968, 0.9886, 0.9819, 0.975, 0.966, 0.9471, 0.9158, 0.8287,
                                                   0.5512, 0.2808], rel=1e-6)
    assert len(extra.optimal_steps_sigmas("Wan", 30)) == 31


def test_gits_picks_the_table_for_the_step_count():
    for steps in (2, 10, 20):
        sigmas = extra.gits_sigmas(1.2, steps)
        table = GITS[1.20][steps - 2]
        assert len(sigmas) == steps + 1 and float(sigmas[-1]) == 0.0
        assert sigmas[:-1].tolist() == pytest.approx(table[:-1], rel=1e-6)
    long = extra.gits_sigmas(0.8, 40)  # beyond 20 steps: the 20-step table, resampled
    assert len(long) == 41 and long[:-1:2].tolist() == pytest.approx(GITS[0.80][-1][:-1], rel=1e-5)
    assert extra.gits_sigmas(1.05, 10, denoise=0.3).tolist() == pytest.approx(
        list(GITS[1.05][8][-4:-1]) + [0.0], rel=1e-6)
    with pytest.raises(ValueError, match="coeff"):
        extra.gits_sigmas(0.83, 10)
    # every table runs from SD's sigma_max down to its sigma_min
    assert {row[0] for rows in GITS.values() for row in rows} == {14.61464119}
    assert {row[-1] for rows in GITS.values() for row in rows} == {0.02916753}


def test_polyexponential_is_polynomial_in_log_sigma():
    torch.testing.assert_close(extra.polyexponential_sigmas(7, 0.03, 14.6, 1.0), exponential_sigmas(7, 0.03, 14.6))
    sigmas = extra.polyexponential_sigmas(5, 0.1, 10.0, 2.0)
    ramp = numpy.linspace(1, 0, 5) ** 2
    expected = numpy.exp(math.log(0.1) + ramp * (math.log(10.0) - math.log(0.1)))
    assert sigmas.tolist() == pytest.approx(list(expected) + [0.0], rel=1e-6)


def test_vp_is_the_continuous_vp_sde():
    sigmas = extra.vp_sigmas(4, beta_d=19.9, beta_min=0.1, eps_s=1e-3)
    t = numpy.linspace(1, 1e-3, 4)
    # alpha_bar(t) = exp(-beta_min·t - beta_d·t²/2) and sigma = sqrt((1 - alpha_bar)/alpha_bar)
    alpha_bar = numpy.exp(-0.1 * t - 19.9 * t ** 2 / 2)
    assert sigmas.tolist() == pytest.approx(list(numpy.sqrt((1 - alpha_bar) / alpha_bar)) + [0.0], rel=1e-5)


def test_laplace_puts_log_sigma_at_laplace_quantiles():
    sigmas = extra.laplace_sigmas(9, 0.03, 14.6, mu=0.0, beta=0.5)
    assert len(sigmas) == 9  # no final 0, as ComfyUI
    assert float(sigmas[4]) == pytest.approx(1.0, rel=1e-4)  # the median is e^mu
    assert float(sigmas[0]) == pytest.approx(14.6) and float(sigmas[-1]) == pytest.approx(0.03)  # clamped
    # decreasing through the quantiles of Laplace(0, b): at a quarter of the way, b·log 2 above the median
    assert math.log(float(sigmas[2])) == pytest.approx(0.5 * math.log(2), abs=1e-4)
    assert all(a >= b for a, b in zip(sigmas[:-1].tolist(), sigmas[1:].tolist()))


def test_sigma_edits():
    sigmas = torch.tensor([14.0, 10.0, 6.0, 2.0, 0.0])
    first = sigma_edits.set_first_sigma(sigmas, 136.0)
    assert first.tolist() == [136.0, 10.0, 6.0, 2.0, 0.0] and float(sigmas[0]) == 14.0
    extended = sigma_edits.extend_intermediate_sigmas(sigmas, 2, -1.0, 6.0, "linear")
    assert extended.tolist() == [14.0, 12.0, 10.0, 8.0, 6.0, 4.0, 2.0, 0.0]
    cosine = sigma_edits.extend_intermediate_sigmas(sigmas, 3, 11.0, 9.0, "cosine")
    assert cosine.tolist() == pytest.approx([14.0, 10.0, 10 - 4 * 0.5, 10 - 4 * math.sqrt(3) / 2, 6.0, 2.0, 0.0])
    assert sigma_edits.parse_sigmas("14.6, 7 ,3.5;1 0").tolist() == pytest.approx([14.6, 7, 3.5, 1, 0])
    assert sigma_edits.parse_sigmas("1, 0.5").dtype == torch.float32


def test_sampling_percent_to_sigma_and_noising():
    sampling = model_sampling("eps")
    assert sigma_edits.sampling_percent_to_sigma(sampling, 0.5) == pytest.approx(sampling.percent_to_sigma(0.5))
    assert sigma_edits.sampling_percent_to_sigma(sampling, 0.0) > 1e8
    assert sigma_edits.sampling_percent_to_sigma(sampling, 0.0, True) == pytest.approx(float(sampling.sigma_max))
    assert sigma_edits.sampling_percent_to_sigma(sampling, 1.0) == 0.0
    assert sigma_edits.sampling_percent_to_sigma(sampling, 1.0, True) == pytest.approx(float(sampling.sigma_min))
    latent, noise = torch.full((1, 4, 2, 2), 2.0), torch.ones(1, 4, 2, 2)
    double = lambda t: t * 2  # noqa: E731
    half = lambda t: t / 2  # noqa: E731
    noisy = sigma_edits.noise_latent(sampling, noise, latent, torch.tensor([3.0, 1.0, 0.5]), double, half)
    torch.testing.assert_close(noisy, (latent * 2 + noise * 2.5) / 2)  # sigma = |3 - 0.5|
    empty = sigma_edits.noise_latent(sampling, noise, torch.zeros(1, 4, 2, 2), torch.tensor([3.0]), double, half)
    torch.testing.assert_close(empty, noise * 3 / 2)  # an empty latent is not shifted in
