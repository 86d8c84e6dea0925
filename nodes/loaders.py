"""Loader nodes: checkpoints, diffusion models, VAEs, diffusers folders, and saving a checkpoint.

Names, inputs, outputs and categories are ComfyUI's (``nodes.py``), so API prompts written for
ComfyUI run unchanged. Model lists come from ``models/<kind>/`` (recursively) through the
services' ``FolderPaths``; the loading itself is ``ldm.model``'s.
"""

from __future__ import annotations

from graph.folders import safe_join
from ldm.loading import saving
from ldm.loading.diffusers_folder import MODEL_INDEX, find_model_folders, load_diffusers
from ldm.model import WEIGHT_DTYPES, load_checkpoint, load_unet, load_vae
from nodes.model_saving import ModelFileSave, output_file, run_metadata
from nodes.services import model_names, running_services, services


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
    CATEGORY = "model/loaders"
    FUNCTION = "load_checkpoint"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    OUTPUT_TOOLTIPS = ("The model used for denoising latents.",
                       "The CLIP model used for encoding text prompts.",
                       "The VAE model used for encoding and decoding images to and from latent space.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (model_names("checkpoints"),
                                           {"tooltip": "The name of the checkpoint (model) to load."})}}

    def load_checkpoint(self, ckpt_name):
        path = services().folders.model_path("checkpoints", ckpt_name)
        return load_checkpoint(path, compute=_compute(), embedding_dirs=_embedding_dirs())


class CheckpointLoader:
    CATEGORY = "model/loaders"
    FUNCTION = "load_checkpoint"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    DEPRECATED = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"config_name": (model_names("configs"),),
                             "ckpt_name": (model_names("checkpoints"),)}}

    def load_checkpoint(self, config_name, ckpt_name):
        # The architecture is read from the weights; the YAML can only settle the prediction type.
        folders = services().folders
        prediction = _prediction_from_config(folders.model_path("configs", config_name))
        path = folders.model_path("checkpoints", ckpt_name)
        return load_checkpoint(path, compute=_compute(), embedding_dirs=_embedding_dirs(),
                               prediction=prediction)


class UNETLoader:
    CATEGORY = "model/loaders"
    FUNCTION = "load_unet"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"unet_name": (model_names("diffusion_models"),),
                             "weight_dtype": (list(WEIGHT_DTYPES), {"advanced": True})}}

    def load_unet(self, unet_name, weight_dtype):
        path = services().folders.model_path("diffusion_models", unet_name)
        return (load_unet(path, weight_dtype=weight_dtype, compute=_compute()),)


class VAELoader:
    CATEGORY = "model/loaders"
    FUNCTION = "load_vae"
    RETURN_TYPES = ("VAE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae_name": (model_names("vae"),)}}

    def load_vae(self, vae_name):
        return (load_vae(services().folders.model_path("vae", vae_name), compute=_compute()),)


def _diffusers_roots() -> list:
    """Where diffusers model folders live: the ``diffusers`` model paths when configured, else
    ``models/diffusers``."""
    folders = services().folders
    configured = folders.models.get("diffusers")
    if configured:
        return list(configured)
    return [folders.models_root / "diffusers"] if folders.models_root is not None else []


class DiffusersLoader:
    CATEGORY = "model/loaders"
    FUNCTION = "load_checkpoint"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    DEPRECATED = True

    @classmethod
    def INPUT_TYPES(cls):
        found = running_services() is not None
        paths = sorted({p for root in _diffusers_roots() for p in find_model_folders(root)}) if found else []
        return {"required": {"model_path": (paths,)}}

    def load_checkpoint(self, model_path):
        for root in _diffusers_roots():
            folder = safe_join(root, model_path)
            if (folder / MODEL_INDEX).is_file():
                return load_diffusers(folder, compute=_compute(), embedding_dirs=_embedding_dirs())
        raise FileNotFoundError(f"diffusers model folder {model_path!r} not found")


class CheckpointSave(ModelFileSave):
    @classmethod
    def INPUT_TYPES(cls):
        return cls.inputs({"model": "MODEL", "clip": "CLIP", "vae": "VAE"}, "checkpoints/ComfyUI")

    def save(self, model, clip, vae, filename_prefix, prompt=None, extra_pnginfo=None):
        path, target, counter = output_file(filename_prefix, "safetensors")
        saving.save_checkpoint(path, model, clip, vae, metadata=run_metadata(prompt, extra_pnginfo),
                               title=f"{target.filename} {counter}")
        return {}


NODE_CLASS_MAPPINGS = {
    "CheckpointLoaderSimple": CheckpointLoaderSimple,
    "CheckpointLoader": CheckpointLoader,
    "UNETLoader": UNETLoader,
    "VAELoader": VAELoader,
    "DiffusersLoader": DiffusersLoader,
    "CheckpointSave": CheckpointSave,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "CheckpointLoaderSimple": "Load Checkpoint",
    "CheckpointLoader": "Load Checkpoint With Config (DEPRECATED)",
    "UNETLoader": "Load Diffusion Model",
    "VAELoader": "Load VAE",
    "DiffusersLoader": "Load Diffusers Model (DEPRECATED)",
    "CheckpointSave": "Save Checkpoint",
}
