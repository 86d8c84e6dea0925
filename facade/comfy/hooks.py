"""``comfy.hooks``: ComfyUI's conditioning hooks, translated onto Weft's weight hooks
(:mod:`ldm.sampling.weight_hooks`, the HOOKS values of Weft's hook nodes).

Packs build hooks with ComfyUI's mutable objects and edit them in place (``group.add(hook)``,
``hooks.set_keyframes_on_hooks(kf)``, ``hook.hook_keyframe = kf``), so :class:`HookGroup`,
:class:`WeightHook`, :class:`HookKeyframe` and :class:`HookKeyframeGroup` here are ComfyUI-shaped
builders. A group becomes Weft's immutable ``HookGroup`` where it enters a conditioning
(``set_hooks_for_conditioning``, ``conditioning_set_values_with_hooks``, ``set_conds_props*``,
``set_default_conds_and_combine``), which is what Weft's sampler reads; those functions also take
Weft's own HOOKS values (a pack node fed by Weft's Create Hook nodes).

Weight hooks are backed: a LoRA file's tensors (``create_hook_lora``) or a model's weights
(``create_hook_model_as_lora``: ComfyUI's ``("model_as_lora", (tensor,))`` patches), with keyframes.
Not backed, and so placeholders that raise :class:`_weft_absent.NotInWeftError`: the other hook
kinds (object patches, additional models, transformer options, injections), and registering hook
patches on a MODEL or CLIP (``load_hook_lora_for_models``, ``create_transformer_options_from_hooks``)
— Weft applies a weight hook only from the conditioning it is set on. Packs may set attributes on
this module (as they do under ComfyUI).
"""

from __future__ import annotations

import enum
from typing import Any, Callable

import torch

from _weft_absent import Feature, absent_class, absent_function
from ldm.model_patching import DIFFUSION_PREFIX
from ldm.sampling import weight_hooks as wh
from ldm.text.handle import weft_clip_key

OTHER_HOOKS = Feature("hooks other than weight hooks (object patches, additional models, transformer options, "
                      "injections) and hook patches registered on a MODEL or CLIP (Weft applies weight hooks "
                      "from the conditioning they are set on)", planned=False)
PRELOADED_PATCHES = Feature("weight hooks holding already-loaded patches (Weft's hold a LoRA file's tensors, "
                            "create_hook_lora, or a model's weights, create_hook_model_as_lora)", planned=False)


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


class _HookRef:
    """What clones of one hook share: Weft counts hooks of one ref as one hook in a group."""


def default_should_register(hook, model, model_options, target_dict, registered) -> bool:
    return True


def create_target_dict(target: EnumWeightTarget | None = None, **kwargs: Any) -> dict:
    return ({"target": target} if target is not None else {}) | kwargs


def get_sorted_list_via_attr(objects: list, attr: str) -> list:
    """``objects`` ordered by ``attr``, equal values in their original order (a stable sort)."""
    if not objects:
        return objects
    return sorted(objects, key=lambda item: getattr(item, attr))


class InterpolationMethod:
    LINEAR = "linear"
    EASE_IN = "ease_in"
    EASE_OUT = "ease_out"
    EASE_IN_OUT = "ease_in_out"
    _LIST = [LINEAR, EASE_IN, EASE_OUT, EASE_IN_OUT]

    @classmethod
    def get_weights(cls, num_from: float, num_to: float, length: int, method: str, reverse: bool = False):
        """``length`` float32 weights from ``num_from`` to ``num_to`` along ``method`` (a tensor)."""
        weights = torch.tensor(wh.interpolated(num_from, num_to, length, method), dtype=torch.float32)
        return weights.flip(dims=(0,)) if reverse else weights


# --------------------------------------------------------------------------- keyframes

class HookKeyframe:
    def __init__(self, strength: float, start_percent: float = 0.0, guarantee_steps: int = 1):
        self.strength = strength
        self.start_percent = float(start_percent)
        self.guarantee_steps = guarantee_steps

    def clone(self) -> "HookKeyframe":
        return HookKeyframe(self.strength, self.start_percent, self.guarantee_steps)


