"""Colour spaces of IMAGE tensors: sRGB, linear Rec.709, Rec.2020 HLG and PQ (BT.2100), ARRI
LogC3, ACEScg and ACEScct, CIE Lab.

Transfer functions from their standards: sRGB (IEC 61966-2-1), HLG (ITU-R BT.2100 table 5),
PQ (SMPTE ST 2084), LogC3 (ARRI, "ALEXA Log C Curve – Usage in VFX", EI 800), ACEScct
(Academy S-2016-001); ACEScg's AP1 primaries and white from Academy S-2014-004, adapted to
D65 by the Bradford transform (Lam 1985, as Lindbloom tabulates it). :func:`convert` follows
ComfyUI's ImageColorSpace: every source goes to display-linear Rec.2020 in cd/m² (sRGB, linear,
LogC3 and ACEScg 1.0 = 203 cd/m², the BT.2408 reference white; HLG through its OOTF for a
1000 cd/m² display, system gamma 1.2), then to the destination. LogC3 carries Rec.709
primaries and its codes are clamped to 0..1; linear, ACEScg and ACEScct keep values outside
0..1. SDR output, and HLG output from PQ, tone-map luminance with an extended Reinhard curve
whose white point is the brightest pixel of the whole batch (so frames keep one exposure) and
pull out-of-gamut colours towards their luminance. Alpha is never transformed.

Lab is CIE 1976 L*a*b* against D65, computed as kornia.color does (ComfyUI's ColorTransfer
works in it): its sRGB→XYZ matrix, white (0.95047, 1, 1.08883), and lab→rgb clipped to 0..1.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# ComfyUI's combo order
SPACES = ("sRGB", "HDR", "HDR ACEScct", "HDR LogC3", "HDR PQ", "linear", "linear ACEScg")

# Rec.709 ↔ Rec.2020 primaries, both D65 (the matrices of ITU-R BT.2087, full precision).
REC709_TO_REC2020 = ((0.6274038959346991, 0.3292830383778837, 0.0433130656874172),
                     (0.0690972893582320, 0.9195403950754587, 0.0113623155663092),
                     (0.0163914388751503, 0.0880133078772259, 0.8955952532476238))
REC2020_TO_REC709 = ((1.6604910021084338, -0.5876411387885494, -0.0728498633198846),
                     (-0.1245504745215905, 1.1328998971259600, -0.0083494226043695),
                     (-0.0181507633549053, -0.1005788980080076, 1.1187296613629125))
REC709_LUMA = (0.2126390058715103, 0.7151686787677559, 0.0721923153607337)
REC2020_LUMA = (0.2627, 0.6780, 0.0593)

HLG_A, HLG_B, HLG_C = 0.17883277, 0.28466892, 0.55991072928  # c = 0.5 - a·ln(4a)
HLG_PEAK_NITS, HLG_GAMMA = 1000.0, 1.2
PQ_M1, PQ_M2 = 2610 / 16384, 2523 / 32
PQ_C1, PQ_C2, PQ_C3 = 3424 / 4096, 2413 / 128, 2392 / 128
PQ_PEAK_NITS = 10000.0
SDR_WHITE_NITS = 203.0

# ARRI LogC3 for EI 800, from scene-linear exposure: c·log10(a·x + b) + d above the cut, e·x + f below.
LOGC3_CUT, LOGC3_A, LOGC3_B = 0.010591, 5.555556, 0.052272
LOGC3_C, LOGC3_D, LOGC3_E, LOGC3_F = 0.247190, 0.385537, 5.367655, 0.092809

# ACEScct (S-2016-001): a straight toe below 2^-7, log2 above; codes decode to at most half-float's max.
ACESCCT_LINEAR_BREAK = 0.0078125
ACESCCT_CODE_BREAK = 0.155251141552511
ACESCCT_TOE_SLOPE, ACESCCT_TOE_OFFSET = 10.5402377416545, 0.0729055341958355
HALF_FLOAT_MAX = 65504.0

# CIE 1931 chromaticities (x, y): ACEScg's AP1 primaries and the ACES white (S-2014-004), Rec.2020, D65.
AP1_PRIMARIES = ((0.713, 0.293), (0.165, 0.830), (0.128, 0.044))
ACES_WHITE_XY = (0.32168, 0.33767)
REC2020_PRIMARIES = ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046))
D65_WHITE_XY = (0.3127, 0.3290)
# XYZ → the Bradford "sharpened" cone space (Lam 1985)
BRADFORD = ((0.8951, 0.2664, -0.1614), (-0.7502, 1.7135, 0.0367), (0.0389, -0.0685, 1.0296))


def srgb_to_linear(values: torch.Tensor) -> torch.Tensor:
    """The sRGB decoding (inverse OETF)."""
    return torch.where(values <= 0.04045, values / 12.92, ((values.clamp(min=0.0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values: torch.Tensor) -> torch.Tensor:
    return torch.where(values <= 0.0031308, values * 12.92, 1.055 * values.clamp(min=0.0) ** (1 / 2.4) - 0.055)


def hlg_to_linear(signal: torch.Tensor) -> torch.Tensor:
    """HLG inverse OETF: signal 0..1 → scene-linear light 0..1."""
    high = (torch.exp((signal.clamp(min=0.5) - HLG_C) / HLG_A) + HLG_B) / 12.0  # clamp keeps exp finite
    return torch.where(signal <= 0.5, signal ** 2 / 3.0, high)


def linear_to_hlg(light: torch.Tensor) -> torch.Tensor:
    """HLG OETF; negative light is clipped."""
    low = (3.0 * light.clamp(min=0.0)).sqrt()
    high = HLG_A * torch.log(12.0 * light.clamp(min=1.0 / 12.0) - HLG_B) + HLG_C
    return torch.where(light <= 1.0 / 12.0, low, high)


def pq_to_nits(signal: torch.Tensor) -> torch.Tensor:
    """PQ EOTF: signal 0..1 → display light in cd/m²."""
    power = signal.clamp(min=0.0) ** (1 / PQ_M2)
    return ((power - PQ_C1).clamp(min=0.0) / (PQ_C2 - PQ_C3 * power)) ** (1 / PQ_M1) * PQ_PEAK_NITS


def nits_to_pq(nits: torch.Tensor) -> torch.Tensor:
    """PQ inverse EOTF; negative light is clipped."""
    power = (nits.clamp(min=0.0) / PQ_PEAK_NITS) ** PQ_M1
    return ((PQ_C1 + PQ_C2 * power) / (1.0 + PQ_C3 * power)) ** PQ_M2


def linear_to_logc3(light: torch.Tensor) -> torch.Tensor:
    """LogC3 (EI 800) encoding of scene-linear light; codes are clamped to 0..1."""
    log = LOGC3_C * torch.log10(LOGC3_A * light.clamp(min=LOGC3_CUT) + LOGC3_B) + LOGC3_D
    return torch.where(light > LOGC3_CUT, log, LOGC3_E * light + LOGC3_F).clamp(0.0, 1.0)


def logc3_to_linear(code: torch.Tensor) -> torch.Tensor:
    """LogC3 (EI 800) decoding; codes are clamped to 0..1, so light tops out near 55 (code 1)."""
    code = code.clamp(0.0, 1.0)
    log = (10.0 ** ((code - LOGC3_D) / LOGC3_C) - LOGC3_B) / LOGC3_A
    return torch.where(code > LOGC3_E * LOGC3_CUT + LOGC3_F, log, (code - LOGC3_F) / LOGC3_E)


def linear_to_acescct(light: torch.Tensor) -> torch.Tensor:
    """ACEScct encoding; the straight toe carries negative light through."""
    log = (torch.log2(light.clamp(min=ACESCCT_LINEAR_BREAK)) + 9.72) / 17.52
    return torch.where(light <= ACESCCT_LINEAR_BREAK, ACESCCT_TOE_SLOPE * light + ACESCCT_TOE_OFFSET, log)


def acescct_to_linear(code: torch.Tensor) -> torch.Tensor:
    """ACEScct decoding; light above half-float's largest value is clamped to it, as the spec does."""
    log = (2.0 ** (code * 17.52 - 9.72)).clamp(max=HALF_FLOAT_MAX)
    return torch.where(code <= ACESCCT_CODE_BREAK, (code - ACESCCT_TOE_OFFSET) / ACESCCT_TOE_SLOPE, log)


