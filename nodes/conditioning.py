"""Conditioning nodes: text encoding, CLIP and LoRA loaders, and CONDITIONING transforms.

Names, inputs (names, types, defaults, ranges, order), outputs, functions and categories are
ComfyUI's (``nodes.py`` and ``comfy_extras/nodes_cond.py`` as of Dec 2026; the SDXL encoders,
``nodes_clip_sdxl.py``, as of v0.3.64), so API prompts that use them run unchanged. Every body
delegates to ``ldm.text`` / ``ldm.lora.patches``.
"""

from __future__ import annotations

import os

import torch

from graph.context import current_context
from ldm.image_conditioning import crop_to_multiple
from ldm.loading.checkpoint import load_state_dict
from ldm.lora import patches as lora
from ldm.sampling.weight_hooks import encode_passes
from ldm.text import build_clip_from_files
from ldm.text import conditioning as cond_ops
from nodes.services import model_names, services
from nodes.vae import using_vae

MAX_RESOLUTION = 16384
#: CLIPLoader / DualCLIPLoader ``type`` choices (ComfyUI, Dec 2026); Weft encodes the SD ones
#: and refuses the others with a message.
CLIP_LOADER_TYPES = ["stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv",
                     "pixart", "cosmos", "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2",
                     "qwen_image", "hunyuan_image", "flux2", "ovis", "longcat_image", "cogvideox",
                     "lens", "pixeldit", "ideogram4", "boogu", "krea2", "joyimage", "mage", "minimax",
                     "yue2"]
DUAL_CLIP_LOADER_TYPES = ["sdxl", "sd3", "flux", "hunyuan_video", "hidream", "hunyuan_image",
                          "hunyuan_video_15", "kandinsky5", "kandinsky5_image", "ltxv", "newbie", "ace"]
_TEXT = {"multiline": True, "dynamicPrompts": True}
_STRENGTH = {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}
_LORA_STRENGTH = {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}


def _read_weights(path: os.PathLike) -> dict[str, torch.Tensor]:
    """A weights file, read safely by its content (see ldm.loading.checkpoint)."""
    return load_state_dict(path)[0]


def encode_tokens(clip, tokens, add_dict=None) -> list:
    """CONDITIONING for ``tokens``: through the engine (text device, cache by model and tokens);
    outside a running node (a script calling the node's method) directly."""
    context = current_context()
    if context is None:
        return clip.encode_from_tokens_scheduled(tokens, add_dict=add_dict)
    # SetClipHooks' weight hooks may patch the encoders or ask for one encode per keyframe range.
    return [entry for variant, extras in encode_passes(clip, add_dict)
            for entry in context.services.engine.encode_tokens(variant, tokens, extras)]


def _embedding_dirs() -> list:
    return list(services().folders.model_roots("embeddings"))


# --------------------------------------------------------------------------- text encoding

class CLIPTextEncode:
    CATEGORY = "model/conditioning"
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING",)
    OUTPUT_TOOLTIPS = ("A conditioning containing the embedded text used to guide the diffusion model.",)
    DESCRIPTION = ("Encodes a text prompt using a CLIP model into an embedding that can be used to "
                   "guide the diffusion model towards generating specific images.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {**_TEXT, "tooltip": "The text to be encoded."}),
                             "clip": ("CLIP", {"tooltip": "The CLIP model used for encoding the text."})}}

    def encode(self, clip, text):
        if clip is None:
            raise RuntimeError("the clip input is None: the checkpoint loader found no text encoder "
                               "in this checkpoint")
        return (encode_tokens(clip, clip.tokenize(text)),)


