"""Upscale models: ComfyUI's ``UpscaleModelLoader`` and ``ImageUpscaleWithModel``
(``comfy_extras/nodes_upscale_model.py``), over :mod:`ldm.imaging.upscale` (spandrel architectures,
tiled, placed by the engine's memory manager)."""

from __future__ import annotations

from graph.context import report_progress
from ldm.imaging.upscale import load_upscale_model, upscale_image
from nodes.services import model_names, services


class UpscaleModelLoader:
    CATEGORY = "model/loaders"
    FUNCTION = "load_model"
    RETURN_TYPES = ("UPSCALE_MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model_name": (model_names("upscale_models"),)}}

    def load_model(self, model_name):
        return (load_upscale_model(services().folders.model_path("upscale_models", model_name)),)


class ImageUpscaleWithModel:
    CATEGORY = "image/upscaling"
    FUNCTION = "upscale"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"upscale_model": ("UPSCALE_MODEL",), "image": ("IMAGE",)}}

    def upscale(self, upscale_model, image):
        return (upscale_image(services().engine, upscale_model, image, progress=report_progress),)


NODE_CLASS_MAPPINGS = {
    "UpscaleModelLoader": UpscaleModelLoader,
    "ImageUpscaleWithModel": ImageUpscaleWithModel,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "UpscaleModelLoader": "Load Upscale Model",
    "ImageUpscaleWithModel": "Upscale Image (using Model)",
}
