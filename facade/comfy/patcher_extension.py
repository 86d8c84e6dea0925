"""``comfy.patcher_extension``: ComfyUI's wrapper and callback registries, in ``transformer_options``.

The dict shape is ComfyUI's: ``transformer_options["wrappers"][wrapper_type][key] = [fn, …]``
(and ``"callbacks"`` alike); with ``is_model_options=True`` the functions reach into
``model_options["transformer_options"]``, which for a Weft MODEL is the live view of its hooks.
Weft's UNet runs ``diffusion_model`` wrappers (``fn(executor, x, timesteps, context, y, control,
transformer_options)``, see :mod:`ldm.networks.unet_patches`); its guiders run a MODEL's ``predict_noise``
wrappers (``fn(executor, x, sigma, model_options, seed)``), which live in the typed
``SamplingHooks.predict_noise_wrappers``, so they are registered through a MODEL's
``model_options`` (``is_model_options=True``). The sampler has no other wrapper points and the
engine calls no callbacks, so registering any other wrapper type, a ``predict_noise`` wrapper in a
plain dict, or any callback, raises ``NotImplementedError`` naming it rather than being silently
ignored. Reading, removing, copying and merging the dicts work for every type. A Weft MODEL has the
same methods (``add_wrapper_with_key``, ``remove_wrappers_with_key``, ``get_wrappers``,
``add_callback_with_key`` …).
"""

from __future__ import annotations

from typing import Any, Callable

from comfy._kinds import KindMeta
from ldm.model_patching import (DIFFUSION_MODEL_WRAPPER, PREDICT_NOISE_WRAPPER, add_hooks_wrapper, hooks_wrappers,
                                unsupported_callback, unsupported_wrapper)
from ldm.networks.unet_patches import WrapperChain
from ldm.sampling.hooks import ModelOptionsView

__all__ = ["CallbacksMP", "PatcherInjection", "WrapperExecutor", "WrappersMP", "add_callback",
           "add_callback_with_key", "add_wrapper", "add_wrapper_with_key", "copy_nested_dicts",
           "get_all_callbacks", "get_all_wrappers", "get_callbacks_with_key", "get_wrappers_with_key",
           "merge_nested_dicts"]


class CallbacksMP:
    """ComfyUI's callback names (none is called by Weft)."""

    ON_CLONE = "on_clone"
    ON_LOAD = "on_load_after"
    ON_DETACH = "on_detach_after"
    ON_CLEANUP = "on_cleanup"
    ON_PRE_RUN = "on_pre_run"
    ON_PREPARE_STATE = "on_prepare_state"
    ON_APPLY_HOOKS = "on_apply_hooks"
    ON_REGISTER_ALL_HOOK_PATCHES = "on_register_all_hook_patches"
    ON_INJECT_MODEL = "on_inject_model"
    ON_EJECT_MODEL = "on_eject_model"

    @classmethod
    def init_callbacks(cls) -> dict[str, dict[str, list[Callable]]]:
        return {}


class WrappersMP:
    """ComfyUI's wrapper types; Weft runs ``DIFFUSION_MODEL`` and ``PREDICT_NOISE``."""

    OUTER_SAMPLE = "outer_sample"
    PREPARE_SAMPLING = "prepare_sampling"
    SAMPLER_SAMPLE = "sampler_sample"
    PREDICT_NOISE = PREDICT_NOISE_WRAPPER
    CALC_COND_BATCH = "calc_cond_batch"
    APPLY_MODEL = "apply_model"
    DIFFUSION_MODEL = DIFFUSION_MODEL_WRAPPER

    @classmethod
    def init_wrappers(cls) -> dict[str, dict[str, list[Callable]]]:
        return {}


def _options(transformer_options: Any, is_model_options: bool, create: bool) -> Any:
    if not is_model_options:
        return transformer_options
    if create:
        return transformer_options.setdefault("transformer_options", {})
    return transformer_options.get("transformer_options", {})


def _model_hooks(options: Any, is_model_options: bool) -> Any:
    """The hooks behind a MODEL's ``model_options`` view; None for a plain dict."""
    return options.hooks if is_model_options and isinstance(options, ModelOptionsView) else None


def _lists_by_key(transformer_options: Any, registry: str, kind: str, is_model_options: bool) -> dict:
    hooks = _model_hooks(transformer_options, is_model_options)
    if registry == "wrappers" and hooks is not None:
        return hooks_wrappers(hooks, kind)
    return _options(transformer_options, is_model_options, create=False).get(registry, {}).get(kind, {})


def add_wrapper(wrapper_type: str, wrapper: Callable, transformer_options: dict, is_model_options=False) -> None:
    add_wrapper_with_key(wrapper_type, None, wrapper, transformer_options, is_model_options)


