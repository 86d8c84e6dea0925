"""The ``CLIP`` socket of the paper's layout-to-image LDM (``layout2img-openimages256``): its layout
encoder (:mod:`ldm.text.layout_handle`) behind the text handle's interface, so
``CheckpointLoaderSimple`` keeps its three outputs.

The model reads labelled boxes, not words. ``LayoutConditioning`` is the node for it (a box-drawing
widget); the standard graph still runs because the text of ``CLIPTextEncode`` is read as a layout
too: a JSON box list (:mod:`ldm.cond_stage.layout_json`) or empty text for the empty layout (the
negative). Any other text is refused with a message naming ``LayoutConditioning`` — there is no
sensible reading of a prompt for this model.

Tokens are ``{"layout": [[(id, 1.0) × 92]]}``: the builder's sequence (:mod:`ldm.text.layout_tokens`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ldm.cond_stage.layout_json import parse_layout
from ldm.cond_stage.stages import ConditioningStage, Tokens
from ldm.text.layout_handle import LayoutHandle, build_layout_handle
from ldm.text.layout_tokens import class_names
from ldm.text.ldm_bert import CHECKPOINT_PREFIX

#: The class list of the released layout model (taming's OpenImages builder numbering).
LAYOUT_DATASET = "openimages"


class LayoutStage(ConditioningStage):
    TOKENS_KEY = "layout"
    ENCODER_NAME = "transformer"

    def __init__(self, handle: LayoutHandle, class_list: tuple[str, ...]):
        super().__init__(nn.ModuleDict({self.ENCODER_NAME: handle.encoder}))
        if len(class_list) != handle.spec.num_classes:
            raise ValueError(f"{len(class_list)} class names for a layout model of {handle.spec.num_classes} classes")
        self.handle = handle
        self.class_names = class_list

    def clone(self) -> LayoutStage:
        twin = LayoutStage(self.handle, self.class_names)
        self.copy_state_to(twin)
        return twin

    @property
    def width(self) -> int:
        return self.handle.encoder.config.width

    def tokenize(self, text: str, return_word_ids: bool = False, **options) -> Tokens:
        """A JSON layout or empty text (the empty layout); other text is refused (module docstring)."""
        stripped = text.strip()
        if stripped and not stripped.startswith("["):
            raise ValueError(f"the layout-to-image model is conditioned on labelled boxes, not on the text "
                             f"{stripped[:60]!r}; use the LayoutConditioning node (or give CLIPTextEncode a "
                             "JSON layout such as [{\"label\": \"Cat\", \"x\": 0.1, \"y\": 0.2, \"w\": 0.5, "
                             "\"h\": 0.6}], or empty text for the empty layout)")
        return self._layout_tokens(stripped)

    def _layout_tokens(self, layout: str) -> Tokens:
        boxes = parse_layout(layout, self.class_names)
        return {self.TOKENS_KEY: [[(token, 1.0) for token in self.handle.tokens(boxes)]]}

    def context(self, tokens: Tokens) -> torch.Tensor:
        rows = [[int(token) for token, _ in chunk] for chunk in tokens[self.TOKENS_KEY]]
        return self.handle.encode_tokens(rows)

    def encode_layout_json(self, layout: str) -> list:
        """CONDITIONING ``[[context [1, 92, width], {...}]]`` of a widget value (``"[]"``: the empty layout)."""
        return self.encode_from_tokens_scheduled(self._layout_tokens(layout))

    def __repr__(self) -> str:
        return f"LayoutStage({self.handle!r})"


def build_layout_stage(state_dict: Mapping[str, torch.Tensor]) -> LayoutStage:
    """The layout stage of a whole CompVis checkpoint (OpenImages' class numbering and flags)."""
    handle = build_layout_handle(state_dict, CHECKPOINT_PREFIX)
    return LayoutStage(handle, tuple(class_names(LAYOUT_DATASET)))
