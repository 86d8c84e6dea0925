"""How a MODEL samples beyond its weights: the hooks patch nodes (Weft's and packs') attach.

:class:`SamplingHooks` is Weft's typed record of them. The hooks themselves follow ComfyUI's
calling conventions (each receives one ``args`` dict with ComfyUI's keys, ``args["model_options"]``
among them), because node packs write them; :meth:`SamplingHooks.as_model_options` is the
translation to ComfyUI's string-keyed ``model_options`` dict — a live view, so a pack that writes
``model.model_options["sampler_cfg_function"] = fn`` sets :attr:`SamplingHooks.cfg_function`.
Keys Weft does not read are kept in :attr:`SamplingHooks.extra` and handed back unchanged.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterator

#: ComfyUI ``model_options`` key -> :class:`SamplingHooks` field.
MODEL_OPTION_FIELDS = {
    "model_sampling": "model_sampling",
    "sampler_cfg_function": "cfg_function",
    "sampler_pre_cfg_function": "pre_cfg_functions",
    "sampler_post_cfg_function": "post_cfg_functions",
    "model_function_wrapper": "unet_wrapper",
    "denoise_mask_function": "denoise_mask_function",
    "disable_cfg1_optimization": "disable_cfg1_optimization",
    "transformer_options": "transformer_options",
}


def copy_structure(value: Any) -> Any:
    """Dicts, lists and tuples copied level by level; everything else (functions, tensors,
    modules) shared — what a clone must not share is the containers patches are appended to."""
    if isinstance(value, dict):
        return {key: copy_structure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_structure(item) for item in value]
    if isinstance(value, tuple):
        return tuple(copy_structure(item) for item in value)
    return value


@dataclass(frozen=True)
class CFGOverride:
    """A cfg scale used while ``sigma_low < sigma <= sigma_high``."""

    cfg: float
    sigma_low: float
    sigma_high: float

    def applies(self, sigma: float) -> bool:
        return self.sigma_low < sigma <= self.sigma_high


def effective_cfg(hooks: "SamplingHooks", sigma: float, cfg: float) -> float:
    """The cfg scale of one model evaluation at ``sigma``: the last matching override, else ``cfg``."""
    for override in hooks.cfg_overrides:
        if override.applies(sigma):
            cfg = override.cfg
    return cfg


@dataclass
class SamplingHooks:
    """Sampling behaviour a patch attached to a MODEL.

    - ``model_sampling``: a :class:`~ldm.sampling.model_sampling.ModelSampling` that replaces the
      family's (ModelSamplingDiscrete);
    - ``cfg_function``: replaces ``uncond + (cond - uncond)·cfg`` (ComfyUI ``sampler_cfg_function``);
    - ``pre_cfg_functions`` / ``post_cfg_functions``: run before / after the combination;
    - ``unet_wrapper``: wraps every model call (``model_function_wrapper``);
    - ``denoise_mask_function``: ``fn(sigma, denoise_mask, extra_options) -> mask``, edits an
      inpainting denoise mask before each evaluation (DifferentialDiffusion);
    - ``cfg_overrides``: :class:`CFGOverride` s, each replacing the guider's cfg scale while sigma
      lies in its range; the last one added wins where ranges overlap (ComfyUI's CFGOverride,
      a ``predict_noise`` wrapper there — the one nearest the sampler runs innermost);
    - ``disable_cfg1_optimization``: evaluate the negative side even at cfg 1;
    - ``predict_noise_wrappers``: ComfyUI ``predict_noise`` wrappers around each guided prediction,
      ``fn(executor, x, sigma, model_options, seed)``; ``executor.class_obj`` is the run's denoiser
      (EasyCache, LazyCache);
    - ``compute_dtype`` / ``compute_device``: where and in which dtype this MODEL's UNet computes
      (ModelComputeDtype, SelectModelDevice); None leaves it to the engine;
    - ``transformer_options``: UNet patches in ComfyUI's shape (``patches``, ``patches_replace``),
      honoured by :mod:`ldm.networks.unet`;
    - ``extra``: any other ``model_options`` key a pack set, carried unread.
    """

    model_sampling: Any = None
    cfg_function: Callable | None = None
    pre_cfg_functions: list[Callable] = field(default_factory=list)
    post_cfg_functions: list[Callable] = field(default_factory=list)
    unet_wrapper: Callable | None = None
    denoise_mask_function: Callable | None = None
    cfg_overrides: list["CFGOverride"] = field(default_factory=list)
    disable_cfg1_optimization: bool = False
    predict_noise_wrappers: list[Callable] = field(default_factory=list)
    compute_dtype: Any = None
    compute_device: Any = None
    transformer_options: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_model_options(cls, options: Any) -> "SamplingHooks":
        """Hooks from a ComfyUI ``model_options`` mapping."""
        hooks = cls()
        hooks.as_model_options().update(options or {})
        return hooks

    def clone(self) -> "SamplingHooks":
        return SamplingHooks(**{f.name: copy_structure(getattr(self, f.name)) for f in fields(self)})

    def as_model_options(self) -> "ModelOptionsView":
        return ModelOptionsView(self)


class ModelOptionsView(MutableMapping):
    """ComfyUI's ``model_options`` dict over a :class:`SamplingHooks` (reads and writes go through).

    An unset hook reads as absent (``"sampler_cfg_function" in view`` is False until one is set),
    so code written for ComfyUI's dict behaves the same; deleting a key resets the field.
    """

    def __init__(self, hooks: SamplingHooks) -> None:
        self._hooks = hooks

    @property
    def hooks(self) -> SamplingHooks:
        return self._hooks

    def _is_set(self, name: str) -> bool:
        value = getattr(self._hooks, name)
        return value is not None and value is not False and value != [] and value != {}

    def __getitem__(self, key: str) -> Any:
        name = MODEL_OPTION_FIELDS.get(key)
        if name is None:
            return self._hooks.extra[key]
        if not self._is_set(name) and name not in ("transformer_options",):
            raise KeyError(key)
        return getattr(self._hooks, name)

    def __setitem__(self, key: str, value: Any) -> None:
        name = MODEL_OPTION_FIELDS.get(key)
        if name is None:
            self._hooks.extra[key] = value
        elif name in ("pre_cfg_functions", "post_cfg_functions"):
            setattr(self._hooks, name, list(value or ()))
        elif name == "transformer_options":
            setattr(self._hooks, name, value if isinstance(value, dict) else dict(value or {}))
        else:
            setattr(self._hooks, name, value)

    def __delitem__(self, key: str) -> None:
        name = MODEL_OPTION_FIELDS.get(key)
        if name is None:
            del self._hooks.extra[key]
            return
        if name == "transformer_options":  # always present, as in ComfyUI's dict: deleting empties it
            self._hooks.transformer_options = {}
            return
        if not self._is_set(name):
            raise KeyError(key)
        default = SamplingHooks()
        setattr(self._hooks, name, getattr(default, name))

    def __iter__(self) -> Iterator[str]:
        for key, name in MODEL_OPTION_FIELDS.items():
            if name == "transformer_options" or self._is_set(name):
                yield key
        yield from list(self._hooks.extra)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict:
        """A plain dict with the same entries (ComfyUI code calls ``model_options.copy()``)."""
        return dict(self)

    def __repr__(self) -> str:
        return f"ModelOptionsView({dict(self)!r})"