def add_wrapper_with_key(wrapper_type: str, key: str | None, wrapper: Callable, transformer_options: dict,
                         is_model_options=False) -> None:
    hooks = _model_hooks(transformer_options, is_model_options)
    if hooks is not None:
        add_hooks_wrapper(hooks, wrapper_type, key, wrapper)
        return
    if wrapper_type != DIFFUSION_MODEL_WRAPPER:
        raise unsupported_wrapper(wrapper_type)
    options = _options(transformer_options, is_model_options, create=True)
    options.setdefault("wrappers", {}).setdefault(wrapper_type, {}).setdefault(key, []).append(wrapper)


def get_wrappers_with_key(wrapper_type: str, key: str | None, transformer_options: dict,
                          is_model_options=False) -> list[Callable]:
    return list(_lists_by_key(transformer_options, "wrappers", wrapper_type, is_model_options).get(key, []))


def get_all_wrappers(wrapper_type: str, transformer_options: dict, is_model_options=False) -> list[Callable]:
    by_key = _lists_by_key(transformer_options, "wrappers", wrapper_type, is_model_options)
    return [wrapper for wrappers in by_key.values() for wrapper in wrappers]


def add_callback(call_type: str, callback: Callable, transformer_options: dict, is_model_options=False) -> None:
    add_callback_with_key(call_type, None, callback, transformer_options, is_model_options)


def add_callback_with_key(call_type: str, key: str | None, callback: Callable, transformer_options: dict,
                          is_model_options=False) -> None:
    raise unsupported_callback(call_type)


def get_callbacks_with_key(call_type: str, key: str | None, transformer_options: dict,
                           is_model_options=False) -> list[Callable]:
    return list(_lists_by_key(transformer_options, "callbacks", call_type, is_model_options).get(key, []))


def get_all_callbacks(call_type: str, transformer_options: dict, is_model_options=False) -> list[Callable]:
    by_key = _lists_by_key(transformer_options, "callbacks", call_type, is_model_options)
    return [callback for callbacks in by_key.values() for callback in callbacks]


class WrapperExecutor(WrapperChain, metaclass=KindMeta):
    """ComfyUI's wrapper call stack: ``executor(*args)`` runs the next wrapper, or ``original``
    after the last one; ``class_obj`` is the object the wrapped method belongs to. The executors
    Weft's UNet hands its ``diffusion_model`` wrappers are instances too."""

    __weft_is__ = staticmethod(lambda obj: isinstance(obj, WrapperChain))

    def __init__(self, original: Callable, class_obj: Any, wrappers: list[Callable], idx: int) -> None:
        super().__init__(original, class_obj, list(wrappers), idx)

    @property
    def is_last(self) -> bool:
        return self.idx == len(self.wrappers)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._create_next_executor().execute(*args, **kwargs)

    def _create_next_executor(self) -> "WrapperExecutor":
        if self.idx + 1 > len(self.wrappers):
            raise IndexError("wrapper executor called past its last wrapper")
        return type(self)(self.original, self.class_obj, self.wrappers, self.idx + 1)

    @classmethod
    def new_executor(cls, original: Callable, wrappers: list[Callable], idx: int = 0) -> "WrapperExecutor":
        return cls(original, None, wrappers, idx)

    @classmethod
    def new_class_executor(cls, original: Callable, class_obj: Any, wrappers: list[Callable],
                           idx: int = 0) -> "WrapperExecutor":
        return cls(original, class_obj, wrappers, idx)


class PatcherInjection:
    """A pair of functions ComfyUI calls when a model is loaded / unloaded (``set_injections``);
    Weft's MODEL has no injection points, so this only carries them."""

    def __init__(self, inject: Callable, eject: Callable) -> None:
        self.inject = inject
        self.eject = eject


def copy_nested_dicts(input_dict: dict) -> dict:
    """A copy whose nested dicts and lists are copies too (their items are shared)."""
    out = dict(input_dict)
    for key, value in input_dict.items():
        if isinstance(value, dict):
            out[key] = copy_nested_dicts(value)
        elif isinstance(value, list):
            out[key] = list(value)
    return out


def merge_nested_dicts(dict1: dict, dict2: dict, copy_dict1: bool = True) -> dict:
    """``dict1`` (copied unless told not to) with ``dict2`` merged in: nested dicts merge recursively
    (as in ComfyUI, a nested merge starts from ``dict2``'s side), lists are concatenated, other
    values from ``dict2`` win."""
    merged = copy_nested_dicts(dict1) if copy_dict1 else dict1
    for key, value in dict2.items():
        if isinstance(value, dict):
            merged[key] = merge_nested_dicts(value, merged.setdefault(key, {}))
        elif isinstance(value, list):
            merged.setdefault(key, []).extend(value)
        else:
            merged[key] = value
    return merged
