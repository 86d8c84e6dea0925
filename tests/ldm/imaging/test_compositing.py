"""ldm.imaging.compositing: blend modes against Pillow's ImageChops, colorsys and the W3C compositing
formulas written out in numpy; alpha compositing against Pillow's alpha_composite; placement
against Pillow's own flips, resizes and rotations."""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageChops

from ldm.imaging import compositing as C
from ldm.imaging.color_spaces import linear_to_srgb, srgb_to_linear

RNG = np.random.default_rng(7)
BACK8 = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
FRONT8 = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)


def unit(pixels8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels8.astype(np.float32) / 255.0)


def chops(name: str) -> np.ndarray:
    result = getattr(ImageChops, name)(Image.fromarray(BACK8), Image.fromarray(FRONT8))
    return np.asarray(result, dtype=np.float32) / 255.0


@pytest.mark.parametrize("mode, chop", [
    ("multiply", "multiply"), ("screen", "screen"), ("darken", "darker"), ("lighten", "lighter"),
    ("difference", "difference"), ("overlay", "overlay"), ("soft-light", "soft_light"),
    ("hard-light", "hard_light"), ("subtract", "subtract_modulo"),
])
def test_separable_blends_match_pillow(mode, chop):
    blended = C.BLENDS[mode](unit(BACK8), unit(FRONT8)).numpy()
    if chop == "subtract_modulo":  # Pillow's clipping subtract is ImageChops.subtract(scale=1, offset=0)
        expected = np.asarray(ImageChops.subtract(Image.fromarray(BACK8), Image.fromarray(FRONT8)),
                              dtype=np.float32) / 255.0
    else:
        expected = chops(chop)
    # Pillow works in 8-bit integers and truncates: at most a couple of levels apart.
    assert np.abs(blended - expected).max() <= 2.5 / 255


def test_linear_dodge_clipped_is_pillows_add():
    blended = C.BLENDS["linear-dodge"](unit(BACK8), unit(FRONT8)).clamp(0, 1).numpy()
    assert np.abs(blended - chops("add")).max() <= 1.5 / 255


def w3c_reference(mode: str, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The W3C Compositing Level 1 / GIMP formulas, written directly."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if mode == "exclusion":
            return b + s - 2 * b * s
        if mode == "color-dodge":
            return np.where(b == 0, 0.0, np.where(s >= 1, 1.0, np.minimum(1.0, b / (1 - s))))
        if mode == "color-burn":
            return np.where(b == 1, 1.0, np.where(s <= 0, 0.0, 1 - np.minimum(1.0, (1 - b) / s)))
        if mode == "linear-light":
            return b + 2 * s - 1
        if mode == "pin-light":
            return np.where(s < 0.5, np.minimum(b, 2 * s), np.maximum(b, 2 * s - 1))
        if mode == "grain-merge":
            return b + s - 0.5
        if mode == "divide":
            return np.clip(b / np.maximum(s, 1e-6), 0, 1)
        if mode == "vivid-light":
            burn = np.where(b == 1, 1.0, np.where(s == 0, 0.0, np.maximum(0.0, 1 - (1 - b) / (2 * s))))
            dodge = np.where(b == 0, 0.0, np.where(s == 1, 1.0, np.minimum(1.0, b / (2 * (1 - s)))))
            return np.where(s <= 0.5, burn, dodge)
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["exclusion", "color-dodge", "color-burn", "linear-light", "pin-light",
                                  "grain-merge", "divide", "vivid-light"])
def test_other_separable_blends_follow_their_formulas(mode):
    back, front = unit(BACK8).numpy(), unit(FRONT8).numpy()
    # include the end points where the divisions need their special cases
    back[0, :4], front[0, :4] = np.array([0, 1, 0.3, 0.7])[:, None], np.array([0.4, 0.2, 0, 1])[:, None]
    blended = C.BLENDS[mode](torch.from_numpy(back), torch.from_numpy(front)).numpy()
    np.testing.assert_allclose(blended, w3c_reference(mode, back, front), atol=1e-5)


def test_hard_mix_is_a_threshold_of_the_sum():
    b, s = torch.tensor([0.2, 0.6, 0.5]), torch.tensor([0.7, 0.5, 0.49])
    assert C.BLENDS["hard-mix"](b, s).tolist() == [0.0, 1.0, 0.0]


def saturated_pixels(count: int) -> np.ndarray:
    """Colours away from grey and from the gamut's edges, so HSV/HSL round trips are exact."""
    hues = RNG.uniform(0, 1, count)
    return np.array([colorsys.hsv_to_rgb(h, RNG.uniform(0.3, 0.9), RNG.uniform(0.3, 0.9)) for h in hues])


