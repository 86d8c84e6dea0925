"""Colour spaces against their published definitions and reference values."""

import numpy as np
import pytest
import torch

from ldm.imaging import color_spaces as S


def primaries_to_xyz(xy):
    """The normalised primary matrix (SMPTE RP 177) from chromaticities and a D65 white."""
    (rx, ry), (gx, gy), (bx, by) = xy
    white = np.array([0.3127 / 0.3290, 1.0, (1 - 0.3127 - 0.3290) / 0.3290])
    columns = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in ((rx, ry), (gx, gy), (bx, by))]).T
    return columns * np.linalg.solve(columns, white)


REC709 = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
REC2020 = ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046))


def test_primary_matrices_follow_from_the_chromaticities():
    to2020 = np.linalg.solve(primaries_to_xyz(REC2020), primaries_to_xyz(REC709))
    np.testing.assert_allclose(np.array(S.REC709_TO_REC2020), to2020, atol=1e-4)
    np.testing.assert_allclose(np.array(S.REC2020_TO_REC709), np.linalg.inv(to2020), atol=1e-4)
    np.testing.assert_allclose(np.array(S.REC709_LUMA), primaries_to_xyz(REC709)[1], atol=1e-6)
    np.testing.assert_allclose(np.array(S.REC2020_LUMA), primaries_to_xyz(REC2020)[1], atol=1e-4)