def _xy_to_xyz(xy) -> np.ndarray:
    """A chromaticity (x, y) as XYZ with Y = 1."""
    x, y = xy
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def rgb_to_xyz_matrix(primaries, white) -> np.ndarray:
    """The normalised primary matrix (SMPTE RP 177) of RGB primaries and a white, all (x, y)."""
    columns = np.stack([_xy_to_xyz(xy) for xy in primaries], axis=1)
    return columns * np.linalg.solve(columns, _xy_to_xyz(white))


def bradford_matrix(source_white, destination_white) -> np.ndarray:
    """XYZ under ``source_white`` → XYZ under ``destination_white`` (both (x, y)): von Kries
    scaling in the Bradford cone space."""
    cones = np.array(BRADFORD)
    gains = (cones @ _xy_to_xyz(destination_white)) / (cones @ _xy_to_xyz(source_white))
    return np.linalg.inv(cones) @ np.diag(gains) @ cones


def _as_tuple(matrix: np.ndarray) -> tuple:
    return tuple(tuple(float(value) for value in row) for row in matrix)


# ACEScg (AP1, ACES white) ↔ Rec.2020 (D65), through XYZ with Bradford adaptation of the white.
AP1_TO_REC2020 = _as_tuple(np.linalg.inv(rgb_to_xyz_matrix(REC2020_PRIMARIES, D65_WHITE_XY))
                           @ bradford_matrix(ACES_WHITE_XY, D65_WHITE_XY)
                           @ rgb_to_xyz_matrix(AP1_PRIMARIES, ACES_WHITE_XY))