def test_hue_takes_the_layers_hsv_hue_and_keeps_the_backdrops_saturation_and_value():
    back, front = saturated_pixels(32), saturated_pixels(32)
    out = C.BLENDS["hue"](torch.tensor(back), torch.tensor(front)).numpy()
    for b, s, o in zip(back, front, out):
        hb, hs, ho = colorsys.rgb_to_hsv(*b), colorsys.rgb_to_hsv(*s), colorsys.rgb_to_hsv(*o)
        assert math.isclose(ho[0], hs[0], abs_tol=1e-6) and np.allclose(ho[1:], hb[1:], atol=1e-6)


def test_saturation_takes_the_layers_hsv_saturation_only():
    back, front = saturated_pixels(32), saturated_pixels(32)
    out = C.BLENDS["saturation"](torch.tensor(back), torch.tensor(front)).numpy()
    for b, s, o in zip(back, front, out):
        hb, hs, ho = colorsys.rgb_to_hsv(*b), colorsys.rgb_to_hsv(*s), colorsys.rgb_to_hsv(*o)
        assert np.allclose([ho[0], ho[2]], [hb[0], hb[2]], atol=1e-6) and math.isclose(ho[1], hs[1], abs_tol=1e-6)


def test_color_takes_the_layers_hsl_hue_and_saturation_and_keeps_the_lightness():
    back, front = saturated_pixels(32), saturated_pixels(32)
    out = C.BLENDS["color"](torch.tensor(back), torch.tensor(front)).numpy()
    for b, s, o in zip(back, front, out):
        hb, hs, ho = colorsys.rgb_to_hls(*b), colorsys.rgb_to_hls(*s), colorsys.rgb_to_hls(*o)
        assert math.isclose(ho[1], hb[1], abs_tol=1e-6)  # lightness
        assert math.isclose(ho[0], hs[0], abs_tol=1e-6) and math.isclose(ho[2], hs[2], abs_tol=1e-6)


def test_grey_layers_leave_hue_alone_and_flatten_color():
    back, grey = torch.tensor([[0.8, 0.2, 0.4]]), torch.tensor([[0.5, 0.5, 0.5]])
    assert torch.equal(C.BLENDS["hue"](back, grey), back)
    assert torch.allclose(C.BLENDS["color"](back, grey), torch.full((1, 3), 0.5))


def test_luminosity_carries_the_layers_luminance():
    back, front = torch.tensor(saturated_pixels(16)), torch.tensor(saturated_pixels(16)) * 0.5
    out = C.BLENDS["luminosity"](back, front)
    weights = torch.tensor(C.LUMINANCE_WEIGHTS, dtype=out.dtype)
    assert torch.allclose(out @ weights, front @ weights, atol=1e-6)
    assert torch.allclose(out / out.sum(-1, keepdim=True), back / back.sum(-1, keepdim=True), atol=1e-6)


def test_mode_table_is_comfyuis():
    assert list(C.LAYER_MODES)[:4] == ["normal", "multiply", "screen", "overlay"] and len(C.LAYER_MODES) == 26
    assert C.LAYER_MODES["normal"].composite == C.UNION
    assert {m.composite for name, m in C.LAYER_MODES.items() if name != "normal"} == {C.CLIP_TO_BACKDROP}
    assert C.LAYER_MODES["multiply"].space == C.LINEAR and C.LAYER_MODES["screen"].space == C.PERCEPTUAL
    assert C.layer_mode("no such mode") == C.LAYER_MODES["normal"]


def rgba8(seed: int) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 4), dtype=np.uint8)
    pixels[0, 0, 3], pixels[0, 1, 3] = 0, 255
    return pixels


def test_normal_is_pillows_alpha_composite():
    back8, front8 = rgba8(1), rgba8(2)
    out = C.blend_composite(C.LAYER_MODES["normal"], unit(back8), unit(front8), 1.0).numpy()
    expected = np.asarray(Image.alpha_composite(Image.fromarray(back8), Image.fromarray(front8)),
                          dtype=np.float32) / 255.0
    assert np.abs(out - expected).max() <= 1.5 / 255


def test_union_with_a_blend_is_w3c_source_over():
    back, front = unit(rgba8(3)).numpy(), unit(rgba8(4)).numpy()
    opacity = 0.7
    mode = C.LayerMode("multiply", C.LINEAR, C.UNION)
    out = C.blend_composite(mode, torch.from_numpy(back), torch.from_numpy(front), opacity).numpy()
    ab, as_ = back[..., 3:], front[..., 3:] * opacity
    cb, cs = back[..., :3], front[..., :3]
    alpha = as_ + ab * (1 - as_)
    color = (cs * as_ * (1 - ab) + as_ * ab * (cb * cs) + (1 - as_) * ab * cb) / np.where(alpha > 0, alpha, 1)
    np.testing.assert_allclose(out[..., 3:], alpha, atol=1e-6)
    visible = (alpha[..., 0] > 0) & (as_[..., 0] > 0)
    np.testing.assert_allclose(out[..., :3][visible], color[visible], atol=1e-5)