class CLIPTextEncodeSDXL:
    CATEGORY = "advanced/conditioning"
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING",)

    @classmethod
    def INPUT_TYPES(cls):
        size = {"default": 1024, "min": 0, "max": MAX_RESOLUTION}
        crop = {"default": 0, "min": 0, "max": MAX_RESOLUTION}
        return {"required": {"clip": ("CLIP",), "width": ("INT", size), "height": ("INT", size),
                             "crop_w": ("INT", crop), "crop_h": ("INT", crop),
                             "target_width": ("INT", size), "target_height": ("INT", size),
                             "text_g": ("STRING", _TEXT), "text_l": ("STRING", _TEXT)}}

    def encode(self, clip, width, height, crop_w, crop_h, target_width, target_height, text_g, text_l):
        tokens = cond_ops.sdxl_tokens(clip, text_g, text_l)
        sizes = {"width": width, "height": height, "crop_w": crop_w, "crop_h": crop_h,
                 "target_width": target_width, "target_height": target_height}
        return (encode_tokens(clip, tokens, add_dict=sizes),)


class CLIPTextEncodeSDXLRefiner:
    CATEGORY = "advanced/conditioning"
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING",)

    @classmethod
    def INPUT_TYPES(cls):
        size = {"default": 1024, "min": 0, "max": MAX_RESOLUTION}
        return {"required": {"ascore": ("FLOAT", {"default": 6.0, "min": 0.0, "max": 1000.0, "step": 0.01}),
                             "width": ("INT", size), "height": ("INT", size),
                             "text": ("STRING", _TEXT), "clip": ("CLIP",)}}

    def encode(self, clip, ascore, width, height, text):
        extras = {"aesthetic_score": ascore, "width": width, "height": height}
        return (encode_tokens(clip, clip.tokenize(text), add_dict=extras),)


class CLIPSetLastLayer:
    CATEGORY = "model/conditioning"
    FUNCTION = "set_last_layer"
    RETURN_TYPES = ("CLIP",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": ("CLIP",),
                             "stop_at_clip_layer": ("INT", {"default": -1, "min": -24, "max": -1, "step": 1,
                                                            "advanced": True})}}

    def set_last_layer(self, clip, stop_at_clip_layer):
        clip = clip.clone()
        clip.set_last_layer(stop_at_clip_layer)
        return (clip,)


# --------------------------------------------------------------------------- loaders

class CLIPLoader:
    # Weft encodes type stable_diffusion: CLIP-L (SD1), OpenCLIP-H (SD2) or OpenCLIP-bigG (SDXL
    # refiner); the other types are listed for workflow compatibility and refused with a message.
    CATEGORY = "model/loaders"
    FUNCTION = "load_clip"
    RETURN_TYPES = ("CLIP",)
    DESCRIPTION = ("Recipes:\nsd: clip-l\nstable cascade: clip-g\nsd3: t5 xxl / clip-g / clip-l\n"
                   "stable audio: t5 base\nmochi: t5 xxl\ncogvideox: t5 xxl (226-token padding)\n"
                   "cosmos: old t5 xxl\nlumina2: gemma 2 2B\nwan: umt5 xxl\n"
                   "hidream: llama-3.1 (Recommend) or t5\nomnigen2: qwen vl 2.5 3B\n"
                   "joyimage: qwen3-vl 8B\nlens: gpt-oss-20b\npixeldit: gemma 2 2B elm\n"
                   "minimax: MiniMax H3 Qwen3-VL or Music3 Qwen/RVQ")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_name": (model_names("text_encoders"),),
                             "type": (list(CLIP_LOADER_TYPES),)},
                "optional": {"device": (["default", "cpu"], {"advanced": True})}}

    def load_clip(self, clip_name, type="stable_diffusion", device="default"):
        # ``device`` picks where the encoder runs; wave 1 computes on the CPU either way.
        path = services().folders.model_path("text_encoders", clip_name)
        return (build_clip_from_files([_read_weights(path)], type, _embedding_dirs()),)


