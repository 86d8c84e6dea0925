"""UNet-structural model patches: each node returns a clone of a MODEL carrying the change.

ComfyUI's FreeU / FreeU_V2 (``comfy_extras/nodes_freelunch.py``), HyperTile, SelfAttentionGuidance,
PerturbedAttentionGuidance, TomePatchModel, PatchModelAddDownscale, NAGuidance, EasyCache,
LazyCache, ModelAttentionBackend, TorchCompileModel and ModelComputeDtype. The algorithms live in
``ldm/patches``; the changes ride in the clone's ``hooks`` (UNet patches in ComfyUI's
``transformer_options`` shape, cfg hooks, ``predict_noise`` wrappers, compute settings), so the
MODEL a node received is never changed.
"""

from __future__ import annotations

import logging

import torch

from ldm.engine import TORCH_COMPILE_KWARGS
from ldm.patches.attention_backend import BACKENDS
from ldm.patches.deep_shrink import deep_shrink_patches
from ldm.patches.freeu import freeu_output_patch
from ldm.patches.hypertile import HyperTilePatches
from ldm.patches.nag import nag_output_patch
from ldm.patches.pag import pag_post_cfg
from ldm.patches.sag import RECORDED_BLOCK, sag_hooks
from ldm.patches.step_cache import EasyCache, LazyCache
from ldm.patches.tome import TomePatches
from ldm.sampling.from_handle import model_sampling_of
from nodes.services import services

log = logging.getLogger(__name__)

UNET_PATCHES = "model_patches/unet"
DOWNSCALE_METHODS = ["bicubic", "nearest-exact", "bilinear", "area", "bislerp"]
COMPUTE_DTYPES = {"default": None, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _factor(default: float) -> tuple:
    return ("FLOAT", {"default": default, "min": 0.0, "max": 10.0, "step": 0.01, "advanced": True})


def _with_split_self_attention(model, patches):
    """A clone whose self-attention queries go through ``patches.split`` before attention and
    come back through ``patches.merge`` after it (HyperTile's tiles, ToMe's merged tokens)."""
    patched = model.clone()
    patched.set_model_attn1_patch(patches.split)
    patched.set_model_attn1_output_patch(patches.merge)
    return patched


class FreeU:
    CATEGORY = UNET_PATCHES
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = "FreeU: amplifies backbone features and damps low skip frequencies in the decoder."
    VERSION = 1
    DEFAULTS = (1.1, 1.2, 0.9, 0.2)

    @classmethod
    def INPUT_TYPES(cls):
        b1, b2, s1, s2 = cls.DEFAULTS
        return {"required": {"model": ("MODEL",), "b1": _factor(b1), "b2": _factor(b2),
                             "s1": _factor(s1), "s2": _factor(s2)}}

    def patch(self, model, b1, b2, s1, s2):
        patched = model.clone()
        patched.set_model_output_block_patch(
            freeu_output_patch(model.config.model_channels, b1, b2, s1, s2, self.VERSION))
        return (patched,)


class FreeU_V2(FreeU):
    DESCRIPTION = "FreeU v2: backbone amplification weighted by where the features are active."
    VERSION = 2
    DEFAULTS = (1.3, 1.4, 0.9, 0.2)


class HyperTile:
    CATEGORY = UNET_PATCHES
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = "Tiles the self-attention queries of the largest feature maps (faster at high resolution)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",),
                             "tile_size": ("INT", {"default": 256, "min": 1, "max": 2048}),
                             "swap_size": ("INT", {"default": 2, "min": 1, "max": 128}),
                             "max_depth": ("INT", {"default": 0, "min": 0, "max": 10}),
                             "scale_depth": ("BOOLEAN", {"default": False})}}

    def patch(self, model, tile_size, swap_size, max_depth, scale_depth):
        return (_with_split_self_attention(model, HyperTilePatches(tile_size, swap_size, max_depth, scale_depth)),)


class SelfAttentionGuidance:
    CATEGORY = "_for_testing"
    EXPERIMENTAL = True
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = "Self-Attention Guidance: guides away from a prediction blurred where the model attends."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",),
                             "scale": ("FLOAT", {"default": 0.5, "min": -2.0, "max": 5.0, "step": 0.01}),
                             "blur_sigma": ("FLOAT", {"default": 2.0, "min": 0.0, "max": 10.0, "step": 0.1})}}

    def patch(self, model, scale, blur_sigma):
        attention, post_cfg = sag_hooks(scale, blur_sigma)
        patched = model.clone()
        patched.set_model_sampler_post_cfg_function(post_cfg, disable_cfg1_optimization=True)
        patched.set_model_attn1_replace(attention, *RECORDED_BLOCK)
        return (patched,)


