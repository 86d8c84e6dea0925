"""Tone curves: the CURVE values of ComfyUI's curve editor, evaluated over x in 0..1.

A CURVE arrives from a prompt as ``{"points": [[x, y], …], "interpolation": "monotone_cubic" |
"linear"}`` or as a bare list of points (monotone cubic). The monotone cubic is Fritsch and
Carlson's (1980) Hermite interpolation with the slopes of the editor's ``createMonotoneInterpolator``
(ComfyUI frontend, mirrored by ``comfy_api.input.MonotoneCubicCurve``): secant means at interior
points, zero at local extrema and on flat segments, scaled back where alpha² + beta² > 9. Outside
the points the curve holds the end values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

INTERPOLATIONS = ("monotone_cubic", "linear")
IDENTITY = {"points": [[0.0, 0.0], [1.0, 1.0]], "interpolation": "monotone_cubic"}


@dataclass(frozen=True)
class Curve:
    """Control points sorted by x, and how to interpolate between them."""
    points: tuple[tuple[float, float], ...]
    interpolation: str = "monotone_cubic"

    def as_value(self) -> dict:
        """The prompt/editor form of this curve."""
        return {"points": [list(point) for point in self.points], "interpolation": self.interpolation}

    def evaluate(self, xs: np.ndarray) -> np.ndarray:
        """y for each x (float64)."""
        xs = np.asarray(xs, dtype=np.float64)
        known_x = np.array([p[0] for p in self.points], dtype=np.float64)
        known_y = np.array([p[1] for p in self.points], dtype=np.float64)
        if len(known_x) == 0:
            return np.zeros_like(xs)
        if len(known_x) == 1:
            return np.full_like(xs, known_y[0])
        if self.interpolation == "linear":
            return np.interp(xs, known_x, known_y)
        return _hermite(xs, known_x, known_y, monotone_slopes(known_x, known_y))

    def lookup_table(self, size: int = 256) -> np.ndarray:
        """``size`` samples at evenly spaced x from 0 to 1 (float32), as a shader's 1-D texture."""
        return self.evaluate(np.linspace(0.0, 1.0, size)).astype(np.float32)


def curve_from_value(value) -> Curve:
    """A :class:`Curve` from a CURVE value (dict, point list, or a Curve)."""
    if isinstance(value, Curve):
        return value
    if isinstance(value, dict):
        raw_points, interpolation = value["points"], value.get("interpolation", "monotone_cubic")
    else:
        raw_points, interpolation = value, "monotone_cubic"
    if interpolation not in INTERPOLATIONS:
        log.warning("unknown curve interpolation %r, using monotone_cubic", interpolation)
        interpolation = "monotone_cubic"
    points = tuple(sorted((float(x), float(y)) for x, y in raw_points))
    return Curve(points, interpolation)


def monotone_slopes(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Fritsch–Carlson tangents at each control point."""
    widths = np.diff(xs)
    secants = np.divide(np.diff(ys), widths, out=np.zeros_like(widths), where=widths != 0)
    slopes = np.empty_like(xs)
    slopes[0], slopes[-1] = secants[0], secants[-1]
    interior = 0.5 * (secants[:-1] + secants[1:])
    slopes[1:-1] = np.where(secants[:-1] * secants[1:] <= 0, 0.0, interior)
    for index, secant in enumerate(secants):  # sequential: each step may rescale the next start
        if secant == 0:
            slopes[index] = slopes[index + 1] = 0.0
            continue
        alpha, beta = slopes[index] / secant, slopes[index + 1] / secant
        length = alpha * alpha + beta * beta
        if length > 9:
            scale = 3 / np.sqrt(length)
            slopes[index], slopes[index + 1] = scale * alpha * secant, scale * beta * secant
    return slopes


def _hermite(xs: np.ndarray, known_x: np.ndarray, known_y: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    upper = np.searchsorted(known_x, xs, side="right").clip(1, len(known_x) - 1)
    lower = upper - 1
    width = known_x[upper] - known_x[lower]
    t = np.divide(xs - known_x[lower], width, out=np.zeros_like(xs), where=width != 0)
    t2, t3 = t * t, t * t * t
    values = ((2 * t3 - 3 * t2 + 1) * known_y[lower] + (t3 - 2 * t2 + t) * width * slopes[lower]
              + (-2 * t3 + 3 * t2) * known_y[upper] + (t3 - t2) * width * slopes[upper])
    values = np.where(xs <= known_x[0], known_y[0], values)
    return np.where(xs >= known_x[-1], known_y[-1], values)
