"""``comfy.supported_models_base``: ComfyUI's model-config base class, matched against Weft's.

``model.model.model_config`` of a Weft MODEL is :class:`ldm.model_patching.ModelConfigView`;
``isinstance(view, BASE)`` holds for every one. ``BASE`` keeps ComfyUI's class attributes and its
data methods (``matches``, ``model_type``, ``inpaint_model``, the state-dict prefix helpers), so
packs can subclass it (Easy-Use's PixArt and Kolors configs do) and compare configs; building a
network from a config (``get_model``) is Weft's loader's job and raises ``NotImplementedError``.
"""

from __future__ import annotations

import torch

from comfy import latent_formats, utils
from comfy._kinds import KindMeta
from comfy.model_base import ModelType
from ldm.model_patching import ModelConfigView

__all__ = ["BASE", "ClipTarget"]


class ClipTarget:
    """A tokenizer class and a text-model class (what ComfyUI builds a CLIP from)."""

    def __init__(self, tokenizer, clip) -> None:
        self.clip = clip
        self.tokenizer = tokenizer
        self.params = {}


class BASE(metaclass=KindMeta):
    """Every Weft model config view; the base of ComfyUI's per-family config classes."""

    __weft_is__ = staticmethod(lambda obj: isinstance(obj, ModelConfigView))

    unet_config: dict = {}
    unet_extra_config = {"num_heads": -1, "num_head_channels": 64}
    required_keys: dict = {}
    clip_prefix: list = []
    clip_vision_prefix = None
    noise_aug_config = None
    sampling_settings: dict = {}
    latent_format = latent_formats.LatentFormat
    vae_key_prefix = ["first_stage_model."]
    text_encoder_key_prefix = ["cond_stage_model."]
    supported_inference_dtypes = [torch.float16, torch.bfloat16, torch.float32]
    memory_usage_factor = 2.0
    manual_cast_dtype = None
    custom_operations = None
    scaled_fp8 = None
    optimizations = {"fp8": False}

    def __init__(self, unet_config: dict) -> None:
        self.unet_config = dict(unet_config)
        self.sampling_settings = dict(self.sampling_settings)
        self.latent_format = self.latent_format()
        self.optimizations = dict(self.optimizations)
        self.unet_config.update(self.unet_extra_config)

    @classmethod
    def matches(cls, unet_config: dict, state_dict=None) -> bool:
        """Every entry of the class's ``unet_config`` is in ``unet_config`` with the same value, and
        ``state_dict`` (if given) has the ``required_keys``."""
        if any(key not in unet_config or unet_config[key] != value for key, value in cls.unet_config.items()):
            return False
        return state_dict is None or all(key in state_dict for key in cls.required_keys)

    def model_type(self, state_dict, prefix: str = "") -> ModelType:
        return ModelType.EPS

    def inpaint_model(self) -> bool:
        return self.unet_config["in_channels"] > 4

    def get_model(self, state_dict, prefix: str = "", device=None):
        raise NotImplementedError("building a network from a ComfyUI model config: Weft builds its models "
                                  "with its own loaders (comfy.sd.load_checkpoint_guess_config, "
                                  "comfy.sd.load_diffusion_model)")

    def process_clip_state_dict(self, state_dict: dict) -> dict:
        return utils.state_dict_prefix_replace(state_dict, {k: "" for k in self.text_encoder_key_prefix},
                                               filter_keys=True)

    def process_unet_state_dict(self, state_dict: dict) -> dict:
        return state_dict

    def process_vae_state_dict(self, state_dict: dict) -> dict:
        return state_dict

    def process_clip_state_dict_for_saving(self, state_dict: dict) -> dict:
        return utils.state_dict_prefix_replace(state_dict, {"": self.text_encoder_key_prefix[0]})

    def process_unet_state_dict_for_saving(self, state_dict: dict) -> dict:
        return utils.state_dict_prefix_replace(state_dict, {"": "model.diffusion_model."})

    def process_vae_state_dict_for_saving(self, state_dict: dict) -> dict:
        return utils.state_dict_prefix_replace(state_dict, {"": self.vae_key_prefix[0]})

    def set_inference_dtype(self, dtype, manual_cast_dtype) -> None:
        self.unet_config["dtype"] = dtype
        self.manual_cast_dtype = manual_cast_dtype