def test_clip_to_backdrop_is_source_atop_and_keeps_the_backdrop_alpha():
    back, front = unit(rgba8(5)).numpy(), unit(rgba8(6)).numpy()
    out = C.blend_composite(C.LAYER_MODES["darken"], torch.from_numpy(back), torch.from_numpy(front), 0.5).numpy()
    as_ = front[..., 3:] * 0.5
    expected = as_ * np.minimum(back[..., :3], front[..., :3]) + (1 - as_) * back[..., :3]
    np.testing.assert_array_equal(out[..., 3], back[..., 3])
    shown = back[..., 3] > 0
    np.testing.assert_allclose(out[..., :3][shown], expected[shown], atol=1e-6)
    np.testing.assert_array_equal(out[..., :3][~shown], back[..., :3][~shown])


def test_perceptual_modes_blend_srgb_values():
    back, front = srgb_to_linear(unit(BACK8)), srgb_to_linear(unit(FRONT8))
    out = linear_to_srgb(C.blend(C.LAYER_MODES["screen"], back, front)).numpy()
    assert np.abs(out - chops("screen")).max() <= 2.5 / 255
    linear = C.blend(C.LAYER_MODES["multiply"], back, front)
    assert torch.allclose(linear, back * front)


def test_placed_bounds_of_a_quarter_turn():
    assert C.placed_bounds(0, 0, 10, 4, math.pi / 2) == (3, -3, 4, 10)
    assert C.placed_bounds(5, 6, 7, 3, 0.0) == (5, 6, 7, 3)


def opaque(pixels8: np.ndarray) -> tuple[torch.Tensor, None]:
    return unit(pixels8), None


def test_layers_are_placed_clipped_and_flipped():
    layer8 = RNG.integers(0, 256, (2, 3, 3), dtype=np.uint8)
    layer = C.Layer(unit(layer8), None, C.Placement(x=4, y=-1, width=3, height=2, flip_h=True))
    out = C.compose(6, 4, [layer]).numpy()
    np.testing.assert_allclose(out[0, 4:6, :3], np.fliplr(layer8)[1, :2] / 255.0, atol=1e-5)
    assert out[0, 4:6, 3].tolist() == [1.0, 1.0]
    outside = np.ones((4, 6), dtype=bool)
    outside[0, 4:6] = False
    assert not out[..., 3][outside].any()


def test_resizing_and_rotation_are_pillows():
    layer8 = RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    resized = C.compose(20, 12, [C.Layer(unit(layer8), None, C.Placement(0, 0, 20, 12))]).numpy()
    expected = np.asarray(Image.fromarray(layer8).convert("RGBA").resize((20, 12), Image.Resampling.LANCZOS),
                          dtype=np.float32) / 255.0
    assert np.abs(resized - expected).max() <= 1.5 / 255
    raster = C.layer_raster(unit(layer8), None, C.Placement(0, 0, 10, 6, rotation=math.radians(30)))
    turned = Image.fromarray(layer8).convert("RGBA").rotate(-30, expand=True, resample=Image.Resampling.BICUBIC)
    _, _, width, height = C.placed_bounds(0, 0, 10, 6, math.radians(30))
    assert raster.shape[:2] == (height, width) and turned.size == (width, height)
    np.testing.assert_allclose(raster[..., 3].numpy(), np.asarray(turned)[..., 3] / 255.0, atol=1e-6)


def test_opacity_alpha_and_background():
    red = torch.zeros((2, 2, 3))
    red[..., 0] = 1.0
    half = torch.full((2, 2), 0.5)
    out = C.compose(2, 2, [C.Layer(red, half, C.Placement(0, 0, 2, 2), opacity=0.5)])
    assert torch.allclose(out[..., 3], torch.full((2, 2), 0.25), atol=1 / 255)
    assert torch.allclose(out[..., :3], torch.tensor([1.0, 0.0, 0.0]).expand(2, 2, 3), atol=1e-6)
    # over an opaque white background, half-covered red mixes in linear light
    out = C.compose(2, 2, [C.Layer(red, None, C.Placement(0, 0, 2, 2), opacity=0.5)], C.Background((1.0, 1.0, 1.0)))
    expected = linear_to_srgb(torch.tensor([1.0, 0.5, 0.5]))
    assert torch.allclose(out[0, 0, :3], expected, atol=1e-5) and torch.all(out[..., 3] == 1)


def test_non_normal_layers_add_nothing_over_transparency():
    white = torch.ones((3, 3, 3))
    out = C.compose(3, 3, [C.Layer(white, None, C.Placement(0, 0, 3, 3), mode="screen")])
    assert not out[..., 3].any()
