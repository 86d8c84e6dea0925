import numpy as np
import pytest
import torch
from PIL import Image
from scipy.interpolate import CubicHermiteSpline

from graph.registry import NodeRegistry
from graph.validation import validate_prompt
from ldm.imaging import color as imaging_color, color_spaces
from ldm.imaging.curves import Curve, curve_from_value, monotone_slopes
from nodes import image_color as C
from nodes import register_builtin_nodes
from tests.nodes.prompt_support import run_prompt


def test_module_registers_cleanly():
    registry = NodeRegistry()
    assert registry.register_mappings(C.NODE_CLASS_MAPPINGS, C.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    histogram = registry.get("ImageHistogram")
    assert histogram.category == "utils" and histogram.display_name == "Image Histogram"
    assert histogram.return_types == ("HISTOGRAM",) * 5
    assert histogram.return_names == ("rgb", "luminance", "red", "green", "blue")
    editor = registry.get("CurveEditor")
    assert (editor.category, editor.display_name, editor.return_types, editor.return_names) == (
        "utils", "Curve Editor", ("CURVE",), ("curve",))
    assert C.CurveEditor.INPUT_TYPES() == {
        "required": {"curve": ("CURVE", {"default": {"points": [[0.0, 0.0], [1.0, 1.0]],
                                                     "interpolation": "monotone_cubic"}})},
        "optional": {"histogram": ("HISTOGRAM",)}}
    assert registry.get("ImageRGBToYUV").return_names == ("Y", "U", "V")
    quantize = registry.get("ImageQuantize")
    assert (quantize.category, quantize.display_name) == ("image/filters", "Quantize Image")
    transfer = registry.get("ColorTransfer")
    assert (transfer.category, transfer.display_name) == ("image/filters", "Transfer Color")
    assert C.ImageQuantize.INPUT_TYPES()["required"]["dither"] == (
        ["none", "floyd-steinberg", "bayer-2", "bayer-4", "bayer-8", "bayer-16"],)
    noise = C.ImageAddNoise.INPUT_TYPES()["required"]
    assert noise["seed"][1]["max"] == 0xFFFFFFFFFFFFFFFF and noise["strength"][1]["default"] == 0.5


# -- histogram ---------------------------------------------------------------------------------------

def test_histograms_match_numpy():
    image = torch.rand(2, 9, 11, 3)
    rgb, luminance, red, green, blue = C.ImageHistogram().execute(image)
    first = image[0].numpy()
    levels = np.clip(first * 255, 0, 255).astype(np.uint8)
    edges = np.arange(257)
    expected = [np.histogram(levels[..., channel], bins=edges)[0] for channel in range(3)]
    for got, want in zip((red, green, blue), expected):
        assert got == want.tolist()
    assert rgb == ((expected[0] + expected[1] + expected[2]) // 3).tolist()
    luma = first @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    assert luminance == np.histogram(np.clip(luma * 255, 0, 255).astype(np.uint8), bins=edges)[0].tolist()
    assert all(len(h) == 256 and sum(h) == 99 for h in (luminance, red, green, blue))


def test_histogram_of_a_flat_colour():
    image = torch.zeros(1, 2, 3, 3)
    image[..., 0] = 1.0
    rgb, luminance, red, green, blue = C.ImageHistogram().execute(image)
    assert red[255] == 6 and green[0] == 6 and blue[0] == 6
    assert rgb[0] == 4 and rgb[255] == 2  # (0 + 6 + 6) // 3, (6 + 0 + 0) // 3
    assert luminance[int(0.2126 * 255)] == 6


# -- curves ------------------------------------------------------------------------------------------

def test_curve_editor_passes_the_curve_and_shows_the_histogram():
    value = {"points": [[0.5, 0.8], [0, 0], [1, 1]], "interpolation": "linear"}
    (curve,) = C.CurveEditor().execute(value)
    assert curve == Curve(((0.0, 0.0), (0.5, 0.8), (1.0, 1.0)), "linear")
    histogram = list(range(256))
    out = C.CurveEditor().execute(value, histogram)
    assert out["ui"] == {"histogram": histogram} and out["result"] == (curve,)


def test_linear_curve_is_numpy_interp():
    curve = curve_from_value({"points": [[0, 0.1], [0.3, 0.9], [1, 0.4]], "interpolation": "linear"})
    xs = np.linspace(-0.2, 1.2, 57)
    np.testing.assert_allclose(curve.evaluate(xs), np.interp(xs, [0, 0.3, 1], [0.1, 0.9, 0.4]))


def fritsch_carlson(xs, ys):
    """Fritsch & Carlson (1980), steps 1-5, written out point by point."""
    n = len(xs)
    delta = [(ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k]) for k in range(n - 1)]
    m = [delta[0]] + [0.0 if delta[k - 1] * delta[k] <= 0 else (delta[k - 1] + delta[k]) / 2
                      for k in range(1, n - 1)] + [delta[-1]]
    for k in range(n - 1):
        if delta[k] == 0:
            m[k] = m[k + 1] = 0.0
        else:
            a, b = m[k] / delta[k], m[k + 1] / delta[k]
            if a * a + b * b > 9:
                tau = 3 / np.sqrt(a * a + b * b)
                m[k], m[k + 1] = tau * a * delta[k], tau * b * delta[k]
    return np.array(m)


def test_monotone_cubic_matches_a_hermite_spline_with_fritsch_carlson_slopes():
    points = [[0, 0], [0.2, 0.05], [0.35, 0.6], [0.5, 0.62], [0.8, 0.62], [1, 1]]
    xs, ys = np.array(points).T
    slopes = fritsch_carlson(xs, ys)
    np.testing.assert_allclose(monotone_slopes(xs, ys), slopes)
    curve = curve_from_value(points)  # a bare point list is monotone cubic
    grid = np.linspace(0, 1, 301)
    np.testing.assert_allclose(curve.evaluate(grid), CubicHermiteSpline(xs, ys, slopes)(grid), atol=1e-12)
    assert np.all(np.diff(curve.evaluate(grid)) >= -1e-12)  # monotone data stays monotone
    lut = curve.lookup_table()
    assert lut.dtype == np.float32 and lut.shape == (256,) and lut[0] == 0 and lut[-1] == 1


def test_curve_holds_its_end_values_and_identity_is_identity():
    curve = curve_from_value({"points": [[0.2, 0.3], [0.8, 0.7]]})
    np.testing.assert_allclose(curve.evaluate(np.array([0.0, 0.1, 0.9, 1.0])), [0.3, 0.3, 0.7, 0.7])
    identity = curve_from_value(C.CurveEditor.INPUT_TYPES()["required"]["curve"][1]["default"])
    np.testing.assert_allclose(identity.lookup_table(5), [0, 0.25, 0.5, 0.75, 1], atol=1e-7)


# -- YUV ---------------------------------------------------------------------------------------------

BT601 = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def test_rgb_to_yuv_is_full_range_bt601():
    image = torch.rand(2, 4, 5, 3)
    y, u, v = C.ImageRGBToYUV().execute(image)
    assert y.shape == u.shape == v.shape == image.shape
    assert torch.equal(y[..., 0], y[..., 2])  # grey images
    expected = image.numpy() @ BT601.T + [0, 0.5, 0.5]
    got = np.stack([y[..., 0], u[..., 0], v[..., 0]], axis=-1)
    np.testing.assert_allclose(got, expected, atol=2e-3)  # kornia's rounded chroma scales


def test_yuv_round_trip_and_known_colours():
    image = torch.rand(1, 6, 6, 3)
    (back,) = C.ImageYUVToRGB().execute(*C.ImageRGBToYUV().execute(image))
    torch.testing.assert_close(back, image, atol=2e-3, rtol=0)
    white = torch.ones(1, 1, 1, 3)
    y, u, v = C.ImageRGBToYUV().execute(white)
    assert torch.allclose(torch.stack([y, u, v])[..., 0].flatten(), torch.tensor([1.0, 0.5, 0.5]), atol=1e-6)
    red = torch.tensor([[[[1.0, 0.0, 0.0]]]])
    y, u, v = (plane[0, 0, 0, 0].item() for plane in C.ImageRGBToYUV().execute(red))
    assert y == pytest.approx(0.299) and v == pytest.approx(0.5 + 0.701 * 0.713)


def test_yuv_to_rgb_averages_the_planes():
    y = torch.tensor([[[[0.2, 0.4, 0.6]]]])
    half = torch.full((1, 1, 1, 3), 0.5)
    (rgb,) = C.ImageYUVToRGB().execute(y, half, half)
    assert torch.allclose(rgb, torch.full((1, 1, 1, 3), 0.4))


# -- quantize and noise ------------------------------------------------------------------------------

def test_quantize_without_dither_maps_onto_a_small_palette():
    image = torch.rand(2, 16, 16, 3)
    (out,) = C.ImageQuantize().execute(image, 4, "none")
    for index in range(2):
        colours = np.unique(out[index].reshape(-1, 3).numpy(), axis=0)
        assert len(colours) <= 4
        rgb = Image.fromarray((image[index] * 255).to(torch.uint8).numpy())
        expected = rgb.quantize(palette=rgb.quantize(colors=4), dither=Image.Dither.NONE).convert("RGB")
        np.testing.assert_array_equal((out[index] * 255).round().to(torch.uint8).numpy(), np.asarray(expected))


def test_quantize_keeps_exact_colours_when_the_palette_fits():
    colours = torch.tensor([[0, 0, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.float32)
    image = colours[torch.randint(0, 3, (1, 8, 8))]
    for dither in imaging_color.DITHER_METHODS[:2]:
        (out,) = C.ImageQuantize().execute(image, 256, dither)
        assert torch.equal(out, image)


def test_bayer_matrix_is_the_classic_ordering():
    # the 2x2 and 4x4 index matrices of Bayer dithering, as centred thresholds
    classic2 = np.array([[0, 2], [3, 1]])
    np.testing.assert_allclose(imaging_color.bayer_matrix(2), (classic2 - 1.5) / 4)
    classic4 = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]])
    np.testing.assert_allclose(imaging_color.bayer_matrix(4), (classic4 - 7.5) / 16)


