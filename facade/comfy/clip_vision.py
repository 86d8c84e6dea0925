"""``comfy.clip_vision``: CLIP vision models — not in Weft yet — and the two plain helpers packs use.

:class:`Output` (the container a CLIP vision encode returns) and :func:`clip_preprocess` (CLIP's
image preparation) work. ``ClipVisionModel`` is a real class that matches no Weft object and
raises :class:`_weft_absent.NotInWeftError` when constructed; ``load`` and
``load_clipvision_from_sd`` raise when called.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from _weft_absent import CLIP_VISION, absent_class, absent_function

#: The RGB mean and standard deviation CLIP's image encoders were trained with (OpenAI CLIP).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class Output:
    """An attribute bag that also answers ``output["key"]`` (``image_embeds``,
    ``last_hidden_state``, ``penultimate_hidden_states`` …)."""

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)


def clip_preprocess(image: torch.Tensor, size: int = 224, mean: Sequence[float] = CLIP_MEAN,
                    std: Sequence[float] = CLIP_STD, crop: bool = True) -> torch.Tensor:
    """IMAGE ``[B, H, W, C]`` in 0…1 → CLIP pixels ``[B, 3, size, size]``.

    The RGB channels (alpha dropped) are resized with antialiased bicubic interpolation —
    shorter side to ``size`` then centre-cropped, or squashed to ``size × size`` with
    ``crop=False`` (an image already ``size × size`` is left alone) — quantised to 8 bits, and
    normalised by ``mean`` / ``std``.
    """
    pixels = image[..., :3].movedim(-1, 1)  # [B, 3, H, W]
    height, width = pixels.shape[-2:]
    if (height, width) != (size, size):
        if crop:
            scale = size / min(height, width)
            target = (round(scale * height), round(scale * width))
        else:
            target = (size, size)
        pixels = F.interpolate(pixels, size=target, mode="bicubic", antialias=True)
        top = (pixels.shape[-2] - size) // 2
        left = (pixels.shape[-1] - size) // 2
        pixels = pixels[..., top:top + size, left:left + size]
    pixels = (pixels * 255.0).clamp(0, 255).round() / 255.0
    mean_t = torch.tensor(mean, device=pixels.device, dtype=pixels.dtype).view(3, 1, 1)
    std_t = torch.tensor(std, device=pixels.device, dtype=pixels.dtype).view(3, 1, 1)
    return (pixels - mean_t) / std_t


ClipVisionModel = absent_class(CLIP_VISION, __name__, "ClipVisionModel")
load = absent_function(CLIP_VISION, __name__, "load")
load_clipvision_from_sd = absent_function(CLIP_VISION, __name__, "load_clipvision_from_sd")
