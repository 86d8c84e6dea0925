"""``comfy.clip_vision``: CLIP vision towers, answered by Weft's (``ldm.vision``).

``load`` / ``load_clipvision_from_sd`` give Weft's ``CLIP_VISION`` value
(:class:`ldm.vision.clip_vision.ClipVisionHandle`: ``encode_image(image, crop=True)``, ``model``,
``image_size``), or None where the weights hold no tower, as ComfyUI returns it;
``clip_preprocess`` is Weft's (ComfyUI's arguments); :class:`Output` is the attribute bag packs
build themselves. ``ClipVisionModel`` (built from a JSON config) is a real class that matches no
Weft object and raises :class:`_weft_absent.NotInWeftError` when constructed.
"""

from __future__ import annotations

import logging
from typing import Any

from _weft_absent import CLIP_VISION, absent_class
from ldm.loading.checkpoint import load_state_dict
from ldm.vision.clip_vision import clip_preprocess, clip_vision_from_state_dict  # noqa: F401 - clip_preprocess is ComfyUI's name

log = logging.getLogger(__name__)


class Output:
    """An attribute bag that also answers ``output["key"]`` (``image_embeds``,
    ``last_hidden_state``, ``penultimate_hidden_states`` …)."""

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)


def load_clipvision_from_sd(sd: dict, prefix: str = "", convert_keys: bool = False):
    """The tower under ``prefix`` (transformers or OpenCLIP names; ``convert_keys`` is implied),
    or None."""
    return clip_vision_from_state_dict(sd, (prefix,))


def load(ckpt_path):
    """The tower in a file, or None (with a log line) when the file holds none."""
    handle = clip_vision_from_state_dict(load_state_dict(ckpt_path)[0])
    if handle is None:
        log.warning("%s holds no CLIP vision model", ckpt_path)
    return handle


ClipVisionModel = absent_class(CLIP_VISION, __name__, "ClipVisionModel")
