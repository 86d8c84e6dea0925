"""``comfy.latent_formats``: ComfyUI's latent format classes, matched against Weft's formats.

``isinstance(model.model.latent_format, comfy.latent_formats.SDXL)`` holds for Weft's SDXL format;
calling a class gives Weft's format object itself (``SD15()`` is ``ldm.latent_formats.SD15``).
"""

from __future__ import annotations

from comfy._kinds import KindMeta
from ldm import latent_formats as weft_formats


class LatentFormat(metaclass=KindMeta):
    """Every Weft latent format."""

    __weft_is__ = staticmethod(lambda obj: isinstance(obj, weft_formats.LatentFormat))


def _format_class(name: str, weft_format):
    def construct(cls, *args, **kwargs):
        return weft_format

    return KindMeta(name, (LatentFormat,), {
        "__weft_is__": staticmethod(lambda obj: obj is weft_format),
        "__new__": construct, "__module__": __name__,
        "scale_factor": weft_format.scale_factor, "latent_channels": weft_format.channels,
    })


SD15 = _format_class("SD15", weft_formats.SD15)
SDXL = _format_class("SDXL", weft_formats.SDXL)
SD_X4 = _format_class("SD_X4", weft_formats.SD_X4)