class HookKeyframeGroup:
    def __init__(self):
        self.keyframes: list[HookKeyframe] = []

    @property
    def strength(self) -> float:
        """The strength before sampling moves on: the first keyframe's (1.0 without keyframes)."""
        return self.keyframes[0].strength if self.keyframes else 1.0

    def add(self, keyframe: HookKeyframe) -> None:
        self.keyframes = get_sorted_list_via_attr(self.keyframes + [keyframe], "start_percent")

    def has_guarantee_steps(self) -> bool:
        return any(keyframe.guarantee_steps > 0 for keyframe in self.keyframes)

    def has_index(self, index: int) -> bool:
        return 0 <= index < len(self.keyframes)

    def is_empty(self) -> bool:
        return not self.keyframes

    def clone(self) -> "HookKeyframeGroup":
        twin = HookKeyframeGroup()
        twin.keyframes = [keyframe.clone() for keyframe in self.keyframes]
        return twin

    def as_weft(self) -> wh.HookKeyframes:
        return wh.HookKeyframes(tuple(wh.HookKeyframe(float(k.strength), k.start_percent, int(k.guarantee_steps))
                                      for k in self.keyframes))


# --------------------------------------------------------------------------- hooks

class Hook:
    def __init__(self, hook_type: EnumHookType | None = None, hook_ref: Any = None, hook_id: str | None = None,
                 hook_keyframe: HookKeyframeGroup | None = None,
                 hook_scope: EnumHookScope = EnumHookScope.AllConditioning):
        self.hook_type = hook_type
        self.hook_ref = hook_ref if hook_ref else _HookRef()
        self.hook_id = hook_id
        self.hook_keyframe = hook_keyframe if hook_keyframe else HookKeyframeGroup()
        self.hook_scope = hook_scope
        self.custom_should_register: Callable[..., bool] = default_should_register

    @property
    def strength(self) -> float:
        return self.hook_keyframe.strength

    def clone(self) -> "Hook":
        twin = self.__class__()
        twin.hook_type, twin.hook_ref, twin.hook_id = self.hook_type, self.hook_ref, self.hook_id
        twin.hook_keyframe, twin.hook_scope = self.hook_keyframe, self.hook_scope
        twin.custom_should_register = self.custom_should_register
        return twin

    def __eq__(self, other: object) -> bool:
        return self.__class__ == other.__class__ and self.hook_ref == other.hook_ref

    def __hash__(self) -> int:
        return hash(self.hook_ref)


def _model_as_lora_weights(patches: dict | None, to_weft_key: Callable[[str], str],
                           where: str) -> dict[str, torch.Tensor] | None:
    """ComfyUI's ``{key: ("model_as_lora", (tensor,))}`` as Weft's ``{weft key: tensor}``."""
    if patches is None:
        return None
    out = {}
    for key, patch in patches.items():
        if not (isinstance(patch, tuple) and patch and patch[0] == "model_as_lora"):
            raise PRELOADED_PATCHES.error(f"{where} (patch {key!r})")
        out[to_weft_key(key)] = patch[1][0]
    return out


class WeightHook(Hook):
    """A LoRA (``weights`` is the file's tensors, ``need_weight_init`` True) or a model-as-LoRA
    difference (``weights`` / ``weights_clip`` of ``("model_as_lora", (tensor,))`` patches)."""

    def __init__(self, strength_model: float = 1.0, strength_clip: float = 1.0):
        super().__init__(hook_type=EnumHookType.Weight, hook_scope=EnumHookScope.HookedOnly)
        self.weights: dict | None = None
        self.weights_clip: dict | None = None
        self.need_weight_init = True
        self._strength_model = strength_model
        self._strength_clip = strength_clip

    @property
    def strength_model(self) -> float:
        return self._strength_model * self.strength

    @property
    def strength_clip(self) -> float:
        return self._strength_clip * self.strength

    def clone(self) -> "WeightHook":
        twin = super().clone()
        twin.weights, twin.weights_clip, twin.need_weight_init = self.weights, self.weights_clip, self.need_weight_init
        twin._strength_model, twin._strength_clip = self._strength_model, self._strength_clip
        return twin

    def as_weft(self) -> wh.WeightHook:
        common = dict(strength_model=float(self._strength_model), strength_clip=float(self._strength_clip),
                      keyframes=self.hook_keyframe.as_weft(), ref=self.hook_ref)
        if self.need_weight_init:
            return wh.WeightHook(lora=self.weights, **common)
        where = f"{__name__}.WeightHook"
        return wh.WeightHook(
            unet_weights=_model_as_lora_weights(self.weights, lambda key: key.removeprefix(DIFFUSION_PREFIX), where),
            clip_weights=_model_as_lora_weights(self.weights_clip, weft_clip_key, where), **common)


