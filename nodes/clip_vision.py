"""Image-conditioning nodes: CLIP vision, unCLIP, style models, hypernetworks, GLIGEN, PhotoMaker.

Names, inputs (names, types, defaults, ranges, order), outputs, functions and categories are
ComfyUI's (``nodes.py``: CLIPVisionLoader, CLIPVisionEncode, unCLIPCheckpointLoader,
unCLIPConditioning, StyleModelLoader, StyleModelApply, GLIGENLoader, GLIGENTextBoxApply;
``comfy_extras/nodes_hypernetwork.py``:
HypernetworkLoader; ``comfy_extras/nodes_photomaker.py``: PhotoMakerLoader, PhotoMakerEncode, V3
nodes declared here in V1 form), so API prompts that use them run unchanged. Every body delegates
to ``ldm.vision``; image encoders are placed by the engine's memory manager while they encode.
"""

from __future__ import annotations

from ldm.vision.clip_vision import clip_preprocess, placed_as_encoder
from ldm.vision.gligen import load_gligen
from ldm.vision.hypernetwork import load_hypernetwork
from ldm.vision.loading import load_clip_vision, load_unclip_checkpoint
from ldm.vision.photomaker import load_photomaker, trigger_tokens
from ldm.vision.style_model import append_style_tokens, load_style_model
from nodes.conditioning import MAX_RESOLUTION, encode_tokens
from nodes.services import model_names, services


def _path(kind: str, name: str):
    return services().folders.model_path(kind, name)


class CLIPVisionLoader:
    CATEGORY = "model/loaders"
    FUNCTION = "load_clip"
    RETURN_TYPES = ("CLIP_VISION",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_name": (model_names("clip_vision"),)}}

    def load_clip(self, clip_name):
        return (load_clip_vision(_path("clip_vision", clip_name)),)


class CLIPVisionEncode:
    CATEGORY = "model/conditioning"
    FUNCTION = "encode"
    RETURN_TYPES = ("CLIP_VISION_OUTPUT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_vision": ("CLIP_VISION",), "image": ("IMAGE",),
                             "crop": (["center", "none"],)}}

    def encode(self, clip_vision, image, crop):
        with clip_vision.placed(services().engine):
            return (clip_vision.encode_image(image, crop=crop == "center"),)


class unCLIPCheckpointLoader:  # noqa: N801 - ComfyUI's class name
    CATEGORY = "model/loaders"
    FUNCTION = "load_checkpoint"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE", "CLIP_VISION")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (model_names("checkpoints"),)}}

    def load_checkpoint(self, ckpt_name):
        found = services()
        return load_unclip_checkpoint(_path("checkpoints", ckpt_name), compute=found.engine.compute,
                                      embedding_dirs=tuple(found.folders.model_roots("embeddings")))


class unCLIPConditioning:  # noqa: N801 - ComfyUI's class name
    CATEGORY = "model/conditioning"
    FUNCTION = "apply_adm"
    RETURN_TYPES = ("CONDITIONING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "conditioning": ("CONDITIONING",), "clip_vision_output": ("CLIP_VISION_OUTPUT",),
            "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}),
            "noise_augmentation": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def apply_adm(self, conditioning, clip_vision_output, strength, noise_augmentation):
        if strength == 0:
            return (conditioning,)
        item = {"clip_vision_output": clip_vision_output, "strength": strength,
                "noise_augmentation": noise_augmentation}
        # Appended to any unCLIP images already there; the model sums them (ldm.vision.unclip).
        return ([[cond, {**extras, "unclip_conditioning": list(extras.get("unclip_conditioning") or []) + [item]}]
                 for cond, extras in conditioning],)


class StyleModelLoader:
    CATEGORY = "model/loaders"
    FUNCTION = "load_style_model"
    RETURN_TYPES = ("STYLE_MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"style_model_name": (model_names("style_models"),)}}

    def load_style_model(self, style_model_name):
        return (load_style_model(_path("style_models", style_model_name)),)


class StyleModelApply:
    CATEGORY = "model/conditioning"
    FUNCTION = "apply_stylemodel"
    RETURN_TYPES = ("CONDITIONING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "conditioning": ("CONDITIONING",), "style_model": ("STYLE_MODEL",),
            "clip_vision_output": ("CLIP_VISION_OUTPUT",),
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.001}),
            "strength_type": (["multiply", "attn_bias"],)}}

    def apply_stylemodel(self, conditioning, style_model, clip_vision_output, strength, strength_type):
        tokens = style_model.get_cond(clip_vision_output)
        return (append_style_tokens(conditioning, tokens, strength, strength_type),)


