"""SA-Solver (ldm.sampling.samplers_sa_solver) against diffusers' SASolverScheduler.

diffusers builds the Adams weights from closed-form exponential integrals and a Lagrange
basis; ours integrate numerically, so equal weights check both. Full runs agree at predictor
and corrector order 1, with and without noise (diffusers adds its own order-2 correction term
to higher orders, which ComfyUI's solver does not have)."""

import math

import pytest
import torch
from diffusers import SASolverScheduler

from ldm.sampling.model_sampling import model_sampling
from ldm.sampling.samplers import get_sampler
from ldm.sampling.samplers_sa_solver import (adams_coefficients, sample_sa_solver, simple_order_2_coefficients,
                                             tau_interval)
from tests.ldm.sampling.test_diffusers_parity import SD, LinearEpsModel

LAMBDAS = [-1.0, -1.3, -1.7, -2.2]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("tau", [0.0, 1.0])
def test_adams_weights_equal_diffusers(order, tau):
    reference = SASolverScheduler(**SD, algorithm_type="data_prediction")
    lambda_s, lambda_t = torch.tensor(-1.0, dtype=torch.float64), torch.tensor(-0.6, dtype=torch.float64)
    points = [torch.tensor(v, dtype=torch.float64) for v in LAMBDAS[:order]]
    expected = reference.get_coefficients_fn(order, lambda_s, lambda_t, points, torch.tensor(tau, dtype=torch.float64))
    # diffusers leaves exp((1+tau²)·lambda_t) and (1+tau²) in its update; alpha_t = 1 here.
    expected = [float(c * (1 + tau ** 2) * torch.exp(-(1 + tau ** 2) * lambda_t)) for c in expected]
    ours = adams_coefficients(LAMBDAS[:order], -1.0, -0.6, tau)
    assert ours == pytest.approx(expected, abs=1e-12)


def test_simple_order_2_weights_sum_to_the_exponential_integral():
    # Both forms integrate a constant exactly: the weights sum to 1 - e^{-(1+tau²)h}.
    for corrector in (True, False):
        weights = simple_order_2_coefficients([-1.3, -1.0], -1.0, -0.6, 0.5, corrector)
        assert sum(weights) == pytest.approx(1 - math.exp(-0.4 * 1.25), abs=1e-12)
    full = adams_coefficients([-1.3, -1.0], -1.0, -0.6, 0.5)
    assert sum(full) == pytest.approx(sum(weights), abs=1e-12)


@pytest.mark.parametrize("tau", [0.0, 0.7])
def test_first_order_run_equals_diffusers(tau):
    model = LinearEpsModel()
    start = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(7))
    reference = SASolverScheduler(**SD, predictor_order=1, corrector_order=1, tau_func=lambda t: tau,
                                  algorithm_type="data_prediction", lower_order_final=False)
    reference.set_timesteps(12)
    generator = torch.Generator().manual_seed(3)
    sample = start.clone()
    for i, t in enumerate(reference.timesteps):
        sample = reference.step(model.eps(sample, reference.sigmas[i]), t, sample, generator=generator).prev_sample
    sigmas = reference.sigmas.float()
    assert float(sigmas[-1]) > 0  # diffusers stops at the smallest sigma here; both do
    # diffusers draws one noise per step from its generator; ours asks once per predictor step.
    ours_generator = torch.Generator().manual_seed(3)
    out = sample_sa_solver(model.denoiser, start * (1 + sigmas[0] ** 2) ** 0.5, sigmas,
                           noise_sampler=lambda s, s_next: torch.randn(1, 4, 8, 8, generator=ours_generator),
                           tau_func=lambda sigma: tau, predictor_order=1, corrector_order=1)
    torch.testing.assert_close(out / (1 + sigmas[-1] ** 2) ** 0.5, sample, atol=1e-4, rtol=1e-5)


def test_tau_interval_and_the_default_sde_interval(toy):
    tau = tau_interval(5.0, 1.0, eta=0.8)
    assert [tau(s) for s in (6.0, 5.0, 2.0, 1.0, 0.5)] == [0.0, 0.8, 0.8, 0.0, 0.0]
    assert tau_interval(5.0, 1.0, eta=0.0)(2.0) == 0.0
    sampling = model_sampling("eps")
    sigmas = torch.tensor([14.6, 8.0, 4.0, 2.0, 1.0, 0.5, 0.2, 0.0])
    x = torch.randn(1, 16, generator=torch.Generator().manual_seed(0)) * sigmas[0]
    with pytest.raises(ValueError, match="model_sampling"):
        sample_sa_solver(toy.denoiser, x, sigmas)
    # The default interval (20 % … 80 % of the run) is noisy; tau 0 everywhere is not.
    calls = []

    def noise(sigma, sigma_next):
        calls.append((float(sigma), float(sigma_next)))
        return torch.zeros_like(x)

    sample_sa_solver(toy.denoiser, x, sigmas, extra_args={"model_sampling": sampling}, noise_sampler=noise)
    high, low = sampling.percent_to_sigma(0.2), sampling.percent_to_sigma(0.8)
    assert calls and all(high >= s_next > low for _, s_next in calls)
    assert {s_next for _, s_next in calls} == {float(s) for s in sigmas[1:] if high >= float(s) > low}


def test_pece_evaluates_twice_per_corrected_step(toy):
    sigmas = torch.tensor([14.6, 8.0, 4.0, 2.0, 1.0, 0.5, 0.0])
    x = torch.zeros(1, 4)
    quiet = {"tau_func": lambda sigma: 0.0}
    get_sampler("sa_solver").function(toy.denoiser, x, sigmas, **quiet)
    plain_calls, toy.calls = toy.calls, 0
    get_sampler("sa_solver_pece").function(toy.denoiser, x, sigmas, **quiet)
    # The corrector runs from the second step on; PECE re-evaluates after each correction.
    assert plain_calls == len(sigmas) - 1 and toy.calls == plain_calls + len(sigmas) - 2