def _absent_hook(name: str) -> type:
    return absent_class(OTHER_HOOKS, __name__, name, (Hook,))


ObjectPatchHook = _absent_hook("ObjectPatchHook")
AdditionalModelsHook = _absent_hook("AdditionalModelsHook")
TransformerOptionsHook = _absent_hook("TransformerOptionsHook")
WrapperHook = TransformerOptionsHook
InjectionsHook = _absent_hook("InjectionsHook")


class HookGroup:
    def __init__(self):
        self.hooks: list[Hook] = []

    def __len__(self) -> int:
        return len(self.hooks)

    def add(self, hook: Hook) -> None:
        if hook not in self.hooks:
            self.hooks.append(hook)

    def remove(self, hook: Hook) -> None:
        if hook in self.hooks:
            self.hooks.remove(hook)

    def get_type(self, hook_type: EnumHookType) -> list[Hook]:
        return [hook for hook in self.hooks if hook.hook_type == hook_type]

    def contains(self, hook: Hook) -> bool:
        return hook in self.hooks

    def is_subset_of(self, other: "HookGroup") -> bool:
        return set(self.hooks) <= set(other.hooks)

    def new_with_common_hooks(self, other: "HookGroup") -> "HookGroup":
        out = HookGroup()
        for hook in self.hooks:
            if other.contains(hook):
                out.add(hook.clone())
        return out

    def clone(self) -> "HookGroup":
        out = HookGroup()
        for hook in self.hooks:
            out.add(hook.clone())
        return out

    def clone_and_combine(self, other: "HookGroup | None") -> "HookGroup":
        out = self.clone()
        for hook in other.hooks if other is not None else ():
            out.add(hook.clone())
        return out

    def set_keyframes_on_hooks(self, hook_kf: HookKeyframeGroup | None) -> None:
        hook_kf = hook_kf.clone() if hook_kf is not None else HookKeyframeGroup()
        for hook in self.hooks:
            hook.hook_keyframe = hook_kf

    @staticmethod
    def combine_all_hooks(hooks_list: list["HookGroup | None"], require_count: int = 0) -> "HookGroup | None":
        present = [group for group in hooks_list if group is not None]
        if len(present) < require_count:
            raise ValueError(f"need at least {require_count} hook groups to combine, got {len(present)}")
        if len(present) <= 1:
            return present[0] if present else None
        out = present[0].clone()
        for group in present[1:]:
            out = out.clone_and_combine(group)
        return out

    def as_weft(self) -> wh.HookGroup:
        """Weft's HOOKS value of these hooks (only weight hooks exist in Weft)."""
        out = wh.HookGroup()
        for hook in self.hooks:
            if not isinstance(hook, WeightHook):
                raise OTHER_HOOKS.error(f"{__name__}.{type(hook).__name__}")
            out = out.add(hook.as_weft())
        return out


def _weft_hooks(hooks: HookGroup | wh.HookGroup | None) -> wh.HookGroup | None:
    """A HOOKS value as Weft's: a pack's group translated, Weft's own as it is."""
    return hooks.as_weft() if isinstance(hooks, HookGroup) else hooks


# --------------------------------------------------------------------------- creating hooks

def create_hook_lora(lora: dict[str, torch.Tensor], strength_model: float, strength_clip: float) -> HookGroup:
    group = HookGroup()
    hook = WeightHook(strength_model=strength_model, strength_clip=strength_clip)
    hook.weights = lora
    group.add(hook)
    return group


