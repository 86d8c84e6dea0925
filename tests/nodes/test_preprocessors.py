"""Preprocessor nodes: ComfyUI's Canny (against a scipy/numpy reference and on a picture whose edges
are known) and Weft's weightless line, tile and inpaint control images."""

from __future__ import annotations

import numpy
import pytest
import torch
from scipy import ndimage

from graph.registry import NodeRegistry
from ldm.control.preprocess import hysteresis
from nodes import register_builtin_nodes
from nodes.preprocessors import (Canny, WeftInpaintControlImage, WeftLineThreshold, WeftTileResample)


def _reference_canny(rgb: numpy.ndarray, low: float, high: float) -> numpy.ndarray:
    """Canny in numpy/scipy, written from the algorithm's description (kornia's conventions)."""
    gray = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    blurred = ndimage.gaussian_filter(gray, sigma=1.0, truncate=2.0, mode="mirror")
    gx = ndimage.sobel(blurred, axis=1, mode="nearest")
    gy = ndimage.sobel(blurred, axis=0, mode="nearest")
    magnitude = numpy.sqrt(gx * gx + gy * gy + 1e-6)
    direction = numpy.round(numpy.degrees(numpy.arctan2(gy, gx)) / 45.0).astype(int) % 8
    steps = [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)]
    padded = numpy.pad(magnitude, 1)
    h, w = magnitude.shape
    thin = numpy.zeros_like(magnitude)
    for y in range(h):
        for x in range(w):
            d = direction[y, x]
            ahead = padded[1 + y + steps[d][0], 1 + x + steps[d][1]]
            behind = padded[1 + y + steps[(d + 4) % 8][0], 1 + x + steps[(d + 4) % 8][1]]
            if magnitude[y, x] > ahead and magnitude[y, x] > behind:
                thin[y, x] = magnitude[y, x]
    weak, strong = thin > low, thin > high
    labels, _ = ndimage.label(weak, structure=numpy.ones((3, 3)))
    keep = numpy.unique(labels[strong])
    return numpy.isin(labels, keep[keep > 0]).astype(numpy.float32)


def _picture(seed: int = 0) -> torch.Tensor:
    rng = numpy.random.default_rng(seed)
    pixels = numpy.zeros((1, 48, 40, 3), dtype=numpy.float32)
    pixels[0, 10:30, 8:26] = (0.9, 0.8, 0.7)
    yy, xx = numpy.mgrid[0:48, 0:40]
    pixels[0, (yy - 34) ** 2 + (xx - 28) ** 2 < 49] = (0.2, 0.9, 0.4)
    pixels += rng.normal(0, 0.02, pixels.shape).astype(numpy.float32)
    return torch.from_numpy(pixels.clip(0, 1))


@pytest.mark.parametrize("low, high", [(0.4, 0.8), (0.1, 0.3), (0.05, 0.9)])
def test_canny_matches_a_numpy_reference(low, high):
    image = _picture()
    [edges] = Canny().detect_edge(image, low, high)
    assert edges.shape == (1, 48, 40, 3)
    expected = _reference_canny(image[0].double().numpy(), low, high)
    assert expected.sum() > 20
    assert (edges[0, :, :, 0].numpy() != expected).sum() <= 2  # float rounding at a few ties at most
    assert torch.equal(edges[..., 0], edges[..., 2])


def test_canny_outlines_a_box_with_thin_closed_lines():
    image = torch.zeros(1, 40, 40, 3)
    image[0, 12:28, 10:30] = 1.0
    edges = Canny().detect_edge(image, 0.4, 0.8)[0][0, :, :, 0]
    assert set(edges.unique().tolist()) <= {0.0, 1.0}
    assert edges[:8].sum() == 0 and edges[20, 15:25].sum() == 0  # nothing far outside or inside
    for row in range(14, 26):  # each row through the box crosses two vertical edges, 1-2 pixels each
        hits = edges[row].nonzero().flatten().tolist()
        assert hits and min(hits) in (9, 10) and max(hits) in (29, 30) and len(hits) <= 4
    assert Canny().detect_edge(torch.full((1, 16, 16, 3), 0.5), 0.01, 0.02)[0].sum() == 0