class PerturbedAttentionGuidance:
    CATEGORY = UNET_PATCHES
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = "Perturbed-Attention Guidance: guides away from a prediction with identity self-attention."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",),
                             "scale": ("FLOAT", {"default": 3.0, "min": 0.0, "max": 100.0, "step": 0.01,
                                                 "round": 0.01})}}

    def patch(self, model, scale):
        patched = model.clone()
        patched.set_model_sampler_post_cfg_function(pag_post_cfg(scale))
        return (patched,)


class TomePatchModel:
    CATEGORY = UNET_PATCHES
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = "Token Merging: merges redundant self-attention queries at full resolution."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",),
                             "ratio": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def patch(self, model, ratio):
        return (_with_split_self_attention(model, TomePatches(ratio)),)


class PatchModelAddDownscale:
    CATEGORY = "model/patch/unet"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = "Kohya Deep Shrink: works at a smaller feature size in the deep blocks early in sampling."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL",),
            "block_number": ("INT", {"default": 3, "min": 1, "max": 32, "step": 1, "advanced": True}),
            "downscale_factor": ("FLOAT", {"default": 2.0, "min": 0.1, "max": 9.0, "step": 0.001}),
            "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001, "advanced": True}),
            "end_percent": ("FLOAT", {"default": 0.35, "min": 0.0, "max": 1.0, "step": 0.001, "advanced": True}),
            "downscale_after_skip": ("BOOLEAN", {"default": True, "advanced": True}),
            "downscale_method": (DOWNSCALE_METHODS,),
            "upscale_method": (DOWNSCALE_METHODS,)}}

    def patch(self, model, block_number, downscale_factor, start_percent, end_percent, downscale_after_skip,
              downscale_method, upscale_method):
        sampling = model_sampling_of(model)
        shrink, restore = deep_shrink_patches(block_number, downscale_factor, sampling.percent_to_sigma(start_percent),
                                              sampling.percent_to_sigma(end_percent), downscale_method,
                                              upscale_method)
        patched = model.clone()
        if downscale_after_skip:
            patched.set_model_input_block_patch_after_skip(shrink)
        else:
            patched.set_model_input_block_patch(shrink)
        patched.set_model_output_block_patch(restore)
        return (patched,)


class NAGuidance:
    CATEGORY = "advanced/guidance"
    EXPERIMENTAL = True
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The patched model with NAG enabled.",)
    DESCRIPTION = ("Applies Normalized Attention Guidance to models, enabling negative prompts on "
                   "distilled/schnell models.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model to apply NAG to."}),
            "nag_scale": ("FLOAT", {"default": 5.0, "min": 0.0, "max": 50.0, "step": 0.1,
                                    "tooltip": "The guidance scale factor. Higher values push further from the "
                                               "negative prompt."}),
            "nag_alpha": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01,
                                    "tooltip": "Blending factor for the normalized attention. 1.0 is full "
                                               "replacement, 0.0 is no effect."}),
            "nag_tau": ("FLOAT", {"default": 1.5, "min": 1.0, "max": 10.0, "step": 0.01})}}

    def execute(self, model, nag_scale, nag_alpha, nag_tau):
        patched = model.clone()
        patched.set_model_attn1_output_patch(nag_output_patch(nag_scale, nag_alpha, nag_tau))
        patched.hooks.disable_cfg1_optimization = True
        return (patched,)


def _cache_inputs(name: str) -> dict:
    return {"required": {
        "model": ("MODEL", {"tooltip": f"The model to add {name} to."}),
        "reuse_threshold": ("FLOAT", {"default": 0.2, "min": 0.0, "max": 3.0, "step": 0.01,
                                      "tooltip": "The threshold for reusing cached steps."}),
        "start_percent": ("FLOAT", {"default": 0.15, "min": 0.0, "max": 1.0, "step": 0.01,
                                    "tooltip": f"The relative sampling step to begin use of {name}."}),
        "end_percent": ("FLOAT", {"default": 0.95, "min": 0.0, "max": 1.0, "step": 0.01,
                                  "tooltip": f"The relative sampling step to end use of {name}."}),
        "verbose": ("BOOLEAN", {"default": False, "tooltip": "Whether to log verbose information."})}}