class DualCLIPLoader:
    # Weft encodes type sdxl: CLIP-L and OpenCLIP-bigG, in either order.
    CATEGORY = "model/loaders"
    FUNCTION = "load_clip"
    RETURN_TYPES = ("CLIP",)
    DESCRIPTION = ("Recipes:\nsdxl: clip-l, clip-g\nsd3: clip-l, clip-g / clip-l, t5 / clip-g, t5\n"
                   "flux: clip-l, t5\nhidream: at least one of t5 or llama, recommended t5 and llama\n"
                   "hunyuan_image: qwen2.5vl 7b and byt5 small\nnewbie: gemma-3-4b-it, jina clip v2")

    @classmethod
    def INPUT_TYPES(cls):
        names = model_names("text_encoders")
        return {"required": {"clip_name1": (names,), "clip_name2": (list(names),),
                             "type": (list(DUAL_CLIP_LOADER_TYPES),)},
                "optional": {"device": (["default", "cpu"], {"advanced": True})}}

    def load_clip(self, clip_name1, clip_name2, type, device="default"):
        folders = services().folders
        files = [_read_weights(folders.model_path("text_encoders", name)) for name in (clip_name1, clip_name2)]
        return (build_clip_from_files(files, type, _embedding_dirs()),)


class LoraLoader:
    CATEGORY = "model/loaders"
    FUNCTION = "load_lora"
    RETURN_TYPES = ("MODEL", "CLIP")
    OUTPUT_TOOLTIPS = ("The modified diffusion model.", "The modified CLIP model.")
    DESCRIPTION = ("This LoRA loader is used to modify both diffusion and CLIP models, altering the way "
                   "in which latents are denoised such as applying styles. Multiple LoRA nodes can be "
                   "linked together.")

    def __init__(self):
        self._cached: tuple | None = None  # (path, weights) of the last file read

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The diffusion model the LoRA will be applied to."}),
            "clip": ("CLIP", {"tooltip": "The CLIP model the LoRA will be applied to."}),
            "lora_name": (model_names("loras"), {"tooltip": "The name of the LoRA."}),
            "strength_model": ("FLOAT", {**_LORA_STRENGTH, "tooltip": "How strongly to modify the "
                                         "diffusion model. This value can be negative."}),
            "strength_clip": ("FLOAT", {**_LORA_STRENGTH, "tooltip": "How strongly to modify the "
                                        "CLIP model. This value can be negative."}),
        }}

    def _weights(self, lora_name):
        path = services().folders.model_path("loras", lora_name)
        if self._cached is None or self._cached[0] != path:
            self._cached = (path, _read_weights(path))
        return self._cached[1]

    def load_lora(self, model, clip, lora_name, strength_model, strength_clip):
        if strength_model == 0 and strength_clip == 0:
            return (model, clip)
        return lora.load_lora_for_models(model, clip, self._weights(lora_name), strength_model, strength_clip)


class LoraLoaderModelOnly(LoraLoader):
    FUNCTION = "load_lora_model_only"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = None
    DESCRIPTION = ("This LoRAs loader is used to modify the diffusion model, altering the way in which "
                   "latents are denoised such as applying styles. Multiple LoRA nodes can be linked "
                   "together.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "lora_name": (model_names("loras"),),
                             "strength_model": ("FLOAT", dict(_LORA_STRENGTH))}}

    def load_lora_model_only(self, model, lora_name, strength_model):
        return (self.load_lora(model, None, lora_name, strength_model, 0)[0],)


# --------------------------------------------------------------------------- transforms

class _ConditioningTransform:
    CATEGORY = "model/conditioning/transform"
    RETURN_TYPES = ("CONDITIONING",)


class ConditioningCombine(_ConditioningTransform):
    FUNCTION = "combine"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning_1": ("CONDITIONING",), "conditioning_2": ("CONDITIONING",)}}

    def combine(self, conditioning_1, conditioning_2):
        return (cond_ops.combine(conditioning_1, conditioning_2),)


class ConditioningAverage(_ConditioningTransform):
    FUNCTION = "addWeighted"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning_to": ("CONDITIONING",), "conditioning_from": ("CONDITIONING",),
                             "conditioning_to_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0,
                                                                    "step": 0.01})}}

    def addWeighted(self, conditioning_to, conditioning_from, conditioning_to_strength):
        return (cond_ops.average(conditioning_to, conditioning_from, conditioning_to_strength),)


