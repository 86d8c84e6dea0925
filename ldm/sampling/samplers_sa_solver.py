"""SA-Solver: stochastic Adams predictor-corrector in data prediction (Xue et al. 2023,
"SA-Solver: Stochastic Adams Solver for Fast Sampling of Diffusion Models", NeurIPS,
arXiv:2309.05019; reference code scxue/SA-Solver).

Variance-exploding form (alpha = 1, lambda = -log sigma). ``tau(sigma)`` is the SDE's
stochasticity at each step (0: the ODE); :func:`tau_interval` is the usual choice, ``eta`` on
an interval of sigmas and 0 elsewhere.
"""

from __future__ import annotations

from typing import Callable

import numpy
import torch
from torch import Tensor

from ldm.sampling.noise import NoiseSampler
from ldm.sampling.sampler_common import Callback, Denoiser, batch_sigma, report, require_noise

TauFunction = Callable[[float], float]
#: Share of the sampling run (start, end) where the default tau is 1, as ComfyUI's default.
DEFAULT_SDE_PERCENTS = (0.2, 0.8)
_NODES, _WEIGHTS = numpy.polynomial.legendre.leggauss(24)


def tau_interval(start_sigma: float, end_sigma: float, eta: float = 1.0) -> TauFunction:
    """tau = eta for start_sigma ≥ sigma > end_sigma, 0 elsewhere (and everywhere when eta ≤ 0)."""
    def tau(sigma: float) -> float:
        return eta if eta > 0 and start_sigma >= float(sigma) > end_sigma else 0.0
    return tau


def adams_coefficients(lambdas: list[float], lambda_s: float, lambda_t: float, tau: float) -> list[float]:
    """b_k = (1 + tau²) ∫_{lambda_s}^{lambda_t} e^{(1 + tau²)(lambda - lambda_t)} L_k(lambda) dlambda for
    the Lagrange basis L_k through ``lambdas`` (eqs. 15 and 18 of the paper, alpha_t = 1): the
    weights of the x0 predictions at ``lambdas`` in a step from lambda_s to lambda_t.
    Integrated by Gauss–Legendre quadrature (the integrand is smooth over one step)."""
    rate = 1 + tau ** 2
    half, mid = 0.5 * (lambda_t - lambda_s), 0.5 * (lambda_t + lambda_s)
    points = mid + half * _NODES
    weight = rate * numpy.exp(rate * (points - lambda_t)) * _WEIGHTS * half
    coefficients = []
    for k, lambda_k in enumerate(lambdas):
        basis = numpy.ones_like(points)
        for j, lambda_j in enumerate(lambdas):
            if j != k:
                basis = basis * (points - lambda_j) / (lambda_k - lambda_j)
        coefficients.append(float(numpy.sum(weight * basis)))
    return coefficients


def simple_order_2_coefficients(lambdas: list[float], lambda_s: float, lambda_t: float, tau: float,
                                corrector: bool) -> list[float]:
    """The paper's simplified two-point weights (Appendix D): the exponential integral of the
    constant term exactly, the linear term to first order."""
    rate = 1 + tau ** 2
    h = lambda_t - lambda_s
    total = -numpy.expm1(-h * rate)
    if corrector:
        newest = 0.5 * rate * h
        return [total - newest, newest]
    older = 0.5 * rate * h ** 2 / (lambdas[-2] - lambda_s)
    return [older, total - older]


def _coefficients(lambdas: list[float], lambda_s: float, lambda_t: float, tau: float, simple_order_2: bool,
                  corrector: bool) -> list[float]:
    if simple_order_2 and len(lambdas) == 2:
        return simple_order_2_coefficients(lambdas, lambda_s, lambda_t, tau, corrector)
    return adams_coefficients(lambdas, lambda_s, lambda_t, tau)


def _combine(predictions: list[Tensor], coefficients: list[float]) -> Tensor:
    return sum(c * p for c, p in zip(coefficients, predictions))


