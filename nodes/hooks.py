"""Hooks: LoRAs and model-as-LoRA differences that apply to some conditionings only, keyframed
over the sampling run, and the conditioning-property nodes that attach them.

Names, display names, categories, inputs and outputs are ComfyUI's
(``comfy_extras/nodes_hooks.py``; all EXPERIMENTAL there), so API prompts that use them run
unchanged. HOOKS values are ``ldm.sampling.weight_hooks.HookGroup`` s, HOOK_KEYFRAMES values
``HookKeyframes``; both are immutable, so no node changes what it received. Sampling honours the
hooks of each conditioning entry (``ldm.sampling.guidance``); the text encoders honour a CLIP's
hooks (SetClipHooks) in every text-encode node.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ldm.loading.checkpoint import load_state_dict
from ldm.model import load_checkpoint
from ldm.sampling import weight_hooks as wh
from nodes.services import model_names, services

log = logging.getLogger(__name__)

_HOOK_STRENGTH = {"default": 1.0, "min": -20.0, "max": 20.0, "step": 0.01}
_PROPS_STRENGTH = {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}
_PERCENT = {"min": 0.0, "max": 1.0, "step": 0.001}
_AREA_CHOICES = ["default", "mask bounds"]


def _props_inputs(*conds: str) -> dict:
    return {"required": {**{name: ("CONDITIONING",) for name in conds},
                         "strength": ("FLOAT", dict(_PROPS_STRENGTH)),
                         "set_cond_area": (list(_AREA_CHOICES),)},
            "optional": {"mask": ("MASK",), "hooks": ("HOOKS",), "timesteps": ("TIMESTEPS_RANGE",)}}


# --------------------------------------------------------------------------- conditioning properties

class PairConditioningSetProperties:
    CATEGORY = "advanced/hooks/cond pair"
    FUNCTION = "set_properties"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    EXPERIMENTAL = True
    DESCRIPTION = "Sets strength (with a mask), mask, hooks and timestep range on a positive/negative pair."

    @classmethod
    def INPUT_TYPES(cls):
        return _props_inputs("positive_NEW", "negative_NEW")

    def set_properties(self, positive_NEW, negative_NEW, strength, set_cond_area, mask=None, hooks=None,
                       timesteps=None):
        return tuple(wh.with_properties(c, strength, set_cond_area, mask, hooks, timesteps)
                     for c in (positive_NEW, negative_NEW))


class PairConditioningSetPropertiesAndCombine:
    CATEGORY = "advanced/hooks/cond pair"
    FUNCTION = "set_properties"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    EXPERIMENTAL = True
    DESCRIPTION = "Sets properties on a new positive/negative pair and appends it to an existing pair."

    @classmethod
    def INPUT_TYPES(cls):
        return _props_inputs("positive", "negative", "positive_NEW", "negative_NEW")

    def set_properties(self, positive, negative, positive_NEW, negative_NEW, strength, set_cond_area, mask=None,
                       hooks=None, timesteps=None):
        return tuple(old + wh.with_properties(new, strength, set_cond_area, mask, hooks, timesteps)
                     for old, new in ((positive, positive_NEW), (negative, negative_NEW)))


class ConditioningSetProperties:
    CATEGORY = "advanced/hooks/cond single"
    FUNCTION = "set_properties"
    RETURN_TYPES = ("CONDITIONING",)
    EXPERIMENTAL = True
    DESCRIPTION = "Sets strength (with a mask), mask, hooks and timestep range on a conditioning."

    @classmethod
    def INPUT_TYPES(cls):
        return _props_inputs("cond_NEW")

    def set_properties(self, cond_NEW, strength, set_cond_area, mask=None, hooks=None, timesteps=None):
        return (wh.with_properties(cond_NEW, strength, set_cond_area, mask, hooks, timesteps),)


class ConditioningSetPropertiesAndCombine:
    CATEGORY = "advanced/hooks/cond single"
    FUNCTION = "set_properties"
    RETURN_TYPES = ("CONDITIONING",)
    EXPERIMENTAL = True
    DESCRIPTION = "Sets properties on a new conditioning and appends it to an existing one."

    @classmethod
    def INPUT_TYPES(cls):
        return _props_inputs("cond", "cond_NEW")

    def set_properties(self, cond, cond_NEW, strength, set_cond_area, mask=None, hooks=None, timesteps=None):
        return (cond + wh.with_properties(cond_NEW, strength, set_cond_area, mask, hooks, timesteps),)


class PairConditioningCombine:
    CATEGORY = "advanced/hooks/cond pair"
    FUNCTION = "combine"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    EXPERIMENTAL = True
    DESCRIPTION = "Appends pair B to pair A."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {name: ("CONDITIONING",)
                             for name in ("positive_A", "negative_A", "positive_B", "negative_B")}}

    def combine(self, positive_A, negative_A, positive_B, negative_B):
        return (positive_A + positive_B, negative_A + negative_B)


class PairConditioningSetDefaultAndCombine:
    CATEGORY = "advanced/hooks/cond pair"
    FUNCTION = "set_default_and_combine"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    EXPERIMENTAL = True
    DESCRIPTION = ("Appends a default pair: at sampling it weighs in only where the other entries of its side "
                   "leave weight (e.g. outside their masks).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {name: ("CONDITIONING",)
                             for name in ("positive", "negative", "positive_DEFAULT", "negative_DEFAULT")},
                "optional": {"hooks": ("HOOKS",)}}

    def set_default_and_combine(self, positive, negative, positive_DEFAULT, negative_DEFAULT, hooks=None):
        return (positive + wh.as_default(positive_DEFAULT, hooks), negative + wh.as_default(negative_DEFAULT, hooks))


class ConditioningSetDefaultAndCombine:
    CATEGORY = "advanced/hooks/cond single"
    FUNCTION = "set_default_and_combine"
    RETURN_TYPES = ("CONDITIONING",)
    EXPERIMENTAL = True
    DESCRIPTION = ("Appends a default conditioning: at sampling it weighs in only where the other entries "
                   "leave weight (e.g. outside their masks).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"cond": ("CONDITIONING",), "cond_DEFAULT": ("CONDITIONING",)},
                "optional": {"hooks": ("HOOKS",)}}

    def set_default_and_combine(self, cond, cond_DEFAULT, hooks=None):
        return (cond + wh.as_default(cond_DEFAULT, hooks),)


class SetClipHooks:
    CATEGORY = "advanced/hooks/clip"
    FUNCTION = "apply_hooks"
    RETURN_TYPES = ("CLIP",)
    EXPERIMENTAL = True
    DESCRIPTION = ("Encodes text with the hooks' LoRAs on the text encoder (per keyframe range when "
                   "schedule_clip is on) and, with apply_to_conds, attaches the hooks to the conditioning.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": ("CLIP",), "apply_to_conds": ("BOOLEAN", {"default": True}),
                             "schedule_clip": ("BOOLEAN", {"default": False})},
                "optional": {"hooks": ("HOOKS",)}}

    def apply_hooks(self, clip, schedule_clip, apply_to_conds, hooks=None):
        if hooks is None:
            return (clip,)
        hooked = clip.clone()
        # ComfyUI keeps hooks attached earlier when apply_to_conds is off.
        previous = clip.weight_hooks.for_conds if clip.weight_hooks is not None else None
        hooked.weight_hooks = wh.ClipWeightHooks.build(clip.encoders, hooks, schedule_clip,
                                                       hooks if apply_to_conds else previous)
        return (hooked,)


# --------------------------------------------------------------------------- creating hooks

def _create_hook_inputs(file_input: str, kind: str, *strengths: str) -> dict:
    """A model file of ``kind``, its strengths, and the group the new hook joins."""
    return {"required": {file_input: (model_names(kind),),
                         **{name: ("FLOAT", dict(_HOOK_STRENGTH)) for name in strengths}},
            "optional": {"prev_hooks": ("HOOKS",)}}


class CreateHookLora:
    CATEGORY = "advanced/hooks/create"
    FUNCTION = "create_hook"
    RETURN_TYPES = ("HOOKS",)
    EXPERIMENTAL = True
    DESCRIPTION = "A hook that adds a LoRA to the model (and text encoder) for the conditionings it is attached to."

    def __init__(self):
        self._cached: tuple | None = None  # (path, tensors) of the last file read

    @classmethod
    def INPUT_TYPES(cls):
        return _create_hook_inputs("lora_name", "loras", "strength_model", "strength_clip")

    def create_hook(self, lora_name, strength_model, strength_clip, prev_hooks=None):
        prev_hooks = prev_hooks if prev_hooks is not None else wh.HookGroup()
        if strength_model == 0 and strength_clip == 0:
            return (prev_hooks,)
        path = services().folders.model_path("loras", lora_name)
        if self._cached is None or self._cached[0] != path:
            self._cached = (path, load_state_dict(path)[0])
        return (prev_hooks.combine(wh.lora_hook(self._cached[1], strength_model, strength_clip)),)


class CreateHookLoraModelOnly(CreateHookLora):
    FUNCTION = "create_hook_model_only"
    DESCRIPTION = "A hook that adds a LoRA to the model for the conditionings it is attached to."

    @classmethod
    def INPUT_TYPES(cls):
        return _create_hook_inputs("lora_name", "loras", "strength_model")

    def create_hook_model_only(self, lora_name, strength_model, prev_hooks=None):
        return self.create_hook(lora_name, strength_model, 0, prev_hooks)


class CreateHookModelAsLora:
    CATEGORY = "advanced/hooks/create"
    FUNCTION = "create_hook"
    RETURN_TYPES = ("HOOKS",)
    EXPERIMENTAL = True
    DESCRIPTION = ("A hook that moves the model's (and text encoder's) weights towards another checkpoint's: "
                   "weight + strength · (other - weight), for the conditionings it is attached to.")

    def __init__(self):
        self._cached: tuple | None = None  # (path, UNet weights, text-encoder weights or None)

    @classmethod
    def INPUT_TYPES(cls):
        return _create_hook_inputs("ckpt_name", "checkpoints", "strength_model", "strength_clip")

    def _weights(self, ckpt_name: str) -> tuple:
        folders = services().folders
        path = folders.model_path("checkpoints", ckpt_name)
        if self._cached is None or self._cached[0] != path:
            model, clip, _ = load_checkpoint(path, compute=services().engine.compute,
                                             embedding_dirs=tuple(folders.models.get("embeddings", ())))
            self._cached = (path, model.unet.state_dict(), clip.encoders.state_dict() if clip is not None else None)
        return self._cached[1], self._cached[2]

    def create_hook(self, ckpt_name, strength_model, strength_clip, prev_hooks=None):
        prev_hooks = prev_hooks if prev_hooks is not None else wh.HookGroup()
        unet_weights, clip_weights = self._weights(ckpt_name)
        return (prev_hooks.combine(wh.model_as_lora_hook(unet_weights, clip_weights, strength_model, strength_clip)),)


class CreateHookModelAsLoraModelOnly(CreateHookModelAsLora):
    FUNCTION = "create_hook_model_only"
    DESCRIPTION = ("A hook that moves the model's weights towards another checkpoint's, for the conditionings "
                   "it is attached to.")

    @classmethod
    def INPUT_TYPES(cls):
        return _create_hook_inputs("ckpt_name", "checkpoints", "strength_model")

    def create_hook_model_only(self, ckpt_name, strength_model, prev_hooks=None):
        return self.create_hook(ckpt_name, strength_model, 0.0, prev_hooks)


# --------------------------------------------------------------------------- scheduling

class SetHookKeyframes:
    CATEGORY = "advanced/hooks/scheduling"
    FUNCTION = "set_hook_keyframes"
    RETURN_TYPES = ("HOOKS",)
    EXPERIMENTAL = True
    DESCRIPTION = "Gives every hook of the group these keyframes (strength multipliers over the sampling run)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"hooks": ("HOOKS",)}, "optional": {"hook_kf": ("HOOK_KEYFRAMES",)}}

    def set_hook_keyframes(self, hooks, hook_kf=None):
        return (hooks.with_keyframes(hook_kf) if hook_kf is not None else hooks,)


class CreateHookKeyframe:
    CATEGORY = "advanced/hooks/scheduling"
    FUNCTION = "create_hook_keyframe"
    RETURN_TYPES = ("HOOK_KEYFRAMES",)
    RETURN_NAMES = ("HOOK_KF",)
    EXPERIMENTAL = True
    DESCRIPTION = ("A keyframe: from start_percent of the sampling run on, hook strengths are multiplied by "
                   "strength_mult.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"strength_mult": ("FLOAT", dict(_HOOK_STRENGTH)),
                             "start_percent": ("FLOAT", {"default": 0.0, **_PERCENT})},
                "optional": {"prev_hook_kf": ("HOOK_KEYFRAMES",)}}

    def create_hook_keyframe(self, strength_mult, start_percent, prev_hook_kf=None):
        previous = prev_hook_kf if prev_hook_kf is not None else wh.HookKeyframes()
        return (previous.add(wh.HookKeyframe(strength_mult, float(start_percent))),)


def _log_keyframes(strengths: list[float], start_percent: float, end_percent: float) -> None:
    percents = wh.interpolated(start_percent, end_percent, len(strengths), "linear")
    for percent, strength in zip(percents, strengths):
        log.info("Hook Keyframe - start_percent:%s = %s", percent, strength)


class CreateHookKeyframesInterpolated:
    CATEGORY = "advanced/hooks/scheduling"
    FUNCTION = "create_hook_keyframes"
    RETURN_TYPES = ("HOOK_KEYFRAMES",)
    RETURN_NAMES = ("HOOK_KF",)
    EXPERIMENTAL = True
    DESCRIPTION = ("keyframes_count keyframes evenly spaced from start_percent to end_percent, their strengths "
                   "interpolated from strength_start to strength_end.")

    @classmethod
    def INPUT_TYPES(cls):
        strength = {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.001}
        return {"required": {"strength_start": ("FLOAT", dict(strength)),
                             "strength_end": ("FLOAT", dict(strength)),
                             "interpolation": (list(wh.INTERPOLATIONS),),
                             "start_percent": ("FLOAT", {"default": 0.0, **_PERCENT}),
                             "end_percent": ("FLOAT", {"default": 1.0, **_PERCENT}),
                             "keyframes_count": ("INT", {"default": 5, "min": 2, "max": 100, "step": 1}),
                             "print_keyframes": ("BOOLEAN", {"default": False})},
                "optional": {"prev_hook_kf": ("HOOK_KEYFRAMES",)}}

    def create_hook_keyframes(self, strength_start, strength_end, interpolation, start_percent, end_percent,
                              keyframes_count, print_keyframes=False, prev_hook_kf=None):
        strengths = wh.interpolated(strength_start, strength_end, keyframes_count, interpolation)
        out = wh.keyframes_over_range(prev_hook_kf, strengths, start_percent, end_percent)
        if print_keyframes:
            _log_keyframes(strengths, start_percent, end_percent)
        return (out,)


class CreateHookKeyframesFromFloats:
    CATEGORY = "advanced/hooks/scheduling"
    FUNCTION = "create_hook_keyframes"
    RETURN_TYPES = ("HOOK_KEYFRAMES",)
    RETURN_NAMES = ("HOOK_KF",)
    EXPERIMENTAL = True
    DESCRIPTION = "One keyframe per strength of a FLOATS list, evenly spaced from start_percent to end_percent."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"floats_strength": ("FLOATS", {"default": -1, "min": -1, "step": 0.001,
                                                             "forceInput": True}),
                             "start_percent": ("FLOAT", {"default": 0.0, **_PERCENT}),
                             "end_percent": ("FLOAT", {"default": 1.0, **_PERCENT}),
                             "print_keyframes": ("BOOLEAN", {"default": False})},
                "optional": {"prev_hook_kf": ("HOOK_KEYFRAMES",)}}

    def create_hook_keyframes(self, floats_strength, start_percent, end_percent, prev_hook_kf=None,
                              print_keyframes=False):
        if isinstance(floats_strength, (int, float)):
            floats_strength = [float(floats_strength)]
        elif not isinstance(floats_strength, Iterable):
            raise TypeError("floats_strength must be a float or a list of floats, "
                            f"not {type(floats_strength).__name__}")
        strengths = [float(s) for s in floats_strength]
        out = wh.keyframes_over_range(prev_hook_kf, strengths, start_percent, end_percent)
        if print_keyframes:
            _log_keyframes(strengths, start_percent, end_percent)
        return (out,)


# --------------------------------------------------------------------------- combining

def _combine_inputs(letters: str) -> dict:
    return {"required": {}, "optional": {f"hooks_{letter}": ("HOOKS",) for letter in letters}}


class CombineHooks:
    CATEGORY = "advanced/hooks/combine"
    FUNCTION = "combine_hooks"
    RETURN_TYPES = ("HOOKS",)
    EXPERIMENTAL = True
    DESCRIPTION = "The hooks of every connected group (nothing when none is connected)."

    @classmethod
    def INPUT_TYPES(cls):
        return _combine_inputs("AB")

    def combine_hooks(self, hooks_A=None, hooks_B=None):
        return (wh.combine_all([hooks_A, hooks_B]),)


class CombineHooksFour(CombineHooks):
    @classmethod
    def INPUT_TYPES(cls):
        return _combine_inputs("ABCD")

    def combine_hooks(self, hooks_A=None, hooks_B=None, hooks_C=None, hooks_D=None):
        return (wh.combine_all([hooks_A, hooks_B, hooks_C, hooks_D]),)


class CombineHooksEight(CombineHooks):
    @classmethod
    def INPUT_TYPES(cls):
        return _combine_inputs("ABCDEFGH")

    def combine_hooks(self, hooks_A=None, hooks_B=None, hooks_C=None, hooks_D=None, hooks_E=None, hooks_F=None,
                      hooks_G=None, hooks_H=None):
        return (wh.combine_all([hooks_A, hooks_B, hooks_C, hooks_D, hooks_E, hooks_F, hooks_G, hooks_H]),)


NODE_CLASS_MAPPINGS = {
    "CreateHookLora": CreateHookLora,
    "CreateHookLoraModelOnly": CreateHookLoraModelOnly,
    "CreateHookModelAsLora": CreateHookModelAsLora,
    "CreateHookModelAsLoraModelOnly": CreateHookModelAsLoraModelOnly,
    "SetHookKeyframes": SetHookKeyframes,
    "CreateHookKeyframe": CreateHookKeyframe,
    "CreateHookKeyframesInterpolated": CreateHookKeyframesInterpolated,
    "CreateHookKeyframesFromFloats": CreateHookKeyframesFromFloats,
    "CombineHooks2": CombineHooks,
    "CombineHooks4": CombineHooksFour,
    "CombineHooks8": CombineHooksEight,
    "ConditioningSetProperties": ConditioningSetProperties,
    "ConditioningSetPropertiesAndCombine": ConditioningSetPropertiesAndCombine,
    "PairConditioningSetProperties": PairConditioningSetProperties,
    "PairConditioningSetPropertiesAndCombine": PairConditioningSetPropertiesAndCombine,
    "ConditioningSetDefaultCombine": ConditioningSetDefaultAndCombine,
    "PairConditioningSetDefaultCombine": PairConditioningSetDefaultAndCombine,
    "PairConditioningCombine": PairConditioningCombine,
    "SetClipHooks": SetClipHooks,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "CreateHookLora": "Create Hook LoRA",
    "CreateHookLoraModelOnly": "Create Hook LoRA (MO)",
    "CreateHookModelAsLora": "Create Hook Model as LoRA",
    "CreateHookModelAsLoraModelOnly": "Create Hook Model as LoRA (MO)",
    "SetHookKeyframes": "Set Hook Keyframes",
    "CreateHookKeyframe": "Create Hook Keyframe",
    "CreateHookKeyframesInterpolated": "Create Hook Keyframes Interp.",
    "CreateHookKeyframesFromFloats": "Create Hook Keyframes From Floats",
    "CombineHooks2": "Combine Hooks [2]",
    "CombineHooks4": "Combine Hooks [4]",
    "CombineHooks8": "Combine Hooks [8]",
    "ConditioningSetProperties": "Cond Set Props",
    "ConditioningSetPropertiesAndCombine": "Cond Set Props Combine",
    "PairConditioningSetProperties": "Cond Pair Set Props",
    "PairConditioningSetPropertiesAndCombine": "Cond Pair Set Props Combine",
    "ConditioningSetDefaultCombine": "Cond Set Default Combine",
    "PairConditioningSetDefaultCombine": "Cond Pair Set Default Combine",
    "PairConditioningCombine": "Cond Pair Combine",
    "SetClipHooks": "Set CLIP Hooks",
}
