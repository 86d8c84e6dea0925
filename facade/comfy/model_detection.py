"""``comfy.model_detection``: what a UNet state dict is, answered by :mod:`ldm.loading.detect`.

``detect_unet_config`` and ``model_config_from_unet`` read CompVis-layout UNets of the families
Weft loads (SD1, SD2, SDXL, the SDXL refiner, the x4 upscaler; inpainting variants) and give
ComfyUI's shapes: a ``unet_config`` dict with ComfyUI's key names, and an instance of the matching
:mod:`comfy.supported_models` class, chosen by the family Weft detected. Anything else (ControlNet
weights without output blocks, diffusers-layout UNets, DiT families) raises
``NotImplementedError`` with the detector's reason. ``count_blocks``, ``convert_config`` and
``unet_prefix_from_state_dict`` are plain key and config arithmetic.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Iterable

from comfy import supported_models, supported_models_base
from ldm.latent_formats import FAMILY_LATENT_FORMATS
from ldm.loading.detect import DetectionError, detect_unet, find_contents
from ldm.model_patching import ModelConfigView

__all__ = ["convert_config", "count_blocks", "detect_unet_config", "model_config_from_diffusers_unet",
           "model_config_from_unet", "model_config_from_unet_config", "unet_config_from_diffusers_unet",
           "unet_prefix_from_state_dict"]

_CONFIG_BY_FAMILY = {
    "sd1": supported_models.SD15, "sd1_inpaint": supported_models.SD15,
    "sd2": supported_models.SD20, "sd2_v": supported_models.SD20, "sd2_inpaint": supported_models.SD20,
    "sdxl": supported_models.SDXL, "sdxl_refiner": supported_models.SDXLRefiner,
    "sd_x4": supported_models.SD_X4Upscaler,
}


def count_blocks(state_dict_keys: Iterable[str], prefix_string: str) -> int:
    """How many consecutive ``prefix_string.format(i)`` (i = 0, 1, …) some key starts with."""
    keys = list(state_dict_keys)
    count = 0
    while any(k.startswith(prefix_string.format(count)) for k in keys):
        count += 1
    return count


def unet_prefix_from_state_dict(state_dict: dict) -> str:
    """The UNet's key prefix: ``"model.diffusion_model."`` in a checkpoint, ``""`` in a UNet-only file."""
    try:
        prefix = find_contents(state_dict).unet_prefix
    except DetectionError as exc:
        raise NotImplementedError(f"UNet prefix: {exc}") from None
    if prefix is None:
        raise NotImplementedError("no CompVis-layout UNet found (Weft reads SD1/SD2/SDXL UNets under "
                                  "model.diffusion_model. or unprefixed); other model families are not loaded")
    return prefix


def _detect(state_dict: dict, key_prefix: str, metadata: dict | None):
    unet = {k[len(key_prefix):]: v for k, v in state_dict.items() if k.startswith(key_prefix)}
    try:
        return detect_unet(unet, metadata)
    except DetectionError as exc:
        raise NotImplementedError(f"UNet detection (Weft detects whole SD1/SD2/SDXL/x4 UNets only): {exc}") from None


def _unet_config(detection) -> dict:
    view = ModelConfigView(SimpleNamespace(config=detection.config, prediction=detection.prediction,
                                           family=detection.family,
                                           latent_format=FAMILY_LATENT_FORMATS[detection.family]))
    config = dict(view.unet_config)
    config.update(use_temporal_attention=False, use_spatial_transformer=config["context_dim"] is not None,
                  legacy=False)
    if detection.config.disable_self_attn:
        config["disable_self_attentions"] = list(detection.config.disable_self_attn)
    return config


def detect_unet_config(state_dict: dict, key_prefix: str, metadata: dict | None = None) -> dict:
    """ComfyUI's ``unet_config`` dict of the UNet under ``key_prefix``."""
    return _unet_config(_detect(state_dict, key_prefix, metadata))


def model_config_from_unet_config(unet_config: dict, state_dict: dict | None = None):
    """The first :data:`comfy.supported_models.models` class whose ``unet_config`` entries all
    match, built on ``unet_config``; None when none matches (as in ComfyUI)."""
    for config_class in supported_models.models:
        if config_class.matches(unet_config, state_dict):
            return config_class(unet_config)
    return None


def model_config_from_unet(state_dict: dict, unet_key_prefix: str, use_base_if_no_match: bool = False,
                           metadata: dict | None = None):
    """The :mod:`comfy.supported_models` config of the UNet under ``unet_key_prefix``, by the family
    Weft detects (``use_base_if_no_match`` does not apply: Weft detects its families or raises)."""
    detection = _detect(state_dict, unet_key_prefix, metadata)
    return _CONFIG_BY_FAMILY.get(detection.family, supported_models_base.BASE)(_unet_config(detection))


def convert_config(unet_config: dict) -> dict:
    """A CompVis-style config (``num_res_blocks`` an int, ``attention_resolutions`` a list of
    downsampling factors, ``transformer_depth`` per level) in ComfyUI's per-block form: lists
    ``num_res_blocks`` per level, ``transformer_depth`` per input ResBlock, ``transformer_depth_output``
    per output block (one more per level), ``transformer_depth_middle``."""
    config = dict(unet_config)
    channel_mult = config.get("channel_mult")
    num_res_blocks = config.get("num_res_blocks")
    if isinstance(num_res_blocks, int):
        num_res_blocks = [num_res_blocks] * len(channel_mult)
    if "attention_resolutions" in config:
        resolutions = config.pop("attention_resolutions")
        depth = config.get("transformer_depth")
        if isinstance(depth, int):
            depth = [depth] * len(channel_mult)
        middle = config.get("transformer_depth_middle")
        depth_in, depth_out = [], []
        for level, blocks in enumerate(num_res_blocks):
            level_depth = depth[level] if 2 ** level in resolutions else 0
            depth_in += [level_depth] * blocks
            depth_out += [level_depth] * (blocks + 1)
        config["transformer_depth"] = depth_in
        config["transformer_depth_output"] = depth_out
        config["transformer_depth_middle"] = depth[-1] if middle is None else middle
    config["num_res_blocks"] = num_res_blocks
    return config


def unet_config_from_diffusers_unet(state_dict: dict, dtype: Any = None):
    raise NotImplementedError("diffusers-layout UNet weights: Weft reads CompVis-layout (single-file) UNets only")


def model_config_from_diffusers_unet(state_dict: dict):
    raise NotImplementedError("diffusers-layout UNet weights: Weft reads CompVis-layout (single-file) UNets only")
