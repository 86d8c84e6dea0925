"""SDR → HLG expansion: the curve against Lottes' formula, and the properties the node promises.

ComfyUI's calibrated curve is not public, so these check behaviour, not ComfyUI's pixel values:
monotonic, black stays black, mid grey near its BT.2408 level, brighter highlights for a brighter
target, ImageColorSpace's HDR→sRGB undoing it within a stated tolerance, alpha untouched.
"""

import math

import pytest
import torch

from ldm.imaging import color_spaces as S
from ldm.imaging import sdr_to_hdr as H

GREY_SRGB = 0.4613561  # sRGB code of 18% linear grey


def lottes(x, a, d, b, c):
    """Lottes 2016's tone curve y = x^a / ((x^a)^d · b + c)."""
    return x ** a / ((x ** a) ** d * b + c)


def grey_ramp(steps=65) -> torch.Tensor:
    values = torch.linspace(0, 1, steps)
    return values[None, None, :, None].expand(1, 1, steps, 3).contiguous()


def hlg_display_nits(signal: torch.Tensor, peak_nits: float) -> torch.Tensor:
    """BT.2100 HLG EOTF for a display of ``peak_nits`` (γ = 1.2 + 0.42·log10(peak/1000)), written out."""
    gamma = 1.2 + 0.42 * math.log10(peak_nits / 1000)
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    scene = torch.where(signal <= 0.5, signal ** 2 / 3, (torch.exp((signal - c) / a) + b) / 12)
    luminance = (scene * torch.tensor([0.2627, 0.6780, 0.0593])).sum(-1, keepdim=True)
    return peak_nits * luminance ** (gamma - 1) * scene


@pytest.mark.parametrize("peak", [0.5, 3.2, 49.0])
def test_expansion_inverts_lottes_curve_with_unit_contrast_and_shoulder(peak):
    y = torch.linspace(0, 1, 101, dtype=torch.float64)
    x = y * H.expansion_gain(y, peak)
    # the forward curve with a = d = c = 1 and b chosen so that peak → 1 gives y back
    torch.testing.assert_close(lottes(x, 1.0, 1.0, 1.0 - 1.0 / peak, 1.0), y)
    assert x[-1].item() == pytest.approx(peak) and x[0].item() == 0.0
    assert torch.all(torch.diff(x) > 0)
    assert H.expansion_gain(torch.tensor(0.0), peak).item() == 1.0  # slope 1 at black


def test_black_stays_black_and_the_output_is_monotonic():
    for target in (0.0, 100.0, 650.0, 1000.0, 4000.0):
        out = H.sdr_to_hlg(grey_ramp(), target)[0, 0, :, 0]
        assert out[0].item() == 0.0
        assert torch.all(torch.diff(out) > 0), target


def test_target_at_the_reference_white_is_plain_srgb_to_hlg():
    # SDR white at 203 cd/m² needs no expansion: ImageColorSpace's sRGB → HDR (BT.2408: white at 75%)
    image = torch.rand(2, 6, 6, 3)
    torch.testing.assert_close(H.sdr_to_hlg(image, 203.0), S.convert(image, "sRGB", "HDR"), atol=1e-5, rtol=0)


def test_mid_grey_stays_near_its_bt2408_level_and_shadows_are_kept():
    grey = torch.full((1, 1, 1, 3), GREY_SRGB)
    unexpanded = S.convert(grey, "sRGB", "HDR").flatten()[0].item()
    assert unexpanded == pytest.approx(0.436, abs=1e-3)  # 18% of 203 cd/m² on the 1000 cd/m² display
    for target in (300.0, 650.0, 1000.0):
        assert H.sdr_to_hlg(grey, target).flatten()[0].item() == pytest.approx(unexpanded, abs=0.03)
    shadow = torch.full((1, 1, 1, 3), 0.05)
    shadows = [H.sdr_to_hlg(shadow, target).flatten()[0].item() for target in (203.0, 650.0, 1000.0)]
    assert max(shadows) - min(shadows) < 0.003