class HypernetworkLoader:
    CATEGORY = "loaders"
    FUNCTION = "load_hypernetwork"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL",), "hypernetwork_name": (model_names("hypernetworks"),),
            "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01})}}

    def load_hypernetwork(self, model, hypernetwork_name, strength):
        patch = load_hypernetwork(_path("hypernetworks", hypernetwork_name), strength)
        patched = model.clone()
        # ComfyUI patches self- and cross-attention with the same object; the width picks the MLPs.
        patched.set_model_attn1_patch(patch)
        patched.set_model_attn2_patch(patch)
        return (patched,)


class GLIGENLoader:
    CATEGORY = "model/loaders"
    FUNCTION = "load_gligen"
    RETURN_TYPES = ("GLIGEN",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"gligen_name": (model_names("gligen"),)}}

    def load_gligen(self, gligen_name):
        return (load_gligen(_path("gligen", gligen_name)),)


class GLIGENTextBoxApply:
    CATEGORY = "model/conditioning/gligen"
    FUNCTION = "append"
    RETURN_TYPES = ("CONDITIONING",)

    @classmethod
    def INPUT_TYPES(cls):
        box = {"min": 8, "max": MAX_RESOLUTION, "step": 8}
        corner = {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 8}
        return {"required": {
            "conditioning_to": ("CONDITIONING",), "clip": ("CLIP",), "gligen_textbox_model": ("GLIGEN",),
            "text": ("STRING", {"multiline": True, "dynamicPrompts": True}),
            "width": ("INT", {"default": 64, **box}), "height": ("INT", {"default": 64, **box}),
            "x": ("INT", corner), "y": ("INT", corner)}}

    def append(self, conditioning_to, clip, gligen_textbox_model, text, width, height, x, y):
        # The phrase's pooled text embedding (SD 1.x's CLIP-L has no projection: it is unprojected).
        [[_, extras]] = encode_tokens(clip, clip.tokenize(text))
        box = (extras["pooled_output"], height // 8, width // 8, y // 8, x // 8)  # in latent pixels
        out = []
        for cond, entry in conditioning_to:
            boxes = list(entry["gligen"][2]) if "gligen" in entry else []
            out.append([cond, {**entry, "gligen": ("position", gligen_textbox_model, boxes + [box])}])
        return (out,)


class PhotoMakerLoader:
    CATEGORY = "_for_testing/photomaker"
    FUNCTION = "load_photomaker_model"
    RETURN_TYPES = ("PHOTOMAKER",)
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"photomaker_model_name": (model_names("photomaker"),)}}

    def load_photomaker_model(self, photomaker_model_name):
        return (load_photomaker(_path("photomaker", photomaker_model_name)),)


class PhotoMakerEncode:
    CATEGORY = "_for_testing/photomaker"
    FUNCTION = "apply_photomaker"
    RETURN_TYPES = ("CONDITIONING",)
    EXPERIMENTAL = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "photomaker": ("PHOTOMAKER",), "image": ("IMAGE",), "clip": ("CLIP",),
            "text": ("STRING", {"multiline": True, "dynamicPrompts": True, "default": "photograph of photomaker"})}}

    def apply_photomaker(self, photomaker, image, clip, text):
        tokens, class_position = trigger_tokens(clip.tokenize(text, return_word_ids=True), text)
        [[cond, extras]] = encode_tokens(clip, {k: [[e[:2] for e in chunk] for chunk in chunks]
                                                for k, chunks in tokens.items()})
        if class_position is not None:
            pixels = clip_preprocess(image.float(), photomaker.config.image_size)
            with placed_as_encoder(services().engine, photomaker, "PhotoMaker"):
                cond = photomaker.fuse_prompt(pixels, cond, class_position).cpu()
        return ([[cond, {"pooled_output": extras["pooled_output"]}]],)


NODE_CLASS_MAPPINGS = {
    "CLIPVisionLoader": CLIPVisionLoader,
    "CLIPVisionEncode": CLIPVisionEncode,
    "unCLIPCheckpointLoader": unCLIPCheckpointLoader,
    "unCLIPConditioning": unCLIPConditioning,
    "StyleModelLoader": StyleModelLoader,
    "StyleModelApply": StyleModelApply,
    "HypernetworkLoader": HypernetworkLoader,
    "GLIGENLoader": GLIGENLoader,
    "GLIGENTextBoxApply": GLIGENTextBoxApply,
    "PhotoMakerLoader": PhotoMakerLoader,
    "PhotoMakerEncode": PhotoMakerEncode,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "CLIPVisionLoader": "Load CLIP Vision",
    "CLIPVisionEncode": "CLIP Vision Encode",
    "StyleModelLoader": "Load Style Model",
    "StyleModelApply": "Apply Style Model",
    "unCLIPCheckpointLoader": "Load unCLIP Checkpoint",
    "GLIGENLoader": "Load GLIGEN Model",
    "GLIGENTextBoxApply": "Apply GLIGEN Text Box",
}