def test_ordered_dither_of_a_flat_grey_mixes_two_palette_colours():
    image = torch.cat([torch.zeros(1, 8, 4, 3), torch.ones(1, 8, 4, 3)], dim=2)
    image[:, :, 2:6] = 0.5
    (plain,) = C.ImageQuantize().execute(image, 2, "none")
    (dithered,) = C.ImageQuantize().execute(image, 2, "bayer-4")
    palette = set(plain[0, ..., 0].unique().tolist())
    assert len(palette) == 2 and len(plain[0, :, 2:6, 0].unique()) == 1  # no dither: one flat colour
    middle = dithered[0, :, 2:6, 0]
    assert set(middle.unique().tolist()) == palette  # the ordered dither alternates both
    low, high = sorted(palette)
    light_share = (middle == high).float().mean().item()
    assert light_share == pytest.approx((0.5 - low) / (high - low), abs=0.2)


def test_add_noise_is_seeded_gaussian_noise_clipped():
    image = torch.full((1, 8, 8, 3), 0.5)
    (out,) = C.ImageAddNoise().execute(image, 42, 0.1)
    torch.manual_seed(42)  # ComfyUI draws from the default generator after seeding it
    expected = torch.clip(image + 0.1 * torch.randn(image.size()), 0.0, 1.0)
    torch.testing.assert_close(out, expected)
    (again,) = C.ImageAddNoise().execute(image, 42, 0.1)
    assert torch.equal(out, again)
    (strong,) = C.ImageAddNoise().execute(image, 1, 1.0)
    assert strong.min() == 0.0 and strong.max() == 1.0


