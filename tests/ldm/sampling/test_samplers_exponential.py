"""SEEDS, exponential Heun, ER-SDE, RES multistep and SA-Solver as ODE solvers: on the Gaussian
toy the probability-flow ODE has a closed-form solution, so each solver's error and its order of
convergence are measured, not assumed; and the special cases the papers name must coincide."""

import functools

import pytest
import torch

from ldm.sampling.noise import StepNoiseSampler
from ldm.sampling.samplers import get_sampler
from ldm.sampling.samplers_er_sde import SOLVER_TYPES, noise_scaler_for, sample_er_sde
from ldm.sampling.samplers_sa_solver import sample_sa_solver
from ldm.sampling.samplers_seeds import sample_seeds_2, sample_seeds_3
from ldm.sampling.schedulers import calculate_sigmas

ODE = {"tau_func": lambda sigma: 0.0}
# name -> (sampler as an ODE solver, least error ratio when the steps double: ≈ 2^order)
SOLVERS = {
    "seeds_2": (functools.partial(sample_seeds_2, eta=0.0), 3.5),
    "seeds_2 phi_2": (functools.partial(sample_seeds_2, eta=0.0, solver_type="phi_2"), 3.5),
    "seeds_3": (functools.partial(sample_seeds_3, eta=0.0), 6.0),
    "exp_heun_2_x0": (get_sampler("exp_heun_2_x0").function, 3.5),
    "res_multistep": (get_sampler("res_multistep").function, 3.5),
    "er_sde ODE": (functools.partial(sample_er_sde, s_noise=0.0, noise_scaler=noise_scaler_for("ODE", 1.0)), 3.5),
    "sa_solver order 2": (functools.partial(sample_sa_solver, predictor_order=2, corrector_order=0, **ODE), 3.5),
    "sa_solver order 3": (functools.partial(sample_sa_solver, predictor_order=3, corrector_order=0, **ODE), 7.0),
    "sa_solver 3/4 pece": (functools.partial(sample_sa_solver, use_pece=True, **ODE), 7.0),
}


def ode_error(solver, toy, steps):
    """Largest error at the last sigma, on log-spaced sigmas 14.6 → 0.05 (no final 0), float64."""
    sigmas = torch.logspace(torch.log10(torch.tensor(14.6)), torch.log10(torch.tensor(0.05)), steps + 1,
                            dtype=torch.float64)
    x = torch.linspace(-3, 3, 64, dtype=torch.float64).reshape(1, 64) * sigmas[0]
    out = solver(toy.denoiser, x, sigmas)
    exact = toy.mu + (x - toy.mu) * ((toy.s ** 2 + sigmas[-1] ** 2) / (toy.s ** 2 + sigmas[0] ** 2)) ** 0.5
    return float((out - exact).abs().max())


@pytest.mark.parametrize("name", SOLVERS)
def test_convergence_order_on_the_exact_ode(name, toy):
    solver, least_ratio = SOLVERS[name]
    coarse, fine = ode_error(solver, toy, 16), ode_error(solver, toy, 32)
    assert fine < 0.01
    assert coarse / fine > least_ratio


def test_seeds_2_without_noise_is_dpm_solver_pp_2s(toy, sd_sampling):
    # eta = 0, r = 1/2, phi_1: the midpoint in lambda and its x0 alone, DPM-Solver++(2S).
    sigmas = calculate_sigmas(sd_sampling, "karras", 8)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * sigmas[0]
    ours = sample_seeds_2(toy.denoiser, x, sigmas, eta=0.0)
    reference = get_sampler("dpmpp_2s_ancestral").function(toy.denoiser, x, sigmas, eta=0.0,
                                                           noise_sampler=lambda a, b: torch.zeros_like(x))
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_exp_heun_is_seeds_2_at_the_step_end(toy, sd_sampling):
    sigmas = calculate_sigmas(sd_sampling, "karras", 6)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * sigmas[0]
    torch.testing.assert_close(get_sampler("exp_heun_2_x0").function(toy.denoiser, x, sigmas),
                               sample_seeds_2(toy.denoiser, x, sigmas, eta=0.0, r=1.0, solver_type="phi_2"))
    noisy = get_sampler("exp_heun_2_x0_sde").function(toy.denoiser, x, sigmas, noise_sampler=StepNoiseSampler(x, 4))
    again = sample_seeds_2(toy.denoiser, x, sigmas, r=1.0, solver_type="phi_2", noise_sampler=StepNoiseSampler(x, 4))
    torch.testing.assert_close(noisy, again)
    with pytest.raises(ValueError, match="solver_type"):
        sample_seeds_2(toy.denoiser, x, sigmas, solver_type="phi_3")


def test_er_sde_noise_scalers():
    x = torch.tensor([0.5, 2.0, 9.0])
    for solver_type in SOLVER_TYPES:  # eta = 0 is the ODE, phi(x) = x, for every type
        torch.testing.assert_close(noise_scaler_for(solver_type, 0.0)(x), x)
    torch.testing.assert_close(noise_scaler_for("Reverse-time SDE", 1.0)(x), x ** 2)
    torch.testing.assert_close(noise_scaler_for("ER-SDE", 1.0)(x), x * (torch.exp(x ** 0.3) + 10))
    with pytest.raises(ValueError, match="solver type"):
        noise_scaler_for("SDE", 1.0)


@pytest.mark.parametrize("solver_type", ["ER-SDE", "Reverse-time SDE"])
def test_er_sde_samples_keep_the_data_variance(solver_type, toy, sd_sampling, start_noise):
    # The stochastic members add exactly the noise their scaler removes; a wrong noise term shows
    # as a wrong spread of the samples.
    sigmas = calculate_sigmas(sd_sampling, "karras", 40)
    x = start_noise * sigmas[0]
    out = sample_er_sde(toy.denoiser, x, sigmas, noise_sampler=StepNoiseSampler(x, 9),
                        noise_scaler=noise_scaler_for(solver_type, 1.0))
    assert abs(float(out.mean()) - toy.mu) < 0.04
    assert abs(float(out.std()) / toy.s - 1) < 0.05
