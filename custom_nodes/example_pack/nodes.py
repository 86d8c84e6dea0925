"""The example pack's node: tint an image towards a colour picked with a custom editor widget."""

from __future__ import annotations

import re

import torch

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def parse_colour(text: str) -> tuple[float, float, float]:
    """``"#rrggbb"`` -> (r, g, b) in 0..1."""
    value = int(text[1:], 16)
    return ((value >> 16) & 255) / 255.0, ((value >> 8) & 255) / 255.0, (value & 255) / 255.0


class ExampleColourTint:
    """Blends every pixel towards one colour. The `colour` input has the custom type COLOR: the
    pack's web extension (web/colour-widget.js) draws it as a swatch you click to change."""

    CATEGORY = "example"
    FUNCTION = "tint"
    RETURN_TYPES = ("IMAGE",)
    DESCRIPTION = "Blend an image towards a colour (example node pack)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE",),
            "colour": ("COLOR", {"default": "#ff8800"}),
            "strength": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, colour):
        return True if isinstance(colour, str) and HEX_COLOUR.match(colour) else f"colour must be #rrggbb, got {colour!r}"

    def tint(self, image: torch.Tensor, colour: str, strength: float):
        target = torch.tensor(parse_colour(colour), dtype=image.dtype, device=image.device)
        return (torch.lerp(image, target.expand_as(image), strength),)  # IMAGE is [B, H, W, 3]


NODE_CLASS_MAPPINGS = {"ExampleColourTint": ExampleColourTint}
NODE_DISPLAY_NAME_MAPPINGS = {"ExampleColourTint": "Colour Tint (example pack)"}
