"""Weight hooks: a LoRA (or a whole model's difference) that applies to some conditionings only,
with a strength that follows keyframes over the sampling run (ComfyUI's ``comfy/hooks.py``).

A HOOKS value is a :class:`HookGroup` of :class:`WeightHook` s. Conditioning entries carry one
under ``"hooks"``; during sampling, entries are batched only with entries of the same group, and
the UNet runs each batch with that group's patches added to its weights. Patching is
``ldm.lora.patches``'s: the touched weights are backed up, patched in float32 and copied back bit for bit
after the call (:meth:`ScheduledHooks.applied`), so the MODEL's weights are unchanged between
calls and after the run.

Keyframes (:class:`HookKeyframe`: a strength multiplier from a ``start_percent`` of the run on)
switch by sigma, as ComfyUI's ``HookKeyframeGroup.prepare_current_keyframe`` does: a keyframe
list starts at its first keyframe; at each new sigma, once the current keyframe has been used for
its ``guarantee_steps``, it moves on through the following keyframes whose start sigma is at or
above the step's sigma (stopping at one that guarantees steps). A keyframe that starts before the
run's largest sigma guarantees none. A hook's strength is its own (``strength_model`` on the UNet,
``strength_clip`` on the text encoders) times its keyframe's (1.0 without keyframes).

For the text encoders, a :class:`ClipWeightHooks` on a CLIP handle (SetClipHooks) adds the hooks'
patches while encoding, once at full keyframe strength or, scheduled, once per range of percents
over which the keyframes stay constant (each conditioning marked ``clip_start_percent`` /
``clip_end_percent``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Mapping

import torch
from torch import Tensor, nn

from ldm.lora import patches as lora

log = logging.getLogger(__name__)

#: ComfyUI's keyframe interpolation methods (``InterpolationMethod._LIST``), in its order.
INTERPOLATIONS = ("linear", "ease_in", "ease_out", "ease_in_out")


# --------------------------------------------------------------------------- keyframes

@dataclass(frozen=True)
class HookKeyframe:
    """From ``start_percent`` of the run on, the hook's strength is multiplied by ``strength``;
    the keyframe is kept for at least ``guarantee_steps`` model evaluations at distinct sigmas."""

    strength: float
    start_percent: float = 0.0
    guarantee_steps: int = 1


@dataclass(frozen=True)
class HookKeyframes:
    """A HOOK_KEYFRAMES value: keyframes ordered by start percent (equal ones in insertion order)."""

    keyframes: tuple[HookKeyframe, ...] = ()

    def add(self, keyframe: HookKeyframe) -> "HookKeyframes":
        return HookKeyframes(tuple(sorted(self.keyframes + (keyframe,), key=lambda k: k.start_percent)))


def interpolated(start: float, end: float, count: int, method: str) -> list[float]:
    """``count`` values from ``start`` to ``end`` along ``method`` (float32, as ComfyUI's
    ``InterpolationMethod.get_weights``): linear, or eased over ``index = linspace(0, 1)`` by
    ``index²``, ``1 - (1 - index)²`` or ``(1 - cos(π·index)) / 2``."""
    if method == "linear":
        return [float(v) for v in torch.linspace(start, end, count)]
    index = torch.linspace(0, 1, count)
    if method == "ease_in":
        shape = index ** 2
    elif method == "ease_out":
        shape = 1 - (1 - index) ** 2
    elif method == "ease_in_out":
        shape = (1 - torch.cos(index * math.pi)) / 2
    else:
        raise ValueError(f"unknown interpolation {method!r}; expected one of {INTERPOLATIONS}")
    return [float(v) for v in (end - start) * shape + start]


def keyframes_over_range(previous: HookKeyframes | None, strengths: Iterable[float], start_percent: float,
                         end_percent: float) -> HookKeyframes:
    """``previous`` plus one keyframe per strength at evenly spaced percents from ``start_percent``
    to ``end_percent``; the first keyframe guarantees one step, the others none."""
    strengths = [float(s) for s in strengths]
    percents = interpolated(start_percent, end_percent, len(strengths), "linear")
    out = previous or HookKeyframes()
    for i, (percent, strength) in enumerate(zip(percents, strengths)):
        out = out.add(HookKeyframe(strength, percent, guarantee_steps=1 if i == 0 else 0))
    return out


# --------------------------------------------------------------------------- hooks

@dataclass(frozen=True)
class WeightHook:
    """One set of weight changes: a LoRA file's tensors (``lora``), or a model's own weights to
    move towards (``unet_weights`` / ``clip_weights``: model-as-LoRA adds ``strength · (target -
    weight)``). Copies that differ only in keyframes share ``ref`` and count as one hook in a
    group (ComfyUI's ``hook_ref``)."""

    strength_model: float = 1.0
    strength_clip: float = 1.0
    keyframes: HookKeyframes = HookKeyframes()
    lora: Mapping[str, Tensor] | None = field(default=None, compare=False, repr=False)
    unet_weights: Mapping[str, Tensor] | None = field(default=None, compare=False, repr=False)
    clip_weights: Mapping[str, Tensor] | None = field(default=None, compare=False, repr=False)
    ref: object = field(default_factory=object, repr=False)


@dataclass(frozen=True)
class HookGroup:
    """A HOOKS value: weight hooks applied together, at most one per ``ref``."""

    hooks: tuple[WeightHook, ...] = ()

    def __len__(self) -> int:
        return len(self.hooks)

    def add(self, hook: WeightHook) -> "HookGroup":
        if any(known.ref is hook.ref for known in self.hooks):
            return self
        return HookGroup(self.hooks + (hook,))

    def combine(self, other: "HookGroup | None") -> "HookGroup":
        out = self
        for hook in other.hooks if other is not None else ():
            out = out.add(hook)
        return out

    def with_keyframes(self, keyframes: HookKeyframes | None) -> "HookGroup":
        """Every hook with ``keyframes`` (None: no keyframes, constant strength)."""
        keyframes = keyframes or HookKeyframes()
        return HookGroup(tuple(replace(hook, keyframes=keyframes) for hook in self.hooks))


def combine_all(groups: Iterable[HookGroup | None]) -> HookGroup | None:
    """The hooks of every given group (None when none is given; a single group as it is)."""
    present = [group for group in groups if group is not None]
    if not present:
        return None
    out = present[0]
    for group in present[1:]:
        out = out.combine(group)
    return out


def lora_hook(lora_sd: Mapping[str, Tensor], strength_model: float, strength_clip: float) -> HookGroup:
    return HookGroup((WeightHook(strength_model, strength_clip, lora=lora_sd),))


def model_as_lora_hook(unet_weights: Mapping[str, Tensor] | None, clip_weights: Mapping[str, Tensor] | None,
                       strength_model: float, strength_clip: float) -> HookGroup:
    return HookGroup((WeightHook(strength_model, strength_clip, unet_weights=unet_weights,
                                 clip_weights=clip_weights),))


# --------------------------------------------------------------------------- adapters

@dataclass(frozen=True, eq=False)
class ModelDifference:
    """``target - original`` for one weight, computed when the patch is applied (a whole
    model's difference is never held in memory at once). ``original`` is the live weight."""

    target: Tensor
    original: Tensor

    def delta(self, shape: torch.Size, dtype: torch.dtype = torch.float32) -> Tensor:
        original = self.original.detach()
        target = self.target.to(device=original.device, dtype=dtype)
        return (target - original.to(dtype)).reshape(shape)


def hook_adapters(hook: WeightHook, module: nn.Module, target: str) -> dict[str, Any]:
    """The hook's adapters by weight key of ``module`` (``target``: "unet" or "clip")."""
    weights = module.state_dict(keep_vars=True)
    if hook.lora is not None:
        key_map = lora.unet_key_map(weights) if target == "unet" else lora.clip_key_map(weights)
        adapters, _ = lora.load_lora(hook.lora, key_map)  # keys for the other target are expected misses
        return {key: adapter for key, adapter in adapters.items() if key in weights}
    source = hook.unet_weights if target == "unet" else hook.clip_weights
    out: dict[str, Any] = {}
    for key, value in (source or {}).items():
        weight = weights.get(key)
        if weight is None or not weight.is_floating_point():
            continue
        if weight.shape != value.shape:
            log.warning("model-as-LoRA hook: %s has shape %s, the model's is %s; skipped",
                        key, tuple(value.shape), tuple(weight.shape))
            continue
        out[key] = ModelDifference(value, weight)
    return out


def add_hook_patches(table: Mapping[str, list], adapters: Mapping[str, Any], strength: float) -> dict[str, list]:
    """``table`` plus each adapter at ``strength`` (nothing at strength 0)."""
    if strength == 0.0:
        return {key: list(found) for key, found in table.items()}
    return lora.add_patches(table, adapters, strength)


# --------------------------------------------------------------------------- a sampling run

class KeyframeCursor:
    """Where one keyframe list stands during a sampling run."""

    def __init__(self, keyframes: HookKeyframes, sampling: Any) -> None:
        self.keyframes = keyframes.keyframes
        self.start_sigmas = [sampling.percent_to_sigma(k.start_percent) for k in self.keyframes]
        self.index = 0
        self.used_steps = 0
        self.last_sigma: Tensor | None = None

    @property
    def strength(self) -> float:
        return self.keyframes[self.index].strength if self.keyframes else 1.0

    def _guaranteed(self, index: int, max_sigma: Tensor) -> int:
        # A keyframe that starts before the run does (its sigma above the run's first) guarantees nothing.
        return 0 if bool(self.start_sigmas[index] > max_sigma) else self.keyframes[index].guarantee_steps

    def advance(self, sigma: Tensor, max_sigma: Tensor) -> None:
        """Move to the keyframe of the step at ``sigma`` (a 0-dim tensor; repeats are no-ops)."""
        if not self.keyframes or (self.last_sigma is not None and bool(sigma == self.last_sigma)):
            return
        if self.used_steps >= self._guaranteed(self.index, max_sigma):
            for i in range(self.index + 1, len(self.keyframes)):
                if not bool(self.start_sigmas[i] >= sigma):
                    break
                self.index, self.used_steps = i, 0
                if self._guaranteed(i, max_sigma) > 0:
                    break
        self.used_steps += 1
        self.last_sigma = sigma


class HookRun:
    """The hooks of one sampling run: a cursor per keyframe list, each hook's UNet adapters, and
    one :class:`ScheduledHooks` per distinct group (so entries of equal groups batch together).

    ``module`` is the UNet the run patches; the run's largest sigma is the largest it has seen
    (every sampler evaluates the schedule's first sigma first).
    """

    def __init__(self, sampling: Any, module: nn.Module | None) -> None:
        self.sampling = sampling
        self.module = module
        self._cursors: dict[HookKeyframes, KeyframeCursor] = {}
        self._adapters: dict[int, tuple[WeightHook, dict[str, Any]]] = {}
        self._groups: dict[HookGroup, ScheduledHooks] = {}
        self.max_sigma: Tensor | None = None

    def schedule(self, group: HookGroup | None) -> "ScheduledHooks | None":
        if group is None or len(group) == 0:
            return None
        found = self._groups.get(group)
        if found is None:
            found = self._groups[group] = ScheduledHooks(self, group)
        return found

    def cursor(self, keyframes: HookKeyframes) -> KeyframeCursor:
        found = self._cursors.get(keyframes)
        if found is None:
            found = self._cursors[keyframes] = KeyframeCursor(keyframes, self.sampling)
        return found

    def unet_adapters(self, hook: WeightHook) -> dict[str, Any]:
        found = self._adapters.get(id(hook.ref))
        if found is None:
            if self.module is None:
                raise ValueError("conditioning carries weight hooks, but this model offers no UNet module to patch")
            found = self._adapters[id(hook.ref)] = (hook, hook_adapters(hook, self.module, "unet"))
        return found[1]

    def see(self, sigma: Tensor) -> None:
        self.max_sigma = sigma if self.max_sigma is None else torch.maximum(self.max_sigma, sigma)


@dataclass(eq=False)
class ScheduledHooks:
    """A hook group during a run: advanced to each step's keyframes, applied around a model call."""

    run: HookRun
    group: HookGroup

    def advance(self, sigma: Tensor) -> None:
        """Keyframes for a model evaluation at ``sigma`` ([B]; its first item counts, as in ComfyUI)."""
        current = sigma[0].detach()
        self.run.see(current)
        for hook in self.group.hooks:
            self.run.cursor(hook.keyframes).advance(current, self.run.max_sigma)

    def strengths(self) -> list[float]:
        return [hook.strength_model * self.run.cursor(hook.keyframes).strength for hook in self.group.hooks]

    def unet_patches(self) -> dict[str, list]:
        table: dict[str, list] = {}
        for hook, strength in zip(self.group.hooks, self.strengths()):
            table = add_hook_patches(table, self.run.unet_adapters(hook), strength)
        return table

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The UNet's weights with this group's patches for the block, restored bit-exactly after."""
        patches = self.unet_patches()
        if not patches:
            yield
            return
        with lora.patched(self.run.module, patches):
            yield


# --------------------------------------------------------------------------- text encoders

def clip_schedule(group: HookGroup) -> list[tuple[tuple[float, float], list[tuple[WeightHook, HookKeyframe | None]]]]:
    """Ranges of percents over which every hook's keyframe stays the same, each with the keyframe
    of every hook there (None: no keyframes, full strength) — ComfyUI's
    ``HookGroup.get_hooks_for_clip_schedule``. A hook's ranges run from each keyframe whose strength
    differs from the one before to the next such keyframe (the last one to 1.0)."""
    per_hook: list[tuple[WeightHook, list[tuple[tuple[float, float], HookKeyframe | None]]]] = []
    for hook in group.hooks:
        frames = hook.keyframes.keyframes
        if not frames:
            per_hook.append((hook, [((0.0, 1.0), None)]))
            continue
        ranges = []
        previous = frames[0]
        for frame in frames:
            if frame.start_percent > previous.start_percent and not math.isclose(frame.strength, previous.strength):
                ranges.append(((previous.start_percent, frame.start_percent), previous))
                previous = frame
            elif frame.start_percent == previous.start_percent:
                previous = frame
        if not math.isclose(previous.start_percent, 1.0):
            ranges.append(((previous.start_percent, 1.0), previous))
        per_hook.append((hook, ranges))
    bounds = sorted({0.0, *itertools.chain.from_iterable(r for _, ranges in per_hook for r, _ in ranges)})
    out = []
    for low, high in zip(bounds, bounds[1:]):
        chosen = []
        for hook, ranges in per_hook:
            frame = next((kf for (start, end), kf in ranges if start < high and end > low), None)
            chosen.append((hook, frame))
        out.append(((low, high), chosen))
    return out


@dataclass(frozen=True)
class ClipWeightHooks:
    """What SetClipHooks puts on a CLIP handle: ``hooks`` patch the encoders while encoding
    (by keyframe ranges when ``scheduled``); ``for_conds`` is attached to every conditioning."""

    hooks: HookGroup
    adapters: tuple[dict[str, Any], ...]  # per hook, by encoder weight key
    scheduled: bool = False
    for_conds: HookGroup | None = None

    @classmethod
    def build(cls, encoders: nn.Module, hooks: HookGroup, scheduled: bool,
              for_conds: HookGroup | None) -> "ClipWeightHooks":
        if not scheduled:
            hooks = hooks.with_keyframes(None)
        adapters = tuple(hook_adapters(hook, encoders, "clip") for hook in hooks.hooks)
        return cls(hooks, adapters, scheduled, for_conds)

    def _variant(self, clip: Any, keyframes: Iterable[HookKeyframe | None]) -> Any:
        variant = clip.clone()
        variant.weight_hooks = None
        patches = variant.patches
        for hook, adapters, frame in zip(self.hooks.hooks, self.adapters, keyframes):
            strength = hook.strength_clip * (1.0 if frame is None else frame.strength)
            patches = add_hook_patches(patches, adapters, strength)
        variant.patches = patches
        return variant

    def passes(self, clip: Any, add_dict: Mapping[str, Any] | None) -> list[tuple[Any, dict[str, Any]]]:
        """``(patched CLIP, extras)`` per conditioning entry an encode makes (ComfyUI's
        ``CLIP.encode_from_tokens_scheduled``): one, or one per scheduled range that overlaps
        ``add_dict``'s ``start_percent``/``end_percent``."""
        add_dict = dict(add_dict or {})
        attach = {"hooks": self.for_conds} if self.for_conds is not None else {}
        if not self.scheduled:
            return [(self._variant(clip, [None] * len(self.hooks)), {**attach, **add_dict})]
        out = []
        for (low, high), chosen in clip_schedule(self.hooks):
            if "start_percent" in add_dict and high < add_dict["start_percent"]:
                continue
            if "end_percent" in add_dict and low > add_dict["end_percent"]:
                continue
            extras = {"clip_start_percent": low, "clip_end_percent": high, **add_dict, **attach}
            out.append((self._variant(clip, [frame for _, frame in chosen]), extras))
        return out


def encode_passes(clip: Any, add_dict: Mapping[str, Any] | None) -> list[tuple[Any, dict[str, Any]]]:
    """The encodes a CLIP handle's text makes: itself with ``add_dict``, or its hooks' passes."""
    hooks: ClipWeightHooks | None = getattr(clip, "weight_hooks", None)
    if hooks is None:
        return [(clip, dict(add_dict or {}))]
    return hooks.passes(clip, add_dict)


# --------------------------------------------------------------------------- conditioning properties

def with_values(conditioning: list, values: Mapping[str, Any]) -> list:
    """Each entry of a CONDITIONING list with ``values`` set in a copy of its dict."""
    return [[cond, {**extras, **values}] for cond, extras in conditioning]


def with_hooks(conditioning: list, hooks: HookGroup | None) -> list:
    """Each entry with ``hooks`` added to the hooks it already carries."""
    if hooks is None:
        return conditioning
    out = []
    for cond, extras in conditioning:
        present = extras.get("hooks")
        out.append([cond, {**extras, "hooks": hooks if present is None else present.combine(hooks)}])
    return out


def with_properties(conditioning: list, strength: float, set_cond_area: str, mask: Tensor | None = None,
                    hooks: HookGroup | None = None, timesteps: tuple[float, float] | None = None) -> list:
    """ComfyUI's ``set_conds_props`` for one list: hooks added; with a mask, ``mask`` ([B, H, W]),
    ``set_area_to_bounds`` (unless ``set_cond_area`` is "default") and ``mask_strength`` =
    ``strength``; with timesteps, ``start_percent`` / ``end_percent``."""
    out = with_hooks(conditioning, hooks)
    if mask is not None:
        out = with_values(out, {"mask": mask if mask.ndim >= 3 else mask.unsqueeze(0),
                                "set_area_to_bounds": set_cond_area != "default", "mask_strength": strength})
    if timesteps is not None:
        out = with_values(out, {"start_percent": timesteps[0], "end_percent": timesteps[1]})
    return out


def as_default(conditioning: list, hooks: HookGroup | None = None) -> list:
    """Entries marked ``default``: at sampling they fill only the weight their side leaves."""
    return with_values(with_hooks(conditioning, hooks), {"default": True})