def test_srgb_transfer_known_values_and_round_trip():
    values = torch.tensor([0.0, 0.04045, 0.5, 1.0], dtype=torch.float64)
    expected = [0.0, 0.04045 / 12.92, ((0.5 + 0.055) / 1.055) ** 2.4, 1.0]
    torch.testing.assert_close(S.srgb_to_linear(values), torch.tensor(expected, dtype=torch.float64))
    assert S.srgb_to_linear(torch.tensor(0.5)).item() == pytest.approx(0.214041, abs=1e-6)
    grid = torch.linspace(0, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(S.linear_to_srgb(S.srgb_to_linear(grid)), grid)


def test_hlg_known_values_and_round_trip():
    # BT.2100: E = 1/12 sits at signal 0.5, E = 1 at signal 1
    light = torch.tensor([0.0, 1 / 12, 1.0], dtype=torch.float64)
    torch.testing.assert_close(S.linear_to_hlg(light), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64),
                               atol=1e-7, rtol=0)
    grid = torch.linspace(0, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(S.linear_to_hlg(S.hlg_to_linear(grid)), grid)


def test_pq_known_values_and_round_trip():
    nits = torch.tensor([0.0, 100.0, 203.0, 1000.0, 10000.0], dtype=torch.float64)
    # ST 2084 / BT.2408 reference points: 100 cd/m² ≈ 0.5081, 203 ≈ 0.5807, 1000 ≈ 0.7518
    expected = torch.tensor([7.3e-7, 0.508078, 0.580690, 0.751827, 1.0], dtype=torch.float64)
    torch.testing.assert_close(S.nits_to_pq(nits), expected, atol=2e-6, rtol=0)
    signal = torch.linspace(0, 1, 101, dtype=torch.float64)
    torch.testing.assert_close(S.nits_to_pq(S.pq_to_nits(signal)), signal, atol=1e-6, rtol=0)  # PQ(0) = c1^m2


def test_reference_white_lands_where_bt2408_puts_it():
    white = torch.ones(1, 1, 1, 3)
    assert torch.allclose(S.convert(white, "sRGB", "HDR"), torch.full((1, 1, 1, 3), 0.75), atol=2e-3)
    assert torch.allclose(S.convert(white, "sRGB", "HDR PQ"), torch.full((1, 1, 1, 3), 0.5807), atol=1e-3)
    assert torch.allclose(S.convert(white, "sRGB", "linear"), white, atol=1e-5)


@pytest.mark.parametrize("space", ["HDR", "HDR PQ", "linear"])
def test_in_gamut_srgb_round_trips(space):
    image = torch.rand(2, 5, 5, 3) * 0.9 + 0.05
    back = S.convert(S.convert(image, "sRGB", space), space, "sRGB")
    torch.testing.assert_close(back, image, atol=2e-4, rtol=0)


def test_alpha_passes_and_same_space_is_identity():
    image = torch.rand(1, 3, 3, 4)
    out = S.convert(image, "sRGB", "HDR PQ")
    assert torch.equal(out[..., 3], image[..., 3])
    assert S.convert(image, "HDR", "HDR") is image


def test_sdr_output_tone_maps_highlights_and_stays_in_range():
    bright = torch.tensor([[[[4.0, 4.0, 4.0], [0.5, 0.5, 0.5], [2.0, -0.3, 0.1]]]])
    out = S.convert(bright, "linear", "sRGB")
    assert out.min() >= 0 and out.max() <= 1
    assert out[0, 0, 0, 0] == pytest.approx(1.0, abs=1e-5)  # the batch's brightest becomes white
    assert out[0, 0, 1, 0] < S.linear_to_srgb(torch.tensor(0.5)).item()  # mid grey compressed too
    assert out[0, 0, 2, 0] > out[0, 0, 2, 1]  # a saturated red stays red


def test_tone_map_is_extended_reinhard_with_the_batch_white():
    luminance = torch.tensor([[0.5], [2.0], [8.0]])
    rgb = luminance.expand(3, 3)
    out = S.tone_map(rgb, S.REC709_LUMA)[:, 0]
    expected = luminance[:, 0] * (1 + luminance[:, 0] / 64) / (1 + luminance[:, 0])
    torch.testing.assert_close(out, expected)


def test_lab_of_known_colours():
    colours = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    lab = S.rgb_to_lab(colours)
    expected = torch.tensor([[100.0, 0.0, 0.0], [53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(lab, expected, atol=0.05, rtol=0)
    samples = torch.rand(200, 3)
    torch.testing.assert_close(S.lab_to_rgb(S.rgb_to_lab(samples)), samples, atol=1e-4, rtol=0)


# -- LogC3, ACEScg, ACEScct --------------------------------------------------------------------------

# Academy S-2014-004: ACEScg's AP1 → XYZ matrix as published (10 decimals).
AP1_TO_XYZ = ((0.6624541811, 0.1340042065, 0.1561876870),
              (0.2722287168, 0.6740817658, 0.0536895174),
              (-0.0055746495, 0.0040607335, 1.0103391003))
# Linear Rec.709 (D65) → ACEScg with Bradford adaptation, as the ACES OCIO configs publish it.
REC709_TO_ACESCG = ((0.6130974024, 0.3395231462, 0.0473794514),
                    (0.0701937225, 0.9163538791, 0.0134523985),
                    (0.0206155929, 0.1095697729, 0.8698146342))
# Lindbloom's Bradford D50 → D65 matrix, computed from his whites (XYZ, Y = 1).
LINDBLOOM_D50_TO_D65 = ((0.9555766, -0.0230393, 0.0631636),
                        (-0.0282895, 1.0099416, 0.0210077),
                        (0.0122982, -0.0204830, 1.3299098))


def f64(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_logc3_ei800_known_values():
    # ARRI's EI 800 curve: 18% grey at 0.391007, zero exposure at f, both segments meet at the cut
    codes = S.linear_to_logc3(f64(0.18, 0.0, S.LOGC3_CUT))
    torch.testing.assert_close(codes, f64(0.391007, 0.092809, 0.149658), atol=1e-6, rtol=0)
    below = S.LOGC3_E * S.LOGC3_CUT + S.LOGC3_F
    above = S.LOGC3_C * np.log10(S.LOGC3_A * S.LOGC3_CUT + S.LOGC3_B) + S.LOGC3_D
    assert below == pytest.approx(above, abs=1e-6)
    assert S.logc3_to_linear(f64(1.0)).item() == pytest.approx(55.08, abs=0.01)  # EI 800's clip point


def test_logc3_clamps_codes_and_round_trips():
    torch.testing.assert_close(S.linear_to_logc3(f64(-1.0, 1000.0)), f64(0.0, 1.0))
    torch.testing.assert_close(S.logc3_to_linear(f64(-0.5, 1.5)), S.logc3_to_linear(f64(0.0, 1.0)))
    light = torch.cat([torch.linspace(-0.017, 0.0106, 30), torch.logspace(-2, 1.7, 50)]).double()
    torch.testing.assert_close(S.logc3_to_linear(S.linear_to_logc3(light)), light, atol=1e-9, rtol=1e-9)


def test_acescct_known_values_and_round_trip():
    torch.testing.assert_close(S.linear_to_acescct(f64(0.18, 1.0)), f64(0.4135884, (9.72 + 0) / 17.52),
                               atol=1e-7, rtol=0)
    # S-2016-001: the toe and the log meet at X_BRK = 2^-7, Y_BRK = 0.155251141552511
    toe = S.ACESCCT_TOE_SLOPE * S.ACESCCT_LINEAR_BREAK + S.ACESCCT_TOE_OFFSET
    log = (np.log2(S.ACESCCT_LINEAR_BREAK) + 9.72) / 17.52
    assert toe == pytest.approx(0.155251141552511, abs=1e-12) and log == pytest.approx(toe, abs=1e-12)
    light = torch.cat([torch.linspace(-0.05, 0.0078, 30), torch.logspace(-2, 4, 60)]).double()
    torch.testing.assert_close(S.acescct_to_linear(S.linear_to_acescct(light)), light, atol=1e-12, rtol=1e-9)
    assert S.acescct_to_linear(f64(1.6)).item() == 65504.0  # past half-float's max, as the spec clamps


def test_ap1_and_bradford_matrices_match_the_published_ones():
    np.testing.assert_allclose(S.rgb_to_xyz_matrix(S.AP1_PRIMARIES, S.ACES_WHITE_XY), AP1_TO_XYZ, atol=1e-10)
    d50, d65 = ((white[0] / sum(white), 1.0 / sum(white)) for white in ((0.96422, 1.0, 0.82521),
                                                                       (0.95047, 1.0, 1.08883)))
    np.testing.assert_allclose(S.bradford_matrix(d50, d65), LINDBLOOM_D50_TO_D65, atol=1e-6)
    # the ACES white adapts onto D65 exactly
    aces = S.rgb_to_xyz_matrix(S.AP1_PRIMARIES, S.ACES_WHITE_XY).sum(axis=1)
    d65_xyz = np.array([0.3127 / 0.3290, 1.0, (1 - 0.3127 - 0.3290) / 0.3290])
    np.testing.assert_allclose(S.bradford_matrix(S.ACES_WHITE_XY, S.D65_WHITE_XY) @ aces, d65_xyz, atol=1e-12)
    rec709_to_ap1 = np.array(S.REC2020_TO_AP1) @ np.array(S.REC709_TO_REC2020)
    np.testing.assert_allclose(rec709_to_ap1, REC709_TO_ACESCG, atol=1e-9)
    np.testing.assert_allclose(np.array(S.AP1_TO_REC2020) @ np.array(S.REC2020_TO_AP1), np.eye(3), atol=1e-12)


def test_new_spaces_through_convert():
    grey = torch.full((1, 1, 1, 3), 0.18)
    assert torch.allclose(S.convert(grey, "linear", "HDR LogC3"), torch.full_like(grey, 0.391007), atol=2e-6)
    assert torch.allclose(S.convert(grey, "linear", "HDR ACEScct"), torch.full_like(grey, 0.4135884), atol=2e-6)
    white = torch.ones(1, 1, 1, 3)  # white stays white: the 203-nit reference white in every linear space
    assert torch.allclose(S.convert(white, "sRGB", "linear ACEScg"), white, atol=1e-5)
    assert torch.allclose(S.convert(white, "linear ACEScg", "HDR"), torch.full_like(white, 0.75), atol=2e-3)
    red = torch.tensor([[[[1.0, 0.0, 0.0]]]])
    expected = torch.tensor(REC709_TO_ACESCG, dtype=torch.float32)[:, 0]
    torch.testing.assert_close(S.convert(red, "linear", "linear ACEScg")[0, 0, 0], expected, atol=1e-5, rtol=0)


def test_acescg_and_acescct_keep_extended_values_and_logc3_clamps():
    bright = torch.tensor([[[[4.0, 4.0, 4.0], [0.5, 0.5, 0.5], [-0.02, 0.3, 0.1]]]])
    acescg = S.convert(bright, "linear", "linear ACEScg")
    torch.testing.assert_close(acescg[0, 0, 0], torch.full((3,), 4.0), atol=1e-5, rtol=0)  # no tone mapping
    cct = S.convert(bright, "linear", "HDR ACEScct")
    assert cct[0, 0, 0, 0].item() == pytest.approx((2 + 9.72) / 17.52, abs=1e-5)
    torch.testing.assert_close(S.convert(cct, "HDR ACEScct", "linear"), bright, atol=1e-5, rtol=0)
    logc3 = S.convert(torch.tensor([[[[100.0, 100.0, 100.0], [-1.0, -1.0, -1.0]]]]), "linear", "HDR LogC3")
    torch.testing.assert_close(logc3[0, 0], torch.tensor([[1.0] * 3, [0.0] * 3]))


@pytest.mark.parametrize("space", ["HDR LogC3", "linear ACEScg", "HDR ACEScct"])
def test_new_spaces_round_trip_srgb(space):
    image = torch.rand(2, 5, 5, 4)
    back = S.convert(S.convert(image, "sRGB", space), space, "sRGB")
    torch.testing.assert_close(back, image, atol=2e-4, rtol=0)
    assert torch.equal(S.convert(image, "sRGB", space)[..., 3], image[..., 3])