class EasyCacheNode:
    CATEGORY = "advanced/debug/model"
    EXPERIMENTAL = True
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The model with EasyCache.",)
    DESCRIPTION = "Native EasyCache implementation."

    @classmethod
    def INPUT_TYPES(cls):
        return _cache_inputs("EasyCache")

    def execute(self, model, reuse_threshold, start_percent, end_percent, verbose):
        cache = EasyCache(reuse_threshold, start_percent, end_percent, verbose)
        patched = model.clone()
        patched.hooks.predict_noise_wrappers.append(cache.open_step)
        patched.add_wrapper_with_key("diffusion_model", "easycache", cache.forward)
        return (patched,)


class LazyCacheNode:
    CATEGORY = "advanced/debug/model"
    EXPERIMENTAL = True
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The model with LazyCache.",)
    DESCRIPTION = ("A homebrew version of EasyCache - even 'easier' version of EasyCache to implement. Overall "
                   "works worse than EasyCache, but better in some rare cases AND universal compatibility with "
                   "everything in ComfyUI.")

    @classmethod
    def INPUT_TYPES(cls):
        return _cache_inputs("LazyCache")

    def execute(self, model, reuse_threshold, start_percent, end_percent, verbose):
        cache = LazyCache(reuse_threshold, start_percent, end_percent, verbose)
        patched = model.clone()
        patched.hooks.predict_noise_wrappers.append(cache.predict)
        return (patched,)


class ModelAttentionBackend:
    CATEGORY = "model/patch"
    EXPERIMENTAL = True
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The model with the selected attention backend.",)
    DESCRIPTION = ("Selects the dense attention implementation for the model. When used with Block Sparse "
                   "Attention, this backend is used whenever sparse attention is inactive or unsupported.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model to patch."}),
            "attention": (list(BACKENDS), {"default": "pytorch attention", "display_name": "backend",
                                           "tooltip": "The dense attention backend. Comfy Kitchen attention uses "
                                                      "quantized INT8 attention and is available only on Nvidia "
                                                      "and AMD GPUs."})}}

    @classmethod
    def VALIDATE_INPUTS(cls, attention):
        return True  # a workflow naming a backend this machine lacks falls back to PyTorch's

    def execute(self, model, attention):
        if attention not in BACKENDS:
            log.warning("Attention backend '%s' is unavailable; using PyTorch attention.", attention)
            attention = "pytorch attention"
        log.info("Attention backend enabled: using %s.", attention)
        patched = model.clone()
        patched.hooks.transformer_options["optimized_attention_override"] = BACKENDS[attention]
        return (patched,)


class TorchCompileModel:
    CATEGORY = "_for_testing"
    EXPERIMENTAL = True
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)
    DESCRIPTION = "Runs the diffusion model through torch.compile with the chosen backend."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "backend": (["inductor", "cudagraphs"],)}}

    def execute(self, model, backend):
        patched = model.clone()
        # ComfyUI's set_torch_compile_wrapper arguments; the engine compiles the UNet with them.
        patched.hooks.extra[TORCH_COMPILE_KWARGS] = {"backend": backend, "options": None, "mode": None,
                                                     "fullgraph": False, "dynamic": None}
        return (patched,)


class ModelComputeDtype:
    CATEGORY = "advanced/debug"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)
    SEARCH_ALIASES = ["model precision", "change dtype"]
    DESCRIPTION = "Sets the dtype the diffusion model computes in (default: the engine's)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "dtype": (list(COMPUTE_DTYPES), {"advanced": True})}}

    def patch(self, model, dtype):
        patched = model.clone()
        patched.hooks.compute_dtype = COMPUTE_DTYPES[dtype]
        # the handle's dtype is what sampling casts the latent to before the engine's UNet sees it
        patched.dtype = patched.hooks.compute_dtype or services().engine.compute.dtype
        return (patched,)


NODE_CLASS_MAPPINGS = {
    "FreeU": FreeU,
    "FreeU_V2": FreeU_V2,
    "HyperTile": HyperTile,
    "SelfAttentionGuidance": SelfAttentionGuidance,
    "PerturbedAttentionGuidance": PerturbedAttentionGuidance,
    "TomePatchModel": TomePatchModel,
    "PatchModelAddDownscale": PatchModelAddDownscale,
    "NAGuidance": NAGuidance,
    "EasyCache": EasyCacheNode,
    "LazyCache": LazyCacheNode,
    "ModelAttentionBackend": ModelAttentionBackend,
    "TorchCompileModel": TorchCompileModel,
    "ModelComputeDtype": ModelComputeDtype,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "SelfAttentionGuidance": "Self-Attention Guidance",
    "PatchModelAddDownscale": "PatchModelAddDownscale (Kohya Deep Shrink)",
    "NAGuidance": "Normalized Attention Guidance",
    "EasyCache": "EasyCache",
    "LazyCache": "LazyCache",
    "ModelAttentionBackend": "Model Attention Backend",
}