def test_higher_thresholds_keep_fewer_edges_and_hysteresis_needs_a_strong_neighbour():
    image = _picture(seed=3)
    counts = [Canny().detect_edge(image, low, high)[0].sum() for low, high in ((0.05, 0.1), (0.3, 0.6), (0.6, 0.9))]
    assert counts[0] >= counts[1] >= counts[2]
    weak = torch.zeros(1, 1, 5, 7, dtype=torch.bool)
    weak[0, 0, 1, :4] = True   # a chain touching a strong pixel
    weak[0, 0, 4, 6] = True    # an isolated weak pixel
    strong = torch.zeros_like(weak)
    strong[0, 0, 2, 4] = True
    kept = hysteresis(weak | strong, strong)
    assert kept[0, 0, 1, :4].tolist() == [1.0] * 4 and kept[0, 0, 4, 6] == 0 and kept.sum() == 5


def test_line_threshold_makes_white_lines_on_black():
    image = torch.ones(1, 9, 9, 3)
    image[0, 4, :] = 0.1  # a dark line on white paper
    [lines] = WeftLineThreshold().threshold(image, 0.5, "dark on light", 0)
    assert lines[0, 4].min() == 1.0 and lines.sum() == 9 * 3
    [thick] = WeftLineThreshold().threshold(image, 0.5, "dark on light", 1)
    assert thick[0, 3:6].min() == 1.0 and thick[0, :3].max() == 0.0
    [inverted] = WeftLineThreshold().threshold(1.0 - image, 0.5, "light on dark", 0)
    assert torch.equal(inverted, lines)


def test_tile_resample_keeps_size_and_mean_and_removes_detail():
    checker = (torch.arange(32).reshape(1, 32, 1, 1) + torch.arange(32).reshape(1, 1, 32, 1)) % 2
    image = checker.float().expand(1, 32, 32, 3).contiguous()
    [tiled] = WeftTileResample().resample(image, 2.0, 0.0)
    assert tiled.shape == image.shape
    assert torch.allclose(tiled, torch.full_like(tiled, 0.5), atol=1e-6)  # 2x2 areas average the checker away
    [unchanged] = WeftTileResample().resample(image, 1.0, 0.0)
    assert torch.equal(unchanged, image)


def test_inpaint_control_image_marks_masked_pixels_minus_one():
    image = torch.rand(1, 8, 8, 3)
    mask = torch.zeros(1, 4, 4)
    mask[0, :2, :2] = 1.0  # resized to the image: the top-left quarter
    [marked] = WeftInpaintControlImage().mark(image, mask)
    assert (marked[0, :3, :3] == -1.0).all()
    assert torch.equal(marked[0, 5:, 5:], image[0, 5:, 5:])


def test_preprocessor_nodes_register_under_image_preprocessors():
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    info = registry.object_info()
    assert info["Canny"]["category"] == "image/preprocessors"
    assert tuple(info["Canny"]["input"]["required"]["low_threshold"]) == (
        "FLOAT", {"default": 0.4, "min": 0.01, "max": 0.99, "step": 0.01})
    assert list(info["Canny"]["output"]) == ["IMAGE"]
    for name in ("WeftLineThreshold", "WeftTileResample", "WeftInpaintControlImage"):
        assert info[name]["category"] == "image/preprocessors"


def test_tile_blur_is_a_normalised_gaussian():
    image = torch.zeros(1, 21, 21, 3)
    image[0, 10, 10] = 1.0
    [blurred] = WeftTileResample().resample(image, 1.0, 1.5)
    channel = blurred[0, :, :, 0].double().numpy()
    expected = ndimage.gaussian_filter(image[0, :, :, 0].double().numpy(), sigma=1.5, truncate=3.0, mode="mirror")
    assert numpy.allclose(channel, expected, atol=1e-6)
    assert abs(channel.sum() - 1.0) < 1e-5
