"""The Beta distribution's CDF and its inverse, in plain Python floats (no SciPy at run time).

The ``beta`` scheduler (Lee et al. 2024, "Beta Sampling is All You Need", arXiv:2407.12173)
places timesteps at quantiles of Beta(α, β). The CDF is the regularised incomplete beta function
I_x(a, b), evaluated with its continued fraction (modified Lentz method; the fraction converges
fast for x < (a+1)/(a+b+2), and the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) covers the rest). The
inverse is found by safeguarded Newton iteration on [0, 1]. Accuracy is ~1e-12, far below the
rounding to integer timesteps the scheduler applies.
"""

from __future__ import annotations

import math

_TINY = 1e-300
_EPS = 1e-15
_MAX_TERMS = 500


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), without its prefactor (Lentz's method)."""
    c = 1.0
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS + 1):
        # Even term d_{2m}, then odd term d_{2m+1} of the fraction.
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def beta_cdf(x: float, a: float, b: float) -> float:
    """P(X ≤ x) for X ~ Beta(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _continued_fraction(b, a, 1.0 - x) / b


def beta_pdf(x: float, a: float, b: float) -> float:
    if x <= 0.0 or x >= 1.0:
        return 0.0
    return math.exp((a - 1.0) * math.log(x) + (b - 1.0) * math.log1p(-x) - _log_beta(a, b))


def beta_ppf(p: float, a: float, b: float) -> float:
    """The quantile function: the x with P(X ≤ x) = p, for X ~ Beta(a, b)."""
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lo, hi = 0.0, 1.0
    x = 0.5
    for _ in range(200):
        err = beta_cdf(x, a, b) - p
        if err > 0.0:
            hi = x
        else:
            lo = x
        if abs(err) <= 1e-14 * min(p, 1.0 - p) or hi - lo <= 1e-16 * hi:
            break
        density = beta_pdf(x, a, b)
        step = x - err / density if density > 0.0 else -1.0
        # Newton's step when it stays inside the bracket, else bisection.
        x = step if lo < step < hi else 0.5 * (lo + hi)
    return x
