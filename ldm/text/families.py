"""Which text encoders each model family uses, where their weights sit, and how they are read.

Facts (from the papers' reference code and ComfyUI's defaults):

| family | encoder (tokens key) | checkpoint prefix | layer | final norm on it | pad |
|---|---|---|---|---|---|
| SD1.x | CLIP ViT-L/14 (``l``) | ``cond_stage_model.`` | last | yes | EOS |
| SD2.x, x4 upscaler | OpenCLIP ViT-H/14 (``h``) | ``cond_stage_model.`` | penultimate | yes | 0 |
| SDXL | CLIP ViT-L/14 (``l``) | ``conditioner.embedders.0.`` | penultimate | no | EOS |
| SDXL | OpenCLIP ViT-bigG/14 (``g``) | ``conditioner.embedders.1.`` | penultimate | no | 0 |
| SDXL refiner | OpenCLIP ViT-bigG/14 (``g``) | ``conditioner.embedders.0.`` | penultimate | no | 0 |

SDXL concatenates the L and G outputs along channels (768 + 1280 = 2048) and takes its pooled
vector from bigG's ``text_projection``; the refiner's pooled vector comes from the same place.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldm.text.tokenizer import EOS_ID


@dataclass(frozen=True)
class EncoderSlot:
    name: str  # key of this encoder's tokens: "l" | "h" | "g"
    kind: str  # "clip_l" | "clip_h" | "clip_g": module name, embedding-file key
    prefix: str  # where its weights start in a single-file checkpoint
    layer: int | None  # None = last layer, -2 = penultimate, …
    norm_hidden: bool  # apply the final layer norm to an intermediate layer's output
    pad_token: int


@dataclass(frozen=True)
class TextFamily:
    name: str
    slots: tuple[EncoderSlot, ...]
    pooled_from: str  # slot name whose pooled output becomes ``pooled_output``

    def slot(self, name: str) -> EncoderSlot:
        return next(s for s in self.slots if s.name == name)


SD1 = TextFamily("sd1", (EncoderSlot("l", "clip_l", "cond_stage_model.", None, True, EOS_ID),), "l")
SD2 = TextFamily("sd2", (EncoderSlot("h", "clip_h", "cond_stage_model.", -2, True, 0),), "h")
SDXL = TextFamily("sdxl", (
    EncoderSlot("l", "clip_l", "conditioner.embedders.0.", -2, False, EOS_ID),
    EncoderSlot("g", "clip_g", "conditioner.embedders.1.", -2, False, 0),
), "g")
SDXL_REFINER = TextFamily("sdxl_refiner", (
    EncoderSlot("g", "clip_g", "conditioner.embedders.0.", -2, False, 0),
), "g")

#: Model family (as the checkpoint detector names it) -> its text side.
TEXT_FAMILIES = {
    "sd1": SD1, "sd1_inpaint": SD1, "sd1_pix2pix": SD1,
    "sd2": SD2, "sd2_v": SD2, "sd2_inpaint": SD2, "sd2_depth": SD2, "sd_x4": SD2,
    "sdxl": SDXL, "sdxl_inpaint": SDXL, "sdxl_v": SDXL,
    "sdxl_refiner": SDXL_REFINER,
}
# Families not named above fall back on their name's stem, longest first.
_STEMS = (("sdxl_refiner", SDXL_REFINER), ("sdxl", SDXL), ("sd_x4", SD2), ("sd2", SD2), ("sd1", SD1))


def text_family(family: str) -> TextFamily:
    if family in TEXT_FAMILIES:
        return TEXT_FAMILIES[family]
    for stem, text in _STEMS:
        if family.startswith(stem):
            return text
    raise ValueError(f"no text encoders known for model family {family!r}")
