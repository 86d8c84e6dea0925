"""A small node pack in ComfyUI's V3 style, for the facade tests.

Three V3 nodes come through ``comfy_entrypoint`` (an extension whose ``get_node_list`` lists them).
The pack exports no ``NODE_CLASS_MAPPINGS``: ComfyUI's loader reads that first and then ignores
``comfy_entrypoint``, so a pack that ships V1 nodes too lists its V3 classes in
``NODE_CLASS_MAPPINGS`` beside them. ``V1_NODE_CLASS_MAPPINGS`` holds this pack's V1 node for the
tests that register it that way.

- ``WeftV3Brightness``: widgets of several kinds (float slider, combo from an Enum, boolean) and an
  optional mask; scales an image.
- ``WeftV3Switch``: two lazy image inputs; ``check_lazy_status`` asks only for the chosen one.
- ``WeftV3Describe``: an output node; reads ``cls.hidden.unique_id``, has ``fingerprint_inputs``
  and ``validate_inputs``, previews the image (temp PNG) and returns text with a text preview.
- ``WeftV1Invert`` (V1): inverts an image.
"""

from __future__ import annotations

import asyncio
from enum import Enum

from comfy_api.latest import ComfyExtension, io, ui

#: Calls of the nodes' methods, by name; the tests read and reset it.
CALLS: dict[str, int] = {}


def _count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


class BlendMode(str, Enum):
    multiply = "multiply"
    add = "add"


class WeftV3Brightness(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="WeftV3Brightness",
            display_name="Brightness (V3)",
            category="weft_tests/v3",
            description="Scales or offsets an image.",
            inputs=[
                io.Image.Input("image", tooltip="The image to change."),
                io.Float.Input("amount", default=1.0, min=0.0, max=4.0, step=0.05,
                               display_mode=io.NumberDisplay.slider),
                io.Combo.Input("mode", options=BlendMode, default=BlendMode.multiply),
                io.Boolean.Input("clamp", default=True, label_on="clamped", label_off="raw"),
                io.Mask.Input("mask", optional=True),
            ],
            outputs=[io.Image.Output(tooltip="The changed image."), io.Float.Output("mean", display_name="mean")],
        )

    @classmethod
    async def execute(cls, image, amount, mode, clamp, mask=None) -> io.NodeOutput:
        _count("Brightness.execute")
        await asyncio.sleep(0)  # an async node, as API nodes are
        changed = image * amount if mode == BlendMode.multiply.value else image + amount
        if mask is not None:
            weight = mask.reshape(changed.shape[:3]).unsqueeze(-1)
            changed = image * (1 - weight) + changed * weight
        if clamp:
            changed = changed.clamp(0.0, 1.0)
        return io.NodeOutput(changed, float(changed.mean()))


class WeftV3Switch(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="WeftV3Switch",
            category="weft_tests/v3",
            inputs=[
                io.Boolean.Input("use_first", default=True),
                io.Image.Input("first", lazy=True),
                io.Image.Input("second", lazy=True),
            ],
            outputs=[io.Image.Output()],
        )

    @classmethod
    def check_lazy_status(cls, use_first, first=None, second=None):
        _count("Switch.check_lazy_status")
        wanted = "first" if use_first else "second"
        return [wanted] if (first if use_first else second) is None else []

    @classmethod
    def execute(cls, use_first, first=None, second=None) -> io.NodeOutput:
        _count("Switch.execute")
        return io.NodeOutput(first if use_first else second)


class WeftV3Describe(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="WeftV3Describe",
            display_name="Describe (V3)",
            category="weft_tests/v3",
            is_output_node=True,
            inputs=[
                io.Image.Input("image"),
                io.String.Input("label", multiline=True, default="picture"),
                io.Int.Input("repeat", default=1, min=1, max=8, control_after_generate=False),
            ],
            outputs=[io.String.Output("text", tooltip="What the node saw.")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def fingerprint_inputs(cls, label, repeat):
        _count("Describe.fingerprint_inputs")
        return f"{label}:{repeat}"

    @classmethod
    def validate_inputs(cls, label):
        _count("Describe.validate_inputs")
        return True if label.strip() else "label must not be empty"

    @classmethod
    def execute(cls, image, label, repeat) -> io.NodeOutput:
        _count("Describe.execute")
        height, width = image.shape[1], image.shape[2]
        text = " ".join([f"{label}@{cls.hidden.unique_id}:{width}x{height}"] * repeat)
        preview = ui.PreviewImage(image, cls=cls)
        return io.NodeOutput(text, ui={**preview.as_dict(), **ui.PreviewText(text).as_dict()})


class WeftV1Invert:
    CATEGORY = "weft_tests/v1"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "invert"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def invert(self, image):
        _count("Invert.invert")
        return (1.0 - image,)


class V3TestExtension(ComfyExtension):
    loaded = False

    async def on_load(self) -> None:
        V3TestExtension.loaded = True

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [WeftV3Brightness, WeftV3Switch, WeftV3Describe]


async def comfy_entrypoint() -> V3TestExtension:
    return V3TestExtension()


#: The V1 node, for a mixed registration (see the module docstring); not exported as a pack.
V1_NODE_CLASS_MAPPINGS = {"WeftV1Invert": WeftV1Invert}