REC2020_TO_AP1 = _as_tuple(np.linalg.inv(np.array(AP1_TO_REC2020)))


def _mix(rgb: torch.Tensor, matrix) -> torch.Tensor:
    return rgb @ rgb.new_tensor(matrix).T


def _luminance(rgb: torch.Tensor, weights) -> torch.Tensor:
    return (rgb * rgb.new_tensor(weights)).sum(dim=-1, keepdim=True)


def hlg_system_gamma(peak_nits: float) -> float:
    """BT.2100's system gamma for an HLG display of nominal peak ``peak_nits`` (1.2 at 1000 cd/m²;
    specified for 400 to 2000 cd/m², used unchanged beyond)."""
    return HLG_GAMMA + 0.42 * math.log10(peak_nits / HLG_PEAK_NITS)


def hlg_inverse_ootf(display: torch.Tensor, gamma: float = HLG_GAMMA) -> torch.Tensor:
    """Rec.2020 display light as a fraction of the display's peak → HLG scene light
    (BT.2100's OOTF inverted: Es = Fd · Yd^(1/γ - 1))."""
    luminance = _luminance(display, REC2020_LUMA).clamp(min=torch.finfo(display.dtype).tiny)
    return display * luminance ** (1.0 / gamma - 1.0)


def tone_map(rgb: torch.Tensor, weights) -> torch.Tensor:
    """Extended Reinhard on luminance with the batch's brightest luminance as white (Reinhard
    et al. 2002, eq. 4); a batch no brighter than 1 (up to round-off) is left alone."""
    luminance = _luminance(rgb, weights).clamp(min=0.0)
    peak = luminance.amax().clamp(min=1.0)
    scale = (1.0 + luminance / peak.square()) / (1.0 + luminance)
    return rgb * torch.where(peak > 1.0001, scale, torch.ones_like(scale))


def compress_gamut(rgb: torch.Tensor, weights) -> torch.Tensor:
    """Pulls each colour towards its (clipped) luminance just far enough to fit 0..1; colours
    already inside (up to 1e-5 of round-off) are kept."""
    luminance = _luminance(rgb, weights).clamp(0.0, 1.0)
    tiny = torch.finfo(rgb.dtype).tiny
    lowest, highest = rgb.amin(dim=-1, keepdim=True), rgb.amax(dim=-1, keepdim=True)
    room_up = (1.0 - luminance) / (highest - luminance).clamp(min=tiny)
    room_down = luminance / (luminance - lowest).clamp(min=tiny)
    saturation = torch.minimum(room_up, room_down).clamp(0.0, 1.0)
    inside = (lowest >= -1e-5) & (highest <= 1.00001)
    return torch.where(inside, rgb, luminance + (rgb - luminance) * saturation).clamp(0.0, 1.0)