@torch.no_grad()
def sample_sa_solver(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                     callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                     tau_func: TauFunction | None = None, s_noise: float = 1.0, predictor_order: int = 3,
                     corrector_order: int = 4, use_pece: bool = False, simple_order_2: bool = False) -> Tensor:
    """SA-Solver: stochastic Adams predictor of order ≤ 3 and corrector of order ≤ 4 (arXiv:2309.05019)."""
    if len(sigmas) <= 1:
        return x
    extra_args = extra_args or {}
    if tau_func is None:
        # tau is 1 between 20 % and 80 % of the run: the run's model sampling turns shares into sigmas.
        sampling = extra_args.get("model_sampling")
        if sampling is None:
            raise ValueError("sa_solver without tau_func needs extra_args['model_sampling'] for its SDE interval")
        start, end = DEFAULT_SDE_PERCENTS
        tau_func = tau_interval(sampling.percent_to_sigma(start), sampling.percent_to_sigma(end))
    model_args = {k: v for k, v in extra_args.items() if k != "model_sampling"}
    sigma_list = [float(s) for s in sigmas]
    lambdas = [-float(numpy.log(s)) if s > 0 else float("inf") for s in sigma_list]
    max_order = max(predictor_order, corrector_order)
    ends_at_zero = sigma_list[-1] == 0  # then the orders drop near the end, for stability
    x_pred = x
    h = tau = 0.0
    noise = None
    predictions: list[Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = model(x_pred, batch_sigma(sigmas[i], x), **model_args)
        report(callback, x_pred, i, sigmas[i], sigmas[i], denoised)
        predictions = (predictions + [denoised])[-max_order:]
        predictor_used = min(predictor_order, len(predictions))
        corrector_used = 0 if i == 0 or (sigma_list[i + 1] == 0 and not use_pece) \
            else min(corrector_order, len(predictions))
        if ends_at_zero:
            predictor_used = min(predictor_used, len(sigmas) - 2 - i)
            corrector_used = min(corrector_used, len(sigmas) - 1 - i)

        if corrector_used == 0:
            x = x_pred
        else:
            b = _coefficients(lambdas[i - corrector_used + 1:i + 1], lambdas[i - 1], lambdas[i], tau,
                              simple_order_2, corrector=True)
            x = sigmas[i] / sigmas[i - 1] * float(numpy.exp(-tau ** 2 * h)) * x \
                + _combine(predictions[-corrector_used:], b)
            if noise is not None:
                x = x + noise  # the corrector reuses the predictor's noise of the same step
            if use_pece:
                denoised = model(x, batch_sigma(sigmas[i], x), **model_args)
                predictions[-1] = denoised

        if sigma_list[i + 1] == 0:
            x_pred = denoised
            continue
        tau = tau_func(sigma_list[i + 1])
        b = _coefficients(lambdas[i - predictor_used + 1:i + 1], lambdas[i], lambdas[i + 1], tau,
                          simple_order_2, corrector=False)
        h = lambdas[i + 1] - lambdas[i]
        x_pred = sigmas[i + 1] / sigmas[i] * float(numpy.exp(-tau ** 2 * h)) * x \
            + _combine(predictions[-predictor_used:], b)
        noise = None
        if tau > 0 and s_noise > 0:
            noise = require_noise(noise_sampler, "sa_solver")(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] \
                * float(-numpy.expm1(-2 * tau ** 2 * h)) ** 0.5 * s_noise
            x_pred = x_pred + noise
    return x_pred


@torch.no_grad()
def sample_sa_solver_pece(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                          callback: Callback | None = None, noise_sampler: NoiseSampler | None = None,
                          tau_func: TauFunction | None = None, s_noise: float = 1.0, predictor_order: int = 3,
                          corrector_order: int = 4, simple_order_2: bool = False) -> Tensor:
    """SA-Solver in predict-evaluate-correct-evaluate mode (arXiv:2309.05019)."""
    return sample_sa_solver(model, x, sigmas, extra_args, callback, noise_sampler, tau_func, s_noise,
                            predictor_order, corrector_order, True, simple_order_2)
