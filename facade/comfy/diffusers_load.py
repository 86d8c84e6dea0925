"""``comfy.diffusers_load``: a diffusers model folder (``model_index.json`` and one sub-folder per
part) as ``(MODEL, CLIP, VAE)``, loaded by Weft's :func:`ldm.loading.diffusers_folder.load_diffusers`."""

from __future__ import annotations

from _weft_binding import host
from ldm.loading.diffusers_folder import load_diffusers as load_diffusers_folder

__all__ = ["load_diffusers"]


def load_diffusers(model_path, output_vae=True, output_clip=True, embedding_directory=None):
    """``(model, clip, vae)``; ``clip`` / ``vae`` are None when not asked for, as in ComfyUI.
    Textual-inversion embeddings come from ``embedding_directory`` (a folder or a list of them),
    else from the server's embeddings folders."""
    services = host().services
    if embedding_directory is None:
        embedding_dirs = tuple(services.folders.models.get("embeddings", ()))
    else:
        embedding_dirs = (embedding_directory,) if isinstance(embedding_directory, str) else tuple(embedding_directory)
    return load_diffusers_folder(model_path, compute=services.engine.compute, embedding_dirs=embedding_dirs,
                                 with_clip=output_clip, with_vae=output_vae)