def _to_display_nits(rgb: torch.Tensor, source: str) -> torch.Tensor:
    """Display-linear Rec.2020 in cd/m²."""
    if source == "sRGB":
        return _mix(srgb_to_linear(rgb), REC709_TO_REC2020) * SDR_WHITE_NITS
    if source == "linear":
        return _mix(rgb, REC709_TO_REC2020) * SDR_WHITE_NITS
    if source == "HDR":  # HLG OOTF: Fd = peak · Ys^(γ-1) · Es
        scene = hlg_to_linear(rgb)
        return scene * _luminance(scene, REC2020_LUMA).clamp(min=0.0) ** (HLG_GAMMA - 1.0) * HLG_PEAK_NITS
    if source == "HDR PQ":
        return pq_to_nits(rgb)
    if source == "HDR LogC3":
        return _mix(logc3_to_linear(rgb), REC709_TO_REC2020) * SDR_WHITE_NITS
    if source == "linear ACEScg":
        return _mix(rgb, AP1_TO_REC2020) * SDR_WHITE_NITS
    if source == "HDR ACEScct":
        return _mix(acescct_to_linear(rgb), AP1_TO_REC2020) * SDR_WHITE_NITS
    raise ValueError(f"Unsupported source color space: {source}")


def _from_display_nits(rgb: torch.Tensor, destination: str, source: str) -> torch.Tensor:
    if destination == "linear":
        return _mix(rgb / SDR_WHITE_NITS, REC2020_TO_REC709)
    if destination == "sRGB":
        rgb = _mix(rgb / SDR_WHITE_NITS, REC2020_TO_REC709)
        return linear_to_srgb(compress_gamut(tone_map(rgb, REC709_LUMA), REC709_LUMA))
    if destination == "HDR":  # inverse OOTF, then the OETF
        rgb = rgb / HLG_PEAK_NITS
        from_pq = source == "HDR PQ"  # PQ reaches 10000 cd/m², past an HLG display's peak
        if from_pq:
            rgb = tone_map(rgb, REC2020_LUMA)
        rgb = hlg_inverse_ootf(rgb)
        if from_pq:
            rgb = compress_gamut(rgb, REC2020_LUMA)
        return linear_to_hlg(rgb)
    if destination == "HDR PQ":
        return nits_to_pq(rgb)
    if destination == "HDR LogC3":
        return linear_to_logc3(_mix(rgb / SDR_WHITE_NITS, REC2020_TO_REC709))
    if destination == "linear ACEScg":
        return _mix(rgb / SDR_WHITE_NITS, REC2020_TO_AP1)
    if destination == "HDR ACEScct":
        return linear_to_acescct(_mix(rgb / SDR_WHITE_NITS, REC2020_TO_AP1))
    raise ValueError(f"Unsupported destination color space: {destination}")


def convert(image: torch.Tensor, source: str, destination: str) -> torch.Tensor:
    """``image`` [..., 3|4] from one of :data:`SPACES` to another, computed in float32 (PQ's
    exponents need more than half precision) and returned in the input's dtype."""
    if source == destination:
        return image
    rgb = _from_display_nits(_to_display_nits(image[..., :3].float(), source), destination, source)
    if image.shape[-1] == 4:
        rgb = torch.cat((rgb, image[..., 3:].float()), dim=-1)
    return rgb.to(image.dtype)


# -- CIE Lab, as kornia.color computes it ----------------------------------------------------------

_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_XYZ_TO_RGB = ((3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
               (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
               (0.0556466391351772, -0.2040413383665112, 1.0573110696453443))
_D65_WHITE = (0.95047, 1.0, 1.08883)
_LAB_EPSILON = 0.008856  # (6/29)³, rounded as CIE publishes it
_LAB_SLOPE = 7.787  # (29/6)² / 3, rounded


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB [..., 3] → L*a*b* [..., 3] (L in 0..100)."""
    xyz = _mix(srgb_to_linear(rgb), _RGB_TO_XYZ) / rgb.new_tensor(_D65_WHITE)
    f = torch.where(xyz > _LAB_EPSILON, xyz.clamp(min=_LAB_EPSILON) ** (1 / 3), _LAB_SLOPE * xyz + 4 / 29)
    fx, fy, fz = f.unbind(-1)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """L*a*b* [..., 3] → sRGB [..., 3], clipped to 0..1."""
    lightness, a, b = lab.unbind(-1)
    fy = (lightness + 16.0) / 116.0
    f = torch.stack((a / 500.0 + fy, fy, (fy - b / 200.0).clamp(min=0.0)), dim=-1)
    xyz = torch.where(f > 6 / 29, f ** 3, (f - 4 / 29) / _LAB_SLOPE) * lab.new_tensor(_D65_WHITE)
    return linear_to_srgb(_mix(xyz, _XYZ_TO_RGB)).clamp(0.0, 1.0)
