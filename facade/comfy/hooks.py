"""``comfy.hooks``: ComfyUI's conditioning hooks — not in Weft.

Hooks attach LoRAs, weight and object patches to conditioning, scheduled by keyframes; Weft's
sampler has no such mechanism. Packs (AnimateDiff-Evolved, Advanced-ControlNet) import these names
at module level, so they exist: the enums and ``InterpolationMethod``'s constants are ComfyUI's
values; the classes are real and subclassable and raise :class:`_weft_absent.NotInWeftError` when
constructed; the functions raise when called. Packs may set attributes on this module (as they do
under ComfyUI).
"""

from __future__ import annotations

import enum

from _weft_absent import HOOKS, absent_class, absent_function


class EnumHookMode(enum.Enum):
    MinVram = "minvram"
    MaxSpeed = "maxspeed"


class EnumHookType(enum.Enum):
    Weight = "weight"
    ObjectPatch = "object_patch"
    AdditionalModels = "add_models"
    TransformerOptions = "transformer_options"
    Injections = "add_injections"


class EnumWeightTarget(enum.Enum):
    Model = "model"
    Clip = "clip"


class EnumHookScope(enum.Enum):
    AllConditioning = "all_conditioning"
    HookedOnly = "hooked_only"


class InterpolationMethod:
    """Keyframe interpolation names; ``get_weights`` belongs to the hook machinery and raises."""

    LINEAR = "linear"
    EASE_IN = "ease_in"
    EASE_OUT = "ease_out"
    EASE_IN_OUT = "ease_in_out"
    _LIST = [LINEAR, EASE_IN, EASE_OUT, EASE_IN_OUT]

    get_weights = staticmethod(absent_function(HOOKS, __name__, "InterpolationMethod.get_weights"))


def _absent(name: str, base: type = object) -> type:
    return absent_class(HOOKS, __name__, name, (base,))


Hook = _absent("Hook")
WeightHook = _absent("WeightHook", Hook)
ObjectPatchHook = _absent("ObjectPatchHook", Hook)
AdditionalModelsHook = _absent("AdditionalModelsHook", Hook)
TransformerOptionsHook = _absent("TransformerOptionsHook", Hook)
WrapperHook = TransformerOptionsHook
InjectionsHook = _absent("InjectionsHook", Hook)
HookGroup = _absent("HookGroup")
HookKeyframe = _absent("HookKeyframe")
HookKeyframeGroup = _absent("HookKeyframeGroup")


def _function(name: str):
    return absent_function(HOOKS, __name__, name)


default_should_register = _function("default_should_register")
create_target_dict = _function("create_target_dict")
get_sorted_list_via_attr = _function("get_sorted_list_via_attr")
create_transformer_options_from_hooks = _function("create_transformer_options_from_hooks")
create_hook_lora = _function("create_hook_lora")
create_hook_model_as_lora = _function("create_hook_model_as_lora")
get_patch_weights_from_model = _function("get_patch_weights_from_model")
load_hook_lora_for_models = _function("load_hook_lora_for_models")
conditioning_set_values_with_hooks = _function("conditioning_set_values_with_hooks")
set_hooks_for_conditioning = _function("set_hooks_for_conditioning")
set_timesteps_for_conditioning = _function("set_timesteps_for_conditioning")
set_mask_for_conditioning = _function("set_mask_for_conditioning")
combine_conditioning = _function("combine_conditioning")
combine_with_new_conds = _function("combine_with_new_conds")
set_conds_props = _function("set_conds_props")
set_conds_props_and_combine = _function("set_conds_props_and_combine")
set_default_conds_and_combine = _function("set_default_conds_and_combine")
