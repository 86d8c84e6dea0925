"""SDR → HDR: sRGB images expanded into Rec.2020 HLG (BT.2100), for ComfyUI's ImageSDRToHDR.

Each image is decoded from sRGB to linear Rec.709 light (1.0 = SDR white), its luminance is
expanded by the inverse of a Lottes rational tone curve, and the result is placed as display
light (SDR white at the peak target) on an HLG reference display, converted to Rec.2020 and
encoded with BT.2100's inverse OOTF and OETF.

The curve is Lottes' ``y = x^a / ((x^a)^d · b + c)`` (Lottes 2016, "Advanced Techniques and
Optimization of HDR Color Pipelines") with contrast ``a = 1``, shoulder ``d = 1`` and ``c = 1``,
which makes its inverse rational: ``x = y / (1 - b·y)``. Slope 1 at black keeps the shadows as
they were; ``b = 1 - 1/peak`` sends SDR white to ``peak`` (the target in units of the 203 cd/m²
reference white), so the lift grows towards the highlights. It scales each pixel's RGB by the
gain of its Rec.709 luminance, so hues are kept, and it depends on the pixel alone: a dark image
is not stretched to the peak.

ComfyUI's node blends a Lottes-style curve with a calibrated log-gain curve whose constants are
not published; this curve is Weft's own, so pixel values do not match ComfyUI's bit for bit.
The inputs mean the same: a target of 0 keeps the calibrated rendering (here SDR white at the
HLG reference display's 1000 cd/m²); a target up to 1000 cd/m² is encoded for that reference
display, a brighter one for a display of that peak (BT.2100's system gamma for it), so SDR
white always fits the signal.
"""

from __future__ import annotations

import torch

from ldm.imaging import color_spaces

ALGORITHMS = ("lottes",)
CALIBRATED_PEAK_NITS = color_spaces.HLG_PEAK_NITS


def expansion_gain(luminance: torch.Tensor, peak: float) -> torch.Tensor:
    """x / y for the inverse Lottes curve above, which takes linear SDR luminance y (0..1) to
    x (0..``peak``): written as a gain so that black needs no division."""
    return 1.0 / (1.0 - (1.0 - 1.0 / peak) * luminance)


def _expand_frame(rgb: torch.Tensor, peak_nits: float, display_nits: float) -> torch.Tensor:
    """One sRGB frame [H, W, 3] → HLG signal for a display of ``display_nits`` peak."""
    linear = color_spaces.srgb_to_linear(rgb.clamp(0.0, 1.0))
    luminance = (linear * linear.new_tensor(color_spaces.REC709_LUMA)).sum(dim=-1, keepdim=True)
    gain = expansion_gain(luminance, peak_nits / color_spaces.SDR_WHITE_NITS)
    rec2020 = linear * gain @ linear.new_tensor(color_spaces.REC709_TO_REC2020).T
    display = rec2020 * (color_spaces.SDR_WHITE_NITS / display_nits)
    gamma = color_spaces.hlg_system_gamma(display_nits)
    return color_spaces.linear_to_hlg(color_spaces.hlg_inverse_ootf(display, gamma))


def sdr_to_hlg(image: torch.Tensor, target_luminance: float) -> torch.Tensor:
    """IMAGE [B, H, W, 1|3|4] in sRGB → Rec.2020 HLG [B, H, W, 3|4], SDR white at
    ``target_luminance`` cd/m² (0: the calibrated :data:`CALIBRATED_PEAK_NITS`). Computed in
    float32 one image at a time; one channel is grey, a fourth is alpha and is copied."""
    channels = image.shape[-1]
    if channels not in (1, 3, 4):
        raise ValueError(f"SDR to HDR needs a grey, RGB or RGBA image, got {channels} channels")
    peak_nits = target_luminance if target_luminance > 0 else CALIBRATED_PEAK_NITS
    display_nits = max(color_spaces.HLG_PEAK_NITS, peak_nits)
    result = image.new_empty((*image.shape[:-1], 4 if channels == 4 else 3))
    for index, frame in enumerate(image):
        rgb = frame[..., :3].float().expand(*frame.shape[:-1], 3)
        result[index, ..., :3] = _expand_frame(rgb, peak_nits, display_nits)
    if channels == 4:
        result[..., 3] = image[..., 3]
    return result
