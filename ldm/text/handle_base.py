"""What every text handle (the ``CLIP`` socket type) shares, whatever its encoders: the layer
choice, LoRA weight patches applied only while encoding, SetClipHooks' weight hooks and
SelectCLIPDevice's device, all copied by :meth:`TextHandleState.copy_state_to` so a clone never
changes the handle it came from. Subclasses say how patch keys are named (``own_key``: a key as
given, ComfyUI's or the handle's own, to the handle's; ``comfy_key``: the handle's to ComfyUI's)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ldm.loading.merging import stored_weights
from ldm.lora import patches as lora
from ldm.model_patching import add_comfy_patches, comfy_key_patches


class TextHandleState:
    def __init__(self, encoders: nn.ModuleDict) -> None:
        self.encoders = encoders
        self.layer_idx: int | None = None  # None: each encoder's default layer
        self.patches: dict[str, list[lora.WeightPatch]] = {}
        # SetClipHooks' weight hooks (ldm.sampling.weight_hooks.ClipWeightHooks): patches while
        # encoding, maybe scheduled, and HOOKS attached to the conditioning.
        self.weight_hooks = None
        # SelectCLIPDevice's device for the encoders (a torch.device); None leaves it to the engine.
        self.compute_device: torch.device | None = None

    @staticmethod
    def own_key(key: str) -> str:
        return key

    @staticmethod
    def comfy_key(key: str) -> str:
        return key

    def copy_state_to(self, twin: TextHandleState) -> None:
        """Give a clone this handle's layer, patch lists (copied), hooks and device."""
        twin.layer_idx = self.layer_idx
        twin.patches = {key: list(found) for key, found in self.patches.items()}
        twin.weight_hooks = self.weight_hooks
        twin.compute_device = self.compute_device

    def set_last_layer(self, layer: int) -> None:
        """Stop at layer ``layer`` (-1 = last, -2 = penultimate …)."""
        if layer > -1:
            raise ValueError(f"the last layer is given as -1, -2, …; got {layer}")
        self.layer_idx = layer

    def clip_layer(self, layer: int) -> None:
        """ComfyUI's name for :meth:`set_last_layer`; custom nodes call either."""
        self.set_last_layer(layer)

    def add_patches(self, patches: Mapping, strength_patch: float = 1.0, strength_model: float = 1.0) -> list:
        """ComfyUI's ``CLIP.add_patches``: weight patches by ComfyUI key or by this handle's own;
        returns the keys added."""
        return add_comfy_patches(self.patches, self.encoders.state_dict().keys(), patches, strength_patch,
                                 strength_model, self.own_key)

    def get_key_patches(self, filter_prefix: str | None = None) -> dict[str, list]:
        """ComfyUI's ``CLIP.get_key_patches``: ``{comfy key: [(weight,), *patches]}``."""
        return comfy_key_patches(stored_weights(self.encoders), self.patches, self.comfy_key, filter_prefix)
