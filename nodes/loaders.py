"""Loader nodes: checkpoints, diffusion models, VAEs, and saving a checkpoint.

Names, inputs, outputs and categories are ComfyUI's (``nodes.py``), so API prompts written for
ComfyUI run unchanged. Model lists come from ``models/<kind>/`` (recursively) through the
services' ``FolderPaths``; the loading itself is ``ldm.model``'s.
"""

from __future__ import annotations

import json
import re

from graph.context import current_context
from graph.folders import UnsafePathError, check_relative_name, safe_join
from ldm.model import WEIGHT_DTYPES, load_checkpoint, load_unet, load_vae, save_checkpoint
from nodes.services import Services, services


def _model_list(kind: str) -> list[str]:
    """The model files of ``kind`` for a combo; empty when no services are installed."""
    context = current_context()
    found = getattr(context, "services", None) if context is not None else None
    if not isinstance(found, Services):
        return []
    return found.folders.list_models(kind)


def _compute():
    """The engine's compute settings: device, dtypes."""
    return services().engine.compute


def _embedding_dirs() -> tuple:
    return tuple(services().folders.models.get("embeddings", ()))


def _prediction_from_config(path) -> str | None:
    """``"v"`` / ``"eps"`` from an LDM YAML's ``model.params.parameterization``, if it says."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    params = (config.get("model") or {}).get("params") or {}
    parameterization = params.get("parameterization")
    if parameterization is None:
        return None
    return "v" if parameterization == "v" else "eps"


class CheckpointLoaderSimple:
    DESCRIPTION = "Loads a diffusion model checkpoint, diffusion models are used to denoise latents."
    CATEGORY = "loaders"
    FUNCTION = "load_checkpoint"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    OUTPUT_TOOLTIPS = ("The model used for denoising latents.",
                       "The CLIP model used for encoding text prompts.",
                       "The VAE model used for encoding and decoding images to and from latent space.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (_model_list("checkpoints"),
                                           {"tooltip": "The name of the checkpoint (model) to load."})}}

    def load_checkpoint(self, ckpt_name):
        path = services().folders.model_path("checkpoints", ckpt_name)
        return load_checkpoint(path, compute=_compute(), embedding_dirs=_embedding_dirs())


class CheckpointLoader:
    CATEGORY = "advanced/loaders"
    FUNCTION = "load_checkpoint"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    DEPRECATED = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"config_name": (_model_list("configs"),),
                             "ckpt_name": (_model_list("checkpoints"),)}}

    def load_checkpoint(self, config_name, ckpt_name):
        # The architecture is read from the weights; the YAML can only settle the prediction type.
        folders = services().folders
        prediction = _prediction_from_config(folders.model_path("configs", config_name))
        path = folders.model_path("checkpoints", ckpt_name)
        return load_checkpoint(path, compute=_compute(), embedding_dirs=_embedding_dirs(),
                               prediction=prediction)


class UNETLoader:
    CATEGORY = "advanced/loaders"
    FUNCTION = "load_unet"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"unet_name": (_model_list("diffusion_models"),),
                             "weight_dtype": (list(WEIGHT_DTYPES),)}}

    def load_unet(self, unet_name, weight_dtype):
        path = services().folders.model_path("diffusion_models", unet_name)
        return (load_unet(path, weight_dtype=weight_dtype, compute=_compute()),)


class VAELoader:
    CATEGORY = "loaders"
    FUNCTION = "load_vae"
    RETURN_TYPES = ("VAE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae_name": (_model_list("vae"),)}}

    def load_vae(self, vae_name):
        return (load_vae(services().folders.model_path("vae", vae_name), compute=_compute()),)


def _next_counter(folder, filename: str) -> int:
    """One more than the highest ``<filename>_NNNNN_`` counter already in ``folder``."""
    pattern = re.compile(re.escape(filename) + r"_(\d{5,})_")
    if not folder.is_dir():
        return 1
    counters = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))]
    return max(counters, default=0) + 1


class CheckpointSave:
    CATEGORY = "advanced/model_merging"
    FUNCTION = "save"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "clip": ("CLIP",), "vae": ("VAE",),
                             "filename_prefix": ("STRING", {"default": "checkpoints/ComfyUI"})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def save(self, model, clip, vae, filename_prefix, prompt=None, extra_pnginfo=None):
        found = services()
        # "sub/dir/name" -> output/sub/dir/name_00001_.safetensors; escapes are refused.
        parts = check_relative_name(filename_prefix)
        if not parts:
            raise UnsafePathError("filename_prefix needs a file name")
        folder, filename = safe_join(found.folders.output, *parts[:-1]), parts[-1]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{filename}_{_next_counter(folder, filename):05}_.safetensors"
        metadata = {}
        if not found.options.disable_metadata:
            if prompt is not None:
                metadata["prompt"] = json.dumps(prompt)
            for key, value in (extra_pnginfo or {}).items():
                metadata[key] = json.dumps(value)
        # Loaded models hold device copies (compute dtype, maybe another clone's LoRA); the file
        # gets the stored weights, which unloading puts back.
        found.engine.unload_all()
        save_checkpoint(path, model, clip, vae, metadata)
        return {}


NODE_CLASS_MAPPINGS = {
    "CheckpointLoaderSimple": CheckpointLoaderSimple,
    "CheckpointLoader": CheckpointLoader,
    "UNETLoader": UNETLoader,
    "VAELoader": VAELoader,
    "CheckpointSave": CheckpointSave,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "CheckpointLoaderSimple": "Load Checkpoint",
    "CheckpointLoader": "Load Checkpoint With Config (DEPRECATED)",
    "UNETLoader": "Load Diffusion Model",
    "VAELoader": "Load VAE",
    "CheckpointSave": "Save Checkpoint",
}