# -- colour transfer and colour spaces ---------------------------------------------------------------

def test_color_transfer_schema_and_the_dynamic_combo_key():
    spec = C.ColorTransfer.INPUT_TYPES()
    assert list(spec["required"]) == ["image_target", "image_ref", "method", "source_stats", "strength"]
    assert spec["required"]["image_ref"] == ("IMAGE", {"tooltip": "Reference image(s) to match colors to."})
    assert spec["required"]["method"] == (["reinhard_lab", "mkl_lab", "histogram"],)
    assert spec["required"]["source_stats"][0] == ["per_frame", "uniform", "target_frame"]
    assert spec["required"]["strength"][1] == {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}
    assert set(spec["optional"]) == {"source_stats.target_index"}
    target = torch.cat([torch.full((1, 4, 4, 3), 0.2), torch.full((1, 4, 4, 3), 0.6)])
    reference = torch.full((1, 4, 4, 3), 0.8)
    (out,) = C.ColorTransfer().execute(target, reference, "histogram", "target_frame", 1.0,
                                       **{"source_stats.target_index": 1})
    # frame 1's histogram (all 0.6) maps onto 0.8; frame 0's value falls in an empty source bin below it
    assert torch.allclose(out[1], torch.full((4, 4, 3), 204 / 255))
    (unchanged,) = C.ColorTransfer().execute(target, reference, "mkl_lab", "per_frame", 0.0)
    assert unchanged is target


