"""Loading CLIP vision towers: standalone files (``CLIPVisionLoader``) and unCLIP checkpoints,
whose tower sits beside the UNet, VAE and text encoder under ``embedder.model.visual.``."""

from __future__ import annotations

import logging
import os

from ldm.devices import ComputeSettings
from ldm.loading.checkpoint import load_state_dict
from ldm.model import assemble_checkpoint
from ldm.vision.clip_vision import ClipVisionHandle, ClipVisionLayoutError, clip_vision_from_state_dict

log = logging.getLogger(__name__)

#: Where SD 2.1 unCLIP checkpoints keep their image encoder (OpenCLIP layout).
UNCLIP_VISION_PREFIX = "embedder.model.visual."


def load_clip_vision(path: str | os.PathLike) -> ClipVisionHandle:
    """A vision tower file in transformers or OpenCLIP layout; raises ``ClipVisionLayoutError``
    when the file holds none."""
    state_dict, _ = load_state_dict(path)
    handle = clip_vision_from_state_dict(state_dict)
    if handle is None:
        raise ClipVisionLayoutError(f"{path}: the file holds no CLIP vision model "
                                    "(expected vision_model.* or visual.* weights)")
    log.info("loaded CLIP vision %s: %r", path, handle)
    return handle


def load_unclip_checkpoint(path: str | os.PathLike, *, compute: ComputeSettings | None = None,
                           embedding_dirs=()):
    """``(MODEL, CLIP, VAE, CLIP_VISION)`` from one checkpoint, read once. CLIP_VISION is None
    when the checkpoint has no image encoder (a plain SD checkpoint), as ComfyUI returns it."""
    state_dict, metadata = load_state_dict(path)
    model, clip, vae = assemble_checkpoint(state_dict, metadata, path, compute=compute,
                                           embedding_dirs=embedding_dirs)
    vision = clip_vision_from_state_dict(state_dict, (UNCLIP_VISION_PREFIX,))
    if vision is None:
        log.warning("%s has no unCLIP image encoder (%s*): its CLIP_VISION output is None",
                    path, UNCLIP_VISION_PREFIX)
    return model, clip, vae, vision
