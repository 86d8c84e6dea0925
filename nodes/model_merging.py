"""Model merging, attention multiply, bypassed LoRAs and LoRA stacks: ComfyUI's
``nodes_model_merging.py``, ``nodes_model_merging_model_specific.py`` (SD1 / SD2 / SDXL),
``nodes_attention_multiply.py``, ``LoraLoaderBypass`` / ``LoraLoaderBypassModelOnly`` and
``nodes_lora_stack.py`` (``LoadLoraModel`` / ``LoadLoraTextEncoder``).

Every node returns a clone whose weight patches (:mod:`ldm.loading.merging`) or forward bypass
(:mod:`ldm.lora.bypass`) do the work; the models it received are never changed, and nothing is
computed until the clone is used or saved.
"""

from __future__ import annotations

from ldm.loading import merging

from ldm.loading.checkpoint import load_state_dict
from ldm.lora import bypass as lora_bypass, patches as lora
from nodes.conditioning import LoraLoader, LoraLoaderModelOnly
from nodes.services import model_names, services

_RATIO = ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})
_MULTIPLIER = ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01})
_SCALE = ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01})


def _merged_model(model1, model2, strengths):
    merged = model1.clone()
    merged.patches = merging.merge_patches(model1.patches, merging.stored_weights(model1.unet),
                                           merging.stored_weights(model2.unet), model2.patches, strengths)
    return (merged,)


def _merged_clip(clip1, clip2, strengths):
    merged = clip1.clone()
    strengths = merging.without_suffixes(strengths, merging.CLIP_UNMERGED_SUFFIXES)
    merged.patches = merging.merge_patches(clip1.patches, merging.stored_weights(clip1.encoders),
                                           merging.stored_weights(clip2.encoders), clip2.patches,
                                           strengths)
    return (merged,)


class ModelMergeSimple:
    CATEGORY = "advanced/model_merging"
    FUNCTION = "merge"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model1": ("MODEL",), "model2": ("MODEL",), "ratio": _RATIO}}

    def merge(self, model1, model2, ratio):
        return _merged_model(model1, model2, merging.simple(ratio))


class ModelMergeSubtract:
    CATEGORY = "advanced/model_merging"
    FUNCTION = "merge"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model1": ("MODEL",), "model2": ("MODEL",), "multiplier": _MULTIPLIER}}

    def merge(self, model1, model2, multiplier):
        return _merged_model(model1, model2, merging.subtract(multiplier))


class ModelMergeAdd:
    CATEGORY = "advanced/model_merging"
    FUNCTION = "merge"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model1": ("MODEL",), "model2": ("MODEL",)}}

    def merge(self, model1, model2):
        return _merged_model(model1, model2, merging.add())


class ModelMergeBlocks:
    """Per-block ratios: each input is a UNet key prefix (``input`` matches ``input_blocks…``)."""

    CATEGORY = "advanced/model_merging"
    FUNCTION = "merge"
    RETURN_TYPES = ("MODEL",)
    #: The ratio inputs, in order; the first one's ratio applies to keys no prefix matches.
    BLOCKS: tuple[str, ...] = ("input", "middle", "out")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model1": ("MODEL",), "model2": ("MODEL",), **{name: _RATIO for name in cls.BLOCKS}}}

    def merge(self, model1, model2, **ratios):
        ordered = {name: ratios[name] for name in self.BLOCKS}
        return _merged_model(model1, model2, merging.blocks(ordered))


def _numbered(prefix: str, count: int, dot: str) -> tuple[str, ...]:
    return tuple(f"{prefix}.{i}{dot}" for i in range(count))


class ModelMergeSD1(ModelMergeBlocks):
    CATEGORY = "advanced/model_merging/model_specific"
    BLOCKS = ("time_embed.", "label_emb.", *_numbered("input_blocks", 12, "."), *_numbered("middle_block", 3, "."),
              *_numbered("output_blocks", 12, "."), "out.")


class ModelMergeSDXL(ModelMergeBlocks):
    CATEGORY = "advanced/model_merging/model_specific"
    # ComfyUI names these without the trailing dot (SDXL has blocks 0-8 only, so none is ambiguous).
    BLOCKS = ("time_embed.", "label_emb.", *_numbered("input_blocks", 9, ""), *_numbered("middle_block", 3, ""),
              *_numbered("output_blocks", 9, ""), "out.")