class ConditioningConcat(_ConditioningTransform):
    FUNCTION = "concat"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning_to": ("CONDITIONING",), "conditioning_from": ("CONDITIONING",)}}

    def concat(self, conditioning_to, conditioning_from):
        return (cond_ops.concat(conditioning_to, conditioning_from),)


class ConditioningSetArea(_ConditioningTransform):
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls):
        size = {"default": 64, "min": 64, "max": MAX_RESOLUTION, "step": 8}
        offset = {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 8}
        return {"required": {"conditioning": ("CONDITIONING",), "width": ("INT", size),
                             "height": ("INT", dict(size)), "x": ("INT", offset), "y": ("INT", dict(offset)),
                             "strength": ("FLOAT", dict(_STRENGTH))}}

    def append(self, conditioning, width, height, x, y, strength):
        return (cond_ops.set_area(conditioning, width, height, x, y, strength),)


class ConditioningSetAreaPercentage(_ConditioningTransform):
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls):
        size = {"default": 1.0, "min": 0, "max": 1.0, "step": 0.01}
        offset = {"default": 0, "min": 0, "max": 1.0, "step": 0.01}
        return {"required": {"conditioning": ("CONDITIONING",), "width": ("FLOAT", size),
                             "height": ("FLOAT", dict(size)), "x": ("FLOAT", offset),
                             "y": ("FLOAT", dict(offset)), "strength": ("FLOAT", dict(_STRENGTH))}}

    def append(self, conditioning, width, height, x, y, strength):
        return (cond_ops.set_area_percentage(conditioning, width, height, x, y, strength),)


class ConditioningSetAreaStrength(_ConditioningTransform):
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",), "strength": ("FLOAT", dict(_STRENGTH))}}

    def append(self, conditioning, strength):
        return (cond_ops.with_values(conditioning, {"strength": strength}),)


class ConditioningSetMask(_ConditioningTransform):
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",), "mask": ("MASK",),
                             "strength": ("FLOAT", dict(_STRENGTH)),
                             "set_cond_area": (["default", "mask bounds"],)}}

    def append(self, conditioning, mask, set_cond_area, strength):
        return (cond_ops.set_mask(conditioning, mask, strength, set_cond_area != "default"),)


class ConditioningZeroOut(_ConditioningTransform):
    FUNCTION = "zero_out"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",)}}

    def zero_out(self, conditioning):
        return (cond_ops.zero_out(conditioning),)


class ConditioningSetTimestepRange(_ConditioningTransform):
    FUNCTION = "set_range"

    @classmethod
    def INPUT_TYPES(cls):
        start = {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}
        end = {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001}
        return {"required": {"conditioning": ("CONDITIONING",), "start": ("FLOAT", start),
                             "end": ("FLOAT", end)}}

    def set_range(self, conditioning, start, end):
        return (cond_ops.set_timestep_range(conditioning, start, end),)


class ConditioningMultiply(_ConditioningTransform):
    FUNCTION = "multiply"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",),
                             "multiplier": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01})}}

    def multiply(self, conditioning, multiplier):
        # The text embedding and, where present, the pooled output; other extras are kept.
        out = []
        for cond, extras in conditioning:
            pooled = extras.get("pooled_output")
            values = {} if pooled is None else {"pooled_output": pooled * multiplier}
            out += cond_ops.with_values([[cond * multiplier, extras]], values)
        return (out,)


class ConditioningTimestepsRange:
    CATEGORY = "advanced/hooks"
    FUNCTION = "create_range"
    RETURN_TYPES = ("TIMESTEPS_RANGE", "TIMESTEPS_RANGE", "TIMESTEPS_RANGE")
    RETURN_NAMES = ("TIMESTEPS_RANGE", "BEFORE_RANGE", "AFTER_RANGE")
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}),
                             "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001})}}

    def create_range(self, start_percent, end_percent):
        return ((start_percent, end_percent), (0.0, start_percent), (end_percent, 1.0))


