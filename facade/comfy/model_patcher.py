"""``comfy.model_patcher``: ``ModelPatcher`` is Weft's MODEL.

Every MODEL Weft's loaders return is an :class:`ldm.model.ModelHandle`, which carries ComfyUI's
``ModelPatcher`` methods (:mod:`ldm.model_patching`), so ``isinstance(model, ModelPatcher)`` holds
for it. Constructing ``ModelPatcher(model.model, load_device, offload_device)`` — what some packs
do to re-wrap a model — gives a fresh handle over the same network.
"""

from __future__ import annotations

from comfy._kinds import KindMeta
from comfy.patcher_extension import PatcherInjection  # noqa: F401  (ComfyUI re-exports it here)
from ldm.model import ModelHandle
from ldm.model_patching import DiffusionModelView
from ldm.sampling.hooks import SamplingHooks


class ModelPatcher(ModelHandle, metaclass=KindMeta):
    __weft_is__ = staticmethod(lambda obj: isinstance(obj, ModelHandle))

    def __init__(self, model, load_device=None, offload_device=None, size=0, weight_inplace_update=False):
        if not isinstance(model, DiffusionModelView):
            raise TypeError("in Weft, ModelPatcher(...) wraps the .model of a MODEL a loader returned; "
                            f"got {type(model).__name__}")
        source = model._handle
        super().__init__(unet=source.unet, config=source.config, family=source.family,
                         prediction=source.prediction, latent_format=source.latent_format,
                         device=load_device or source.device, dtype=source.dtype, patches={},
                         hooks=SamplingHooks())


def set_model_options_patch_replace(model_options, patch, name, block_name, number, transformer_index=None):
    """ComfyUI's helper: a copy of ``model_options`` with an attention replace patch added."""
    options = dict(model_options)
    transformer = dict(options.get("transformer_options", {}))
    replace = dict(transformer.get("patches_replace", {}))
    table = dict(replace.get(name, {}))
    key = (block_name, number) if transformer_index is None else (block_name, number, transformer_index)
    table[key] = patch
    replace[name] = table
    transformer["patches_replace"] = replace
    options["transformer_options"] = transformer
    return options


def _with_cfg_function(model_options, key: str, function, disable_cfg1_optimization: bool):
    """A copy of ``model_options`` with ``function`` appended to the hook list ``key``."""
    options = dict(model_options)
    options[key] = list(options.get(key, [])) + [function]
    if disable_cfg1_optimization:
        options["disable_cfg1_optimization"] = True
    return options


def set_model_options_post_cfg_function(model_options, post_cfg_function, disable_cfg1_optimization=False):
    return _with_cfg_function(model_options, "sampler_post_cfg_function", post_cfg_function,
                              disable_cfg1_optimization)


def set_model_options_pre_cfg_function(model_options, pre_cfg_function, disable_cfg1_optimization=False):
    return _with_cfg_function(model_options, "sampler_pre_cfg_function", pre_cfg_function,
                              disable_cfg1_optimization)