def create_hook_model_as_lora(weights_model, weights_clip, strength_model: float, strength_clip: float) -> HookGroup:
    """``weights_model`` / ``weights_clip``: state dicts by ComfyUI key (``diffusion_model.…``,
    ``clip_l.transformer.…``), as ``get_patch_weights_from_model`` gives them."""
    group = HookGroup()
    hook = WeightHook(strength_model=strength_model, strength_clip=strength_clip)
    group.add(hook)
    if weights_model is not None:
        hook.weights = {key: ("model_as_lora", (value,)) for key, value in weights_model.items()}
    if weights_clip is not None:
        hook.weights_clip = {key: ("model_as_lora", (value,)) for key, value in weights_clip.items()}
    hook.need_weight_init = False
    return group


def get_patch_weights_from_model(model, discard_model_sampling: bool = True) -> dict[str, torch.Tensor] | None:
    """A MODEL's weights by ComfyUI key (``diffusion_model.…``). Weft's state holds only the UNet,
    so there are no ``model_sampling`` entries to discard."""
    if model is None:
        return None
    return model.model_state_dict()


create_transformer_options_from_hooks = absent_function(OTHER_HOOKS, __name__, "create_transformer_options_from_hooks")
load_hook_lora_for_models = absent_function(OTHER_HOOKS, __name__, "load_hook_lora_for_models")


# --------------------------------------------------------------------------- conditioning

def conditioning_set_values_with_hooks(conditioning, values: dict | None = None, append_hooks: bool = True,
                                       cache: dict | None = None) -> list:
    """Each entry with ``values`` set; with ``append_hooks``, ``values["hooks"]`` added to the
    entry's own hooks. ``cache`` is ComfyUI's way to share combined groups between entries; Weft's
    groups are values (equal when made of the same hooks), so there is nothing to share."""
    values = dict(values or {})
    if "hooks" in values:
        values["hooks"] = _weft_hooks(values["hooks"])
        if append_hooks:
            conditioning = wh.with_hooks(conditioning, values.pop("hooks"))
    return wh.with_values(conditioning, values)


def set_hooks_for_conditioning(cond, hooks, append_hooks: bool = True, cache: dict | None = None) -> list:
    if hooks is None:
        return cond
    return conditioning_set_values_with_hooks(cond, {"hooks": hooks}, append_hooks=append_hooks)


def set_timesteps_for_conditioning(cond, timestep_range: tuple[float, float] | None) -> list:
    if timestep_range is None:
        return cond
    return wh.with_values(cond, {"start_percent": timestep_range[0], "end_percent": timestep_range[1]})


def set_mask_for_conditioning(cond, mask: torch.Tensor | None, set_cond_area: str, strength: float) -> list:
    if mask is None:
        return cond
    return wh.with_properties(cond, strength, set_cond_area, mask=mask)


def combine_conditioning(conds: list) -> list:
    return [entry for cond in conds for entry in cond]


def combine_with_new_conds(conds: list, new_conds: list) -> list:
    return [combine_conditioning([cond, new]) for cond, new in zip(conds, new_conds)]


def _with_props(cond, strength, set_cond_area, mask, hooks, timesteps_range, append_hooks) -> list:
    hooked = set_hooks_for_conditioning(cond, hooks, append_hooks=append_hooks)
    return wh.with_properties(hooked, strength, set_cond_area, mask, timesteps=timesteps_range)


def set_conds_props(conds: list, strength: float, set_cond_area: str, mask: torch.Tensor | None = None,
                    hooks=None, timesteps_range: tuple[float, float] | None = None,
                    append_hooks: bool = True) -> list:
    return [_with_props(cond, strength, set_cond_area, mask, hooks, timesteps_range, append_hooks)
            for cond in conds]


def set_conds_props_and_combine(conds: list, new_conds: list, strength: float = 1.0, set_cond_area: str = "default",
                                mask: torch.Tensor | None = None, hooks=None,
                                timesteps_range: tuple[float, float] | None = None, append_hooks: bool = True) -> list:
    return [cond + _with_props(new, strength, set_cond_area, mask, hooks, timesteps_range, append_hooks)
            for cond, new in zip(conds, new_conds)]


def set_default_conds_and_combine(conds: list, new_conds: list, hooks=None,
                                  timesteps_range: tuple[float, float] | None = None,
                                  append_hooks: bool = True) -> list:
    return [cond + set_timesteps_for_conditioning(
                wh.as_default(set_hooks_for_conditioning(new, hooks, append_hooks=append_hooks)), timesteps_range)
            for cond, new in zip(conds, new_conds)]