def test_image_color_space_node():
    registry = NodeRegistry()
    registry.register_mappings(C.NODE_CLASS_MAPPINGS, C.NODE_DISPLAY_NAME_MAPPINGS, core=True)
    definition = registry.get("ImageColorSpace")
    assert (definition.category, definition.display_name) == ("image/color", "Convert Image Color Space")
    spec = C.ImageColorSpace.INPUT_TYPES()["required"]
    spaces = ["sRGB", "HDR", "HDR ACEScct", "HDR LogC3", "HDR PQ", "linear", "linear ACEScg"]
    assert spec["source"][0] == spaces and spec["destination"][0] == spaces
    assert spec["source"][1]["default"] == spec["destination"][1]["default"] == "sRGB"
    (hlg,) = C.ImageColorSpace().execute(torch.ones(1, 2, 2, 3), "sRGB", "HDR")
    assert torch.allclose(hlg, torch.full((1, 2, 2, 3), 0.75), atol=2e-3)  # BT.2408 reference white
    (logc3,) = C.ImageColorSpace().execute(torch.full((1, 1, 1, 3), 0.18), "linear", "HDR LogC3")
    assert torch.allclose(logc3, torch.full((1, 1, 1, 3), 0.391007), atol=2e-6)  # ARRI's EI 800 grey


def test_sdr_to_hdr_node():
    registry = NodeRegistry()
    registry.register_mappings(C.NODE_CLASS_MAPPINGS, C.NODE_DISPLAY_NAME_MAPPINGS, core=True)
    definition = registry.get("ImageSDRToHDR")
    assert (definition.category, definition.display_name, definition.return_types) == (
        "image/color", "Convert SDR to HDR", ("IMAGE",))
    assert not definition.output_node
    spec = C.ImageSDRToHDR.INPUT_TYPES()
    assert list(spec["required"]) == ["image", "algorithm"] and spec["required"]["algorithm"][0] == ["lottes"]
    target = spec["optional"]["algorithm.target_luminance"]
    assert target[0] == "FLOAT" and {k: target[1][k] for k in ("default", "min", "max", "step")} == {
        "default": 650.0, "min": 0.0, "max": 10000.0, "step": 1.0}
    image = torch.rand(2, 3, 3, 4)
    (out,) = C.ImageSDRToHDR().execute(image, "lottes", **{"algorithm.target_luminance": 203.0})
    torch.testing.assert_close(out, color_spaces.convert(image, "sRGB", "HDR"), atol=1e-5, rtol=0)
    (default,) = C.ImageSDRToHDR().execute(image, "lottes")
    (brighter,) = C.ImageSDRToHDR().execute(image, "lottes", **{"algorithm.target_luminance": 1000.0})
    white = torch.ones(1, 1, 1, 3)
    levels = [C.ImageSDRToHDR().execute(white, "lottes", **{"algorithm.target_luminance": t})[0].max().item()
              for t in (203.0, 650.0, 1000.0)]
    assert levels[0] == pytest.approx(0.75, abs=2e-3) and levels[0] < levels[1] < levels[2]
    assert torch.all(default[..., :3] <= brighter[..., :3] + 1e-6) and torch.equal(default[..., 3], image[..., 3])


def test_sdr_to_hdr_runs_from_a_comfyui_api_prompt(node_services, monkeypatch):
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 3, "batch_size": 1, "color": 0xFFFFFF}},
        "2": {"class_type": "ImageSDRToHDR", "inputs": {"image": ["1", 0], "algorithm": "lottes",
                                                        "algorithm.target_luminance": 1000.0}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    too_bright = {**prompt, "2": {**prompt["2"], "inputs": {**prompt["2"]["inputs"],
                                                            "algorithm.target_luminance": 20000.0}}}
    assert not validate_prompt(too_bright, registry).ok
    calls = []
    convert = C.sdr_to_hdr.sdr_to_hlg

    def recording(image, target):
        calls.append((target, convert(image, target)))
        return calls[-1][1]

    monkeypatch.setattr(C.sdr_to_hdr, "sdr_to_hlg", recording)
    run_prompt(registry, prompt, node_services)
    [(target, hlg)] = calls
    assert target == 1000.0 and torch.allclose(hlg, torch.ones(1, 3, 4, 3), atol=1e-5)  # white at the HLG peak