class CLIPTextEncodeControlnet:
    CATEGORY = "model/conditioning"
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING",)
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": ("CLIP",), "conditioning": ("CONDITIONING",), "text": ("STRING", _TEXT)}}

    def encode(self, clip, conditioning, text):
        # Stored for ControlNets that take their own text embedding (read as cross_attn_controlnet).
        [[cond, extras]] = encode_tokens(clip, clip.tokenize(text))
        pooled = extras.get("pooled_output")
        return (cond_ops.with_values(conditioning, {"cross_attn_controlnet": cond,
                                                    "pooled_output_controlnet": pooled}),)


class InstructPixToPixConditioning:
    CATEGORY = "conditioning/instructpix2pix"
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "vae": ("VAE",),
                             "pixels": ("IMAGE",)}}

    def encode(self, positive, negative, pixels, vae):
        pixels = crop_to_multiple(pixels, 8)
        with using_vae(vae, vae.encode_memory_bytes((1, *pixels.shape[1:]))):
            image_latent = vae.encode(pixels[..., :3])
        # The InstructPix2Pix UNet reads the source image's latent on extra input channels.
        values = {"concat_latent_image": image_latent}
        return (cond_ops.with_values(positive, values), cond_ops.with_values(negative, values),
                {"samples": torch.zeros_like(image_latent)})


NODE_CLASS_MAPPINGS = {
    "CLIPTextEncode": CLIPTextEncode,
    "CLIPTextEncodeSDXL": CLIPTextEncodeSDXL,
    "CLIPTextEncodeSDXLRefiner": CLIPTextEncodeSDXLRefiner,
    "CLIPSetLastLayer": CLIPSetLastLayer,
    "CLIPLoader": CLIPLoader,
    "DualCLIPLoader": DualCLIPLoader,
    "LoraLoader": LoraLoader,
    "LoraLoaderModelOnly": LoraLoaderModelOnly,
    "ConditioningCombine": ConditioningCombine,
    "ConditioningAverage": ConditioningAverage,
    "ConditioningConcat": ConditioningConcat,
    "ConditioningSetArea": ConditioningSetArea,
    "ConditioningSetAreaPercentage": ConditioningSetAreaPercentage,
    "ConditioningSetAreaStrength": ConditioningSetAreaStrength,
    "ConditioningSetMask": ConditioningSetMask,
    "ConditioningZeroOut": ConditioningZeroOut,
    "ConditioningSetTimestepRange": ConditioningSetTimestepRange,
    "ConditioningMultiply": ConditioningMultiply,
    "ConditioningTimestepsRange": ConditioningTimestepsRange,
    "CLIPTextEncodeControlnet": CLIPTextEncodeControlnet,
    "InstructPixToPixConditioning": InstructPixToPixConditioning,
}

# ComfyUI's table; ConditioningAverage's entry there is keyed "ConditioningAverage " (with a
# space), so its title is its class name, and so it is here.
NODE_DISPLAY_NAME_MAPPINGS = {
    "CLIPTextEncode": "CLIP Text Encode (Prompt)",
    "CLIPSetLastLayer": "CLIP Set Last Layer",
    "CLIPLoader": "Load CLIP",
    "DualCLIPLoader": "Load CLIP (Dual)",
    "LoraLoader": "Load LoRA (Model and CLIP)",
    "LoraLoaderModelOnly": "Load LoRA",
    "ConditioningCombine": "Conditioning (Combine)",
    "ConditioningAverage": "Conditioning (Average)",
    "ConditioningConcat": "Conditioning (Concat)",
    "ConditioningSetArea": "Conditioning (Set Area)",
    "ConditioningSetAreaPercentage": "Conditioning (Set Area with Percentage)",
    "ConditioningSetAreaStrength": "Conditioning (Set Area Strength)",
    "ConditioningSetMask": "Conditioning (Set Mask)",
    "ConditioningZeroOut": "Conditioning Zero Out",
    "ConditioningMultiply": "Conditioning (Multiply)",
    "ConditioningTimestepsRange": "Timesteps Range",
    "CLIPTextEncodeControlnet": "CLIP Text Encode (Controlnet)",
}
