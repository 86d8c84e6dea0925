"""Coefficients of the linear multistep samplers (LMS, DEIS), by Gauss–Legendre quadrature.

Both integrate a Lagrange basis polynomial through the last ``order`` step times over the next
step; the integrands are polynomials (LMS) or smooth functions (DEIS), so a fixed Gauss–Legendre
rule is exact (LMS) or accurate to ~1e-12 (DEIS). ComfyUI integrates LMS adaptively with SciPy
(rel. tol 1e-4) and DEIS with a 10 000-point Riemann sum; these values are the exact integrals
those approximate, so results can differ in the 4th–5th significant digit of a coefficient.
"""

from __future__ import annotations

import math

import numpy

_NODES, _WEIGHTS = numpy.polynomial.legendre.leggauss(16)


def _integrate(function, start: float, end: float) -> float:
    """∫_start^end function(u) du with 16-point Gauss–Legendre (exact for degree ≤ 31)."""
    half, mid = 0.5 * (end - start), 0.5 * (end + start)
    return float(half * numpy.sum(_WEIGHTS * function(mid + half * _NODES)))


def _lagrange_basis(points: list[float], j: int):
    """The degree len(points)-1 polynomial that is 1 at points[j] and 0 at the others."""
    def basis(u):
        value = numpy.ones_like(u)
        for k, p in enumerate(points):
            if k != j:
                value = value * (u - p) / (points[j] - p)
        return value
    return basis


def lms_coefficients(sigmas: list[float], i: int, order: int) -> list[float]:
    """Weights of d_i, d_{i-1}, … in ``x_{i+1} = x_i + Σ_j c_j d_{i-j}`` (Adams–Bashforth on the
    sigma axis, as k-diffusion's ``sample_lms``)."""
    if order - 1 > i:
        raise ValueError(f"order {order} too high for step {i}")
    points = [sigmas[i - k] for k in range(order)]
    return [_integrate(_lagrange_basis(points, j), sigmas[i], sigmas[i + 1]) for j in range(order)]


# DEIS's time variable: the VP-SDE time t of a linear-beta schedule fitted to EDM's sigma range
# [0.002, 80] with t in [1e-3, 1] (Zhang & Chen 2023, "Fast Sampling of Diffusion Models with
# Exponential Integrator", the "tAB" variant as zju-pi/diff-sampler and ComfyUI define it).
_EDM_SIGMA_MIN, _EDM_SIGMA_MAX, _EPSILON_S = 0.002, 80.0, 1e-3
_BETA_D = 2 * (math.log(_EDM_SIGMA_MIN ** 2 + 1) / _EPSILON_S - math.log(_EDM_SIGMA_MAX ** 2 + 1)) / (_EPSILON_S - 1)
_BETA_MIN = math.log(_EDM_SIGMA_MAX ** 2 + 1) - 0.5 * _BETA_D


def _vp_time(sigma):
    """VP time t with sigma(t)² + 1 = exp(β_d t²/2 + β_min t)."""
    return (numpy.sqrt(_BETA_MIN ** 2 + 2 * _BETA_D * numpy.log(numpy.asarray(sigma) ** 2 + 1)) - _BETA_MIN) / _BETA_D


def deis_coefficients(sigmas: list[float], max_order: int) -> list[list[float]]:
    """Per step i, the weights of d_i, d_{i-1}, … (empty for first-order steps).

    The step integrates dx = eps(t) dsigma with eps a polynomial in VP time t through the last
    ``order`` points; substituting sigma for t, each weight is ∫ L_j(t(sigma)) dsigma over
    [sigma_i, sigma_{i+1}], whose integrand is smooth (t(sigma) has no singularity for
    sigma ≥ 0) so the quadrature stays accurate down to sigma = 0.
    """
    times = [float(t) for t in _vp_time(sigmas)]
    coefficients = []
    for i in range(len(sigmas) - 1):
        order = min(i + 1, max_order)
        if order == 1:
            coefficients.append([])
            continue
        points = [times[i - k] for k in range(order)]
        coefficients.append([
            _integrate(lambda s, j=j: _lagrange_basis(points, j)(_vp_time(s)), sigmas[i], sigmas[i + 1])
            for j in range(order)])
    return coefficients