class CLIPMergeSimple:
    CATEGORY = "advanced/model_merging"
    FUNCTION = "merge"
    RETURN_TYPES = ("CLIP",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip1": ("CLIP",), "clip2": ("CLIP",), "ratio": _RATIO}}

    def merge(self, clip1, clip2, ratio):
        return _merged_clip(clip1, clip2, merging.simple(ratio))


class CLIPMergeSubtract:
    CATEGORY = "advanced/model_merging"
    FUNCTION = "merge"
    RETURN_TYPES = ("CLIP",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip1": ("CLIP",), "clip2": ("CLIP",), "multiplier": _MULTIPLIER}}

    def merge(self, clip1, clip2, multiplier):
        return _merged_clip(clip1, clip2, merging.subtract(multiplier))


class CLIPMergeAdd:
    CATEGORY = "advanced/model_merging"
    FUNCTION = "merge"
    RETURN_TYPES = ("CLIP",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip1": ("CLIP",), "clip2": ("CLIP",)}}

    def merge(self, clip1, clip2):
        return _merged_clip(clip1, clip2, merging.add())


def _attention_inputs(what: str, socket: str) -> dict:
    return {"required": {what: (socket,), "q": _SCALE, "k": _SCALE, "v": _SCALE, "out": _SCALE}}


class UNetSelfAttentionMultiply:
    CATEGORY = "_for_testing/attention_experiments"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    EXPERIMENTAL = True
    ATTENTION = "attn1"

    @classmethod
    def INPUT_TYPES(cls):
        return _attention_inputs("model", "MODEL")

    def patch(self, model, q, k, v, out):
        a = self.ATTENTION
        patched = model.clone()
        patched.patches = merging.scale_patches(
            model.patches, model.unet.state_dict().keys(),
            {f"{a}.to_q": q, f"{a}.to_k": k, f"{a}.to_v": v, f"{a}.to_out.0": out})
        return (patched,)


class UNetCrossAttentionMultiply(UNetSelfAttentionMultiply):
    ATTENTION = "attn2"


class CLIPAttentionMultiply:
    CATEGORY = "_for_testing/attention_experiments"
    FUNCTION = "patch"
    RETURN_TYPES = ("CLIP",)
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return _attention_inputs("clip", "CLIP")

    def patch(self, clip, q, k, v, out):
        patched = clip.clone()
        patched.patches = merging.scale_patches(
            clip.patches, clip.encoders.state_dict().keys(),
            {"self_attn.q_proj": q, "self_attn.k_proj": k, "self_attn.v_proj": v, "self_attn.out_proj": out})
        return (patched,)


_LORA_STRENGTH = {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}


class LoraLoaderBypass(LoraLoader):
    """LoraLoader with ComfyUI's bypass tooltips, whose MODEL runs its LoRA beside the weights
    (:mod:`ldm.lora.bypass`) instead of patched into them; the LoRA file cache is LoraLoader's."""

    # its own category in ComfyUI (nodes_lora_debug.py, no source newer than the Oct 2025 copy), not
    # LoraLoader's, which moved to ``model/loaders``
    CATEGORY = "loaders"
    OUTPUT_TOOLTIPS = ("The modified diffusion model.", "The modified CLIP model.")
    DESCRIPTION = ("Apply LoRA in bypass mode. Unlike regular LoRA, this doesn't modify model weights - instead it "
                   "injects the LoRA computation during forward pass. Useful for training scenarios.")
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The diffusion model the LoRA will be applied to."}),
            "clip": ("CLIP", {"tooltip": "The CLIP model the LoRA will be applied to."}),
            "lora_name": (model_names("loras"), {"tooltip": "The name of the LoRA."}),
            "strength_model": ("FLOAT", {**_LORA_STRENGTH, "tooltip": "How strongly to modify the diffusion model. "
                                                                      "This value can be negative."}),
            "strength_clip": ("FLOAT", {**_LORA_STRENGTH, "tooltip": "How strongly to modify the CLIP model. "
                                                                     "This value can be negative."})}}

    def load_lora(self, model, clip, lora_name, strength_model, strength_clip):
        if strength_model == 0 and strength_clip == 0:
            return (model, clip)
        patched_model, patched_clip = lora.load_lora_for_models(model, clip, self._weights(lora_name),
                                                                strength_model, strength_clip)
        # The text encoders run whole on their device: their LoRA stays a weight patch, which
        # computes the same text embedding.
        return (lora_bypass.bypass_lora(model, patched_model) if model is not None else None, patched_clip)


class LoraLoaderBypassModelOnly(LoraLoaderModelOnly, LoraLoaderBypass):
    """LoraLoaderModelOnly's inputs and function over the bypass ``load_lora``."""

    # ComfyUI's class derives from LoraLoaderBypass alone: its description, not LoraLoaderModelOnly's
    DESCRIPTION = LoraLoaderBypass.DESCRIPTION


#: ComfyUI's LoRA stacks grow up to this many rows, sent as ``loras.<row>.<field>``.
LORA_STACK_ROWS = 20


def _lora_rows() -> dict:
    """The flat inputs of a LoRA stack: row 0 required (a stack has at least one row), the others
    optional, each row a file, a strength and an on/off switch."""
    def row(i: int) -> dict:
        return {f"loras.{i}.lora_name": (model_names("loras"), {"tooltip": "The name of the LoRA file to apply."}),
                f"loras.{i}.strength": ("FLOAT", {**_LORA_STRENGTH, "tooltip": "How strongly to apply this LoRA. "
                                                  "0 = off, negative inverts the effect."}),
                f"loras.{i}.enabled": ("BOOLEAN", {"default": True, "tooltip": "Turn off to skip this LoRA without "
                                                   "changing its file or strength."})}
    return {"required": row(0), "optional": {k: v for i in range(1, LORA_STACK_ROWS) for k, v in row(i).items()}}


def _stack(rows: dict) -> list[tuple[str, float]]:
    """``(lora_name, strength)`` of the rows to apply, in row order (empty, off or zero rows skipped)."""
    out = []
    for i in range(LORA_STACK_ROWS):
        name, strength = rows.get(f"loras.{i}.lora_name"), rows.get(f"loras.{i}.strength", 1.0)
        if name and rows.get(f"loras.{i}.enabled", True) and strength != 0:
            out.append((name, strength))
    return out


def _read_lora(lora_name: str) -> dict:
    return load_state_dict(services().folders.model_path("loras", lora_name))[0]


class LoadLoraModel:
    DESCRIPTION = ("Apply a stack of LoRAs to a diffusion model. Add one row per LoRA; "
                   "each row picks a LoRA file and its strength.")
    CATEGORY = "model/loaders"
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The modified diffusion model.",)

    @classmethod
    def INPUT_TYPES(cls):
        rows = _lora_rows()
        return {"required": {"model": ("MODEL", {"tooltip": "The diffusion model the LoRAs will be applied to."}),
                             **rows["required"]}, "optional": rows["optional"]}

    def load(self, model, **rows):
        for name, strength in _stack(rows):
            model, _ = lora.load_lora_for_models(model, None, _read_lora(name), strength, 0)
        return (model,)


class LoadLoraTextEncoder:
    DESCRIPTION = ("Apply a stack of LoRAs to a CLIP text encoder. Add one row per LoRA; "
                   "each row picks a LoRA file and its strength.")
    CATEGORY = "model/loaders"
    FUNCTION = "load"
    RETURN_TYPES = ("CLIP",)
    OUTPUT_TOOLTIPS = ("The modified CLIP text encoder.",)

    @classmethod
    def INPUT_TYPES(cls):
        rows = _lora_rows()
        return {"required": {"clip": ("CLIP", {"tooltip": "The CLIP text encoder the LoRAs will be applied to."}),
                             **rows["required"]}, "optional": rows["optional"]}

    def load(self, clip, **rows):
        for name, strength in _stack(rows):
            _, clip = lora.load_lora_for_models(None, clip, _read_lora(name), 0, strength)
        return (clip,)


NODE_CLASS_MAPPINGS = {
    "ModelMergeSimple": ModelMergeSimple,
    "ModelMergeBlocks": ModelMergeBlocks,
    "ModelMergeSubtract": ModelMergeSubtract,
    "ModelMergeAdd": ModelMergeAdd,
    "CLIPMergeSimple": CLIPMergeSimple,
    "CLIPMergeSubtract": CLIPMergeSubtract,
    "CLIPMergeAdd": CLIPMergeAdd,
    "ModelMergeSD1": ModelMergeSD1,
    "ModelMergeSD2": ModelMergeSD1,  # ComfyUI's: SD2's UNet has SD1's blocks
    "ModelMergeSDXL": ModelMergeSDXL,
    "UNetSelfAttentionMultiply": UNetSelfAttentionMultiply,
    "UNetCrossAttentionMultiply": UNetCrossAttentionMultiply,
    "CLIPAttentionMultiply": CLIPAttentionMultiply,
    "LoraLoaderBypass": LoraLoaderBypass,
    "LoraLoaderBypassModelOnly": LoraLoaderBypassModelOnly,
    "LoadLoraModel": LoadLoraModel,
    "LoadLoraTextEncoder": LoadLoraTextEncoder,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "LoraLoaderBypass": "Load LoRA (Bypass) (For debugging)",
    "LoraLoaderBypassModelOnly": "Load LoRA (Bypass, Model Only) (for debugging)",
    "LoadLoraModel": "Load LoRA (Model)",
    "LoadLoraTextEncoder": "Load LoRA (Text Encoder)",
}