def test_a_higher_target_gives_brighter_highlights():
    light = torch.tensor([0.8, 0.9, 1.0])[None, None, :, None].expand(1, 1, 3, 3)
    levels = [H.sdr_to_hlg(light, target)[0, 0, :, 0] for target in (300.0, 650.0, 1000.0)]
    assert torch.all(levels[0] < levels[1]) and torch.all(levels[1] < levels[2])
    # past 1000 cd/m² the signal is for a display of that peak: white stays at the top of the signal
    # and shows at the target there
    for target in (1000.0, 2500.0):
        white = H.sdr_to_hlg(torch.ones(1, 1, 1, 3), target)
        torch.testing.assert_close(white, torch.ones_like(white), atol=1e-5, rtol=0)
    brights = [hlg_display_nits(H.sdr_to_hlg(light, target), max(target, 1000.0))[0, 0, :, 1]
               for target in (1000.0, 2500.0)]
    assert torch.all(brights[0] < brights[1])
    assert brights[1][-1].item() == pytest.approx(2500.0, rel=1e-4)


def test_target_zero_is_the_calibrated_rendering():
    image = torch.rand(1, 4, 4, 3)
    torch.testing.assert_close(H.sdr_to_hlg(image, 0.0), H.sdr_to_hlg(image, H.CALIBRATED_PEAK_NITS))
    grey = torch.full((1, 1, 1, 3), GREY_SRGB)
    expanded = 0.18 * H.expansion_gain(torch.tensor(0.18), H.CALIBRATED_PEAK_NITS / 203.0).item()
    nits = hlg_display_nits(H.sdr_to_hlg(grey, 0.0), 1000.0)[0, 0, 0]
    torch.testing.assert_close(nits, torch.full((3,), expanded * 203.0), rtol=1e-4, atol=0)


def test_image_color_space_hdr_to_srgb_undoes_it_below_the_highlights():
    torch.manual_seed(0)
    image = torch.rand(2, 16, 16, 3)
    image[:, 0, 0] = 1.0  # white in each frame: the tone map back finds the same peak
    luminance = (S.srgb_to_linear(image) * torch.tensor(S.REC709_LUMA)).sum(-1)
    for target in (300.0, 650.0, 1000.0):
        back = S.convert(H.sdr_to_hlg(image, target), "HDR", "sRGB")
        error = (back - image).abs()
        assert error[luminance < 0.2].max() < 0.02, target
        assert error.max() < 0.04, target


def test_each_pixel_alone_decides_its_value():
    # a dark image is not normalised to the peak: its pixels come out as the same pixels of a bright one
    dark = torch.rand(1, 5, 5, 3) * 0.3
    bright = torch.cat([dark, torch.ones(1, 5, 5, 3)], dim=2)
    torch.testing.assert_close(H.sdr_to_hlg(dark, 650.0), H.sdr_to_hlg(bright, 650.0)[:, :, :5])
    pair = torch.cat([dark, bright[:, :, 5:]])
    torch.testing.assert_close(H.sdr_to_hlg(pair, 650.0)[0:1], H.sdr_to_hlg(dark, 650.0))


def test_alpha_is_copied_and_grey_images_become_rgb():
    image = torch.rand(2, 4, 4, 4)
    out = H.sdr_to_hlg(image, 650.0)
    assert out.shape == image.shape and torch.equal(out[..., 3], image[..., 3])
    torch.testing.assert_close(out[..., :3], H.sdr_to_hlg(image[..., :3], 650.0))
    grey = torch.rand(1, 3, 3, 1)
    torch.testing.assert_close(H.sdr_to_hlg(grey, 650.0), H.sdr_to_hlg(grey.expand(1, 3, 3, 3), 650.0))
    assert H.sdr_to_hlg(image.half(), 650.0).dtype == torch.float16
    with pytest.raises(ValueError, match="2 channels"):
        H.sdr_to_hlg(torch.rand(1, 2, 2, 2), 650.0)
