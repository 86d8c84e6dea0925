"""ComfyUI's ``ModelPatcher`` methods on Weft's MODEL, so one object serves both surfaces.

Node packs receive Weft's :class:`~ldm.model.ModelHandle` wherever ComfyUI would hand them a
``ModelPatcher``, and call its methods by ComfyUI's names: ``clone``, ``add_patches``,
``model_options``, ``set_model_*`` hooks, ``get_model_object``, ``model.diffusion_model`` … Each
method here is a thin translation onto the handle's own state — ``hooks``
(:class:`~ldm.sampling.hooks.SamplingHooks`), ``patches`` (LoRA-style weight patches, applied by the
engine) — so what a pack patches is honoured by Weft's sampler. The method names are ComfyUI's
(facts from ``comfy/model_patcher.py``); the code is ours.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Mapping

import torch

from ldm.loading.merging import stored_weights
from ldm.lora.patches import DiffAdapter, LoraAdapter, ScaleOnly, WeightPatch, patched_weight
from ldm.sampling.hooks import ModelOptionsView, SamplingHooks

#: The prefix ComfyUI gives UNet weight keys in patches and state dicts.
DIFFUSION_PREFIX = "diffusion_model."
#: ComfyUI wrapper types Weft runs. Around the UNet's forward (``ldm.networks.unet_patches``), read from
#: ``transformer_options["wrappers"]["diffusion_model"]``:
DIFFUSION_MODEL_WRAPPER = "diffusion_model"
#: Around each guided prediction (``ldm.sampling.guidance.WrappedDenoiser``), kept in the typed
#: :attr:`SamplingHooks.predict_noise_wrappers`. Weft's sampler has no other wrapper points
#: (outer_sample, sampler_sample, calc_cond_batch, apply_model, …) and calls no ModelPatcher callbacks.
PREDICT_NOISE_WRAPPER = "predict_noise"


def unsupported_wrapper(wrapper_type: str) -> NotImplementedError:
    return NotImplementedError(f"ComfyUI {wrapper_type!r} wrappers: Weft's sampler only runs "
                               f"{DIFFUSION_MODEL_WRAPPER!r} wrappers (around the UNet's forward) and a "
                               f"MODEL's {PREDICT_NOISE_WRAPPER!r} wrappers (around each guided prediction)")


def unsupported_callback(call_type: str) -> NotImplementedError:
    return NotImplementedError(f"ComfyUI ModelPatcher callbacks ({call_type!r}): Weft's engine loads, "
                               "runs and releases models itself and calls none")


@dataclass(frozen=True)
class KeyedWrapper:
    """A ``predict_noise`` wrapper with the key ComfyUI registered it under (the typed hook list
    holds plain callables; the key lets packs list and remove theirs). Called as ``fn`` itself."""

    key: str | None
    fn: Callable

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def _wrapper_key(wrapper: Callable) -> str | None:
    """The key of an entry of ``predict_noise_wrappers``; Weft's own nodes add bare callables (None)."""
    return wrapper.key if isinstance(wrapper, KeyedWrapper) else None


def _unkeyed(wrapper: Callable) -> Callable:
    return wrapper.fn if isinstance(wrapper, KeyedWrapper) else wrapper


def add_hooks_wrapper(hooks: SamplingHooks, wrapper_type: str, key: str | None, wrapper: Callable) -> None:
    """ComfyUI's ``add_wrapper_with_key`` onto ``hooks``: ``diffusion_model`` wrappers into its
    ``transformer_options``, ``predict_noise`` wrappers into ``predict_noise_wrappers`` (after the
    last one of the same key: ComfyUI runs them grouped by key, keys in the order first added);
    other types raise ``NotImplementedError``."""
    if wrapper_type == DIFFUSION_MODEL_WRAPPER:
        by_key = hooks.transformer_options.setdefault("wrappers", {}).setdefault(wrapper_type, {})
        by_key.setdefault(key, []).append(wrapper)
    elif wrapper_type == PREDICT_NOISE_WRAPPER:
        found = hooks.predict_noise_wrappers
        same = [i for i, entry in enumerate(found) if _wrapper_key(entry) == key]
        at = same[-1] + 1 if same else len(found)
        hooks.predict_noise_wrappers = [*found[:at], KeyedWrapper(key, wrapper), *found[at:]]
    else:
        raise unsupported_wrapper(wrapper_type)


def hooks_wrappers(hooks: SamplingHooks, wrapper_type: str) -> dict[str | None, list[Callable]]:
    """``{key: [wrapper, …]}`` of one wrapper type on ``hooks``, as ComfyUI's registry holds it."""
    if wrapper_type != PREDICT_NOISE_WRAPPER:
        return hooks.transformer_options.get("wrappers", {}).get(wrapper_type, {})
    by_key: dict[str | None, list[Callable]] = {}
    for entry in hooks.predict_noise_wrappers:
        by_key.setdefault(_wrapper_key(entry), []).append(_unkeyed(entry))
    return by_key


def remove_hooks_wrappers(hooks: SamplingHooks, wrapper_type: str, key: str | None) -> None:
    if wrapper_type == PREDICT_NOISE_WRAPPER:
        hooks.predict_noise_wrappers = [w for w in hooks.predict_noise_wrappers if _wrapper_key(w) != key]
    else:
        hooks.transformer_options.get("wrappers", {}).get(wrapper_type, {}).pop(key, None)


class PredictionType(enum.IntEnum):
    """ComfyUI's ``ModelType`` numbering (``comfy.model_base.ModelType``)."""

    EPS = 1
    V_PREDICTION = 2


def weight_patch_from_comfy(value: Any, strength: float, strength_model: float) -> WeightPatch | None:
    """A ComfyUI patch value as a :class:`~ldm.lora.patches.WeightPatch`; None for a kind Weft lacks.

    Understood: Weft's own adapters; a tensor or ``(tensor,)`` (a difference, ComfyUI's "diff"
    patch; with ``strength_model`` it is how model merging blends two weights); a
    :meth:`ModelPatcherMethods.get_key_patches` entry ``[(weight,), *patches]``;
    ``("diff", (tensor, …))``; ``("lora", (up, down, alpha, mid, …))``; ``(None,)`` at strength 0
    (only ``strength_model`` scales the weight: ComfyUI's attention-multiply patch).
    """
    if isinstance(value, (LoraAdapter, DiffAdapter, ScaleOnly)):
        adapter = value
    elif isinstance(value, tuple) and value == (None,) and strength == 0.0:
        adapter = ScaleOnly()
    elif isinstance(value, list) and value and isinstance(value[0], tuple) and value[0] and torch.is_tensor(value[0][0]):
        # What get_key_patches gives: [(weight,), *patches]; merging blends with that weight as
        # its patches make it (ComfyUI applies a nested list before using it as a difference).
        base, rest = value[0][0], [weight_patch_from_comfy(p[1], p[0], p[2] if len(p) > 2 else 1.0)
                                   for p in value[1:] if isinstance(p, tuple) and len(p) >= 2]
        if any(patch is None for patch in rest):
            return None
        adapter = DiffAdapter(patched_weight(base, rest) if rest else base)
    elif torch.is_tensor(value):
        adapter = DiffAdapter(value)
    elif isinstance(value, (tuple, list)) and len(value) == 1 and torch.is_tensor(value[0]):
        adapter = DiffAdapter(value[0])
    elif isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], str):
        kind, args = value
        if kind == "diff" and args and torch.is_tensor(args[0]):
            adapter = DiffAdapter(args[0])
        elif kind == "lora" and len(args) >= 2:
            up, down = args[0], args[1]
            alpha = float(args[2]) if len(args) > 2 and args[2] is not None else None
            mid = args[3] if len(args) > 3 else None
            adapter = LoraAdapter(up=up, down=down, alpha=alpha, mid=mid)
        else:
            return None
    else:
        return None
    return WeightPatch(float(strength), adapter, float(strength_model))


def add_comfy_patches(table: dict[str, list[WeightPatch]], own_keys: Iterable[str], patches: Mapping[Any, Any],
                      strength_patch: float, strength_model: float,
                      weight_key: Callable[[str], str]) -> list:
    """ComfyUI's ``add_patches`` onto a patch ``table`` (changed in place): ``weight_key`` turns a
    ComfyUI key into the handle's own; keys the handle lacks and patch kinds Weft lacks are
    skipped. Returns the keys that were added."""
    own = set(own_keys)
    added = []
    for key, value in patches.items():
        name = weight_key(key[0] if isinstance(key, tuple) else key)
        if name not in own:
            continue
        patch = weight_patch_from_comfy(value, strength_patch, strength_model)
        if patch is None:
            continue
        table.setdefault(name, []).append(patch)
        added.append(key)
    return added


def comfy_key_patches(weights: Mapping[str, torch.Tensor], table: Mapping[str, list[WeightPatch]],
                      comfy_key: Callable[[str], str], filter_prefix: str | None = None) -> dict[str, list]:
    """ComfyUI's ``get_key_patches``: ``{comfy key: [(weight,), *(strength, adapter, strength_model)]}``."""
    out = {}
    for key, weight in weights.items():
        full = comfy_key(key)
        if filter_prefix is not None and not full.startswith(filter_prefix):
            continue
        out[full] = [(weight,)] + [(p.strength, p.adapter, p.strength_model) for p in table.get(key, ())]
    return out


class ModelConfigView:
    """``model.model.model_config`` as packs read it: ``unet_config`` (ComfyUI's key names),
    ``latent_format``, ``sampling_settings``."""

    def __init__(self, handle: Any) -> None:
        config = handle.config
        self.latent_format = handle.latent_format
        self.unet_config = {
            "in_channels": config.in_channels, "out_channels": config.out_channels,
            "model_channels": config.model_channels, "channel_mult": list(config.channel_mult),
            "num_res_blocks": list(config.num_res_blocks), "transformer_depth": list(config.transformer_depth),
            "transformer_depth_middle": config.transformer_depth_middle,
            "transformer_depth_output": list(config.transformer_depth_output),
            "context_dim": config.context_dim, "use_linear_in_transformer": config.use_linear_in_transformer,
            "num_heads": config.num_heads, "num_head_channels": config.num_head_channels,
            "adm_in_channels": config.adm_in_channels, "num_classes": config.num_classes,
        }
        self.sampling_settings = {"prediction": handle.prediction}
        self.family = handle.family


class DiffusionModelView:
    """``ModelPatcher.model`` (ComfyUI's ``BaseModel``): the shared network and how it samples.

    ``diffusion_model`` is Weft's UNet itself (``input_blocks`` / ``middle_block`` /
    ``output_blocks`` as in the checkpoint), so packs that walk or hook its modules find them. As in
    ComfyUI, clones share one such object (``a.model is a.clone().model``) and it knows nothing of
    any clone's patches: ``model_sampling`` here is the family's, ``get_model_object("model_sampling")``
    on a MODEL the patched one.
    """

    def __init__(self, handle: Any) -> None:
        # The facts every clone shares, not the handle itself (whose hooks are one clone's).
        self._handle = SimpleNamespace(unet=handle.unet, config=handle.config, family=handle.family,
                                       prediction=handle.prediction, latent_format=handle.latent_format,
                                       schedule=getattr(handle, "schedule", None),
                                       dtype=handle.dtype, device=handle.device, hooks=SamplingHooks())

    @classmethod
    def shared_by(cls, handle: Any) -> "DiffusionModelView":
        """The one view of ``handle``'s network, kept on the network module itself."""
        view = handle.unet.__dict__.get("_weft_model_view")
        if view is None:
            view = handle.unet.__dict__["_weft_model_view"] = cls(handle)
        return view

    @property
    def diffusion_model(self) -> torch.nn.Module:
        return self._handle.unet

    @property
    def family(self) -> str:
        return self._handle.family

    @property
    def model_sampling(self):
        from ldm.sampling.from_handle import model_sampling_of
        return model_sampling_of(self._handle)

    @property
    def latent_format(self):
        return self._handle.latent_format

    @property
    def model_config(self) -> ModelConfigView:
        return ModelConfigView(self._handle)

    @property
    def model_type(self) -> PredictionType:
        return PredictionType.V_PREDICTION if self._handle.prediction == "v" else PredictionType.EPS

    @property
    def adm_channels(self) -> int:
        return self._handle.config.adm_in_channels or 0

    @property
    def device(self) -> torch.device:
        return next(iter(self._handle.unet.parameters())).device

    def get_dtype(self) -> torch.dtype:
        return self._handle.dtype

    def is_adm(self) -> bool:
        return self.adm_channels > 0

    def process_latent_in(self, latent: torch.Tensor) -> torch.Tensor:
        return self._handle.latent_format.process_in(latent)

    def process_latent_out(self, latent: torch.Tensor) -> torch.Tensor:
        return self._handle.latent_format.process_out(latent)

    def memory_required(self, input_shape) -> int:
        """Activation bytes of one UNet call on ``input_shape`` as given (ComfyUI's callers double
        the batch themselves for cond + uncond), by the engine's estimate."""
        from ldm.engine import USAGE_FACTORS
        from ldm.memory.plan import unet_inference_bytes
        dtype_size = torch.empty((), dtype=self._handle.dtype).element_size()
        return unet_inference_bytes(tuple(input_shape), dtype_size, USAGE_FACTORS.get(self._handle.family, 1.0),
                                    cond_batches=1)

    def apply_model(self, x: torch.Tensor, t: torch.Tensor, c_concat: torch.Tensor | None = None,
                    c_crossattn: torch.Tensor | None = None, control=None, transformer_options=None,
                    **kwargs) -> torch.Tensor:
        """x0 for sigma-space ``x`` at sigma ``t`` (ComfyUI's ``BaseModel.apply_model``)."""
        from ldm.sampling.denoiser import UNetDenoiser
        from ldm.sampling.from_handle import ComputeCast
        handle = self._handle
        network = ComputeCast(handle.unet, handle.dtype, torch.device(handle.device))
        c = {"c_concat": c_concat, "c_crossattn": c_crossattn, "y": kwargs.get("y")}
        if transformer_options:
            c["transformer_options"] = transformer_options
        with torch.no_grad():
            return UNetDenoiser(network, self.model_sampling)(x, t, c)


class ModelPatcherMethods:
    """Mixed into :class:`~ldm.model.ModelHandle`: ComfyUI's ``ModelPatcher`` API over its state."""

    # -- what the handle provides (declared for readers; ModelHandle's dataclass fields) ---------
    unet: torch.nn.Module
    hooks: Any
    patches: dict
    device: torch.device

    # -- identity ---------------------------------------------------------------------------------
    @property
    def model(self) -> DiffusionModelView:
        return DiffusionModelView.shared_by(self)

    @property
    def model_options(self) -> ModelOptionsView:
        return self.hooks.as_model_options()

    @model_options.setter
    def model_options(self, value: Mapping[str, Any]) -> None:
        view = self.hooks.as_model_options()
        for key in list(view):
            del view[key]
        view.update(value)

    @property
    def load_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def offload_device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def current_device(self) -> torch.device:
        return self.model.device

    @property
    def size(self) -> int:
        return self.model_size()

    def model_size(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.unet.state_dict().values())

    def model_dtype(self) -> torch.dtype:
        return self.dtype

    def is_clone(self, other: Any) -> bool:
        return getattr(other, "unet", None) is self.unet

    def clone_has_same_weights(self, other: Any) -> bool:
        return self.is_clone(other) and _patch_table(self.patches) == _patch_table(getattr(other, "patches", {}))

    # -- weight patches ----------------------------------------------------------------------------
    def add_patches(self, patches: Mapping[str, Any], strength_patch: float = 1.0,
                    strength_model: float = 1.0) -> list[str]:
        """Add patches by ComfyUI key (``diffusion_model.<weight>``, or the bare weight key);
        returns the keys that were added (unknown keys and patch kinds are skipped, as ComfyUI
        skips keys the model lacks)."""
        return add_comfy_patches(self.patches, self.unet.state_dict().keys(), patches, strength_patch,
                                 strength_model, lambda name: name.removeprefix(DIFFUSION_PREFIX))

    def get_key_patches(self, filter_prefix: str | None = None) -> dict[str, list]:
        """``{key: [(weight,), *patches]}`` with ComfyUI's keys (what model-merge nodes read).

        The weights are the stored ones, as the merge nodes read them: while the engine holds the
        model loaded, the module's own tensors are device copies with some clone's patches in them."""
        return comfy_key_patches(stored_weights(self.unet), self.patches, lambda key: DIFFUSION_PREFIX + key,
                                 filter_prefix)

    def model_state_dict(self, filter_prefix: str | None = None) -> dict[str, torch.Tensor]:
        state = {DIFFUSION_PREFIX + k: v for k, v in self.unet.state_dict().items()}
        if filter_prefix is not None:
            state = {k: v for k, v in state.items() if k.startswith(filter_prefix)}
        return state

    # -- object patches ------------------------------------------------------------------------------
    def get_model_object(self, name: str) -> Any:
        """``"model_sampling"`` (this MODEL's, patched or not), ``"latent_format"``, or a dotted
        path under the BaseModel view (``"diffusion_model.input_blocks.0"``)."""
        if name == "model_sampling":
            from ldm.sampling.from_handle import model_sampling_of
            return model_sampling_of(self)
        target: Any = self.model
        for part in name.split("."):
            target = getattr(target, part)
        return target

    def add_object_patch(self, name: str, obj: Any) -> None:
        """Only ``model_sampling`` can be replaced (what ModelSampling* nodes patch); other objects
        would change the shared network under every clone, which Weft does not allow."""
        if name != "model_sampling":
            raise NotImplementedError(f"object patch {name!r}: only 'model_sampling' can be patched in Weft")
        self.hooks.model_sampling = obj

    # -- sampler hooks ------------------------------------------------------------------------------
    def set_model_sampler_cfg_function(self, fn: Callable, disable_cfg1_optimization: bool = False) -> None:
        self.hooks.cfg_function = fn
        self.hooks.disable_cfg1_optimization |= bool(disable_cfg1_optimization)

    def set_model_sampler_post_cfg_function(self, fn: Callable, disable_cfg1_optimization: bool = False) -> None:
        self.hooks.post_cfg_functions = self.hooks.post_cfg_functions + [fn]
        self.hooks.disable_cfg1_optimization |= bool(disable_cfg1_optimization)

    def set_model_sampler_pre_cfg_function(self, fn: Callable, disable_cfg1_optimization: bool = False) -> None:
        self.hooks.pre_cfg_functions = self.hooks.pre_cfg_functions + [fn]
        self.hooks.disable_cfg1_optimization |= bool(disable_cfg1_optimization)

    def set_model_unet_function_wrapper(self, fn: Callable) -> None:
        self.hooks.unet_wrapper = fn

    def set_model_denoise_mask_function(self, fn: Callable) -> None:
        self.hooks.denoise_mask_function = fn

    # -- UNet patches (ComfyUI's transformer_options; honoured by ldm.networks.unet) ---------------
    def set_model_patch(self, patch: Callable, name: str) -> None:
        patches = self.hooks.transformer_options.setdefault("patches", {})
        patches[name] = patches.get(name, []) + [patch]

    def set_model_patch_replace(self, patch: Callable, name: str, block_name: str, number: int,
                                transformer_index: int | None = None) -> None:
        replace = self.hooks.transformer_options.setdefault("patches_replace", {})
        table = dict(replace.get(name, {}))
        key = (block_name, number) if transformer_index is None else (block_name, number, transformer_index)
        table[key] = patch
        replace[name] = table

    def set_model_attn1_patch(self, patch: Callable) -> None:
        self.set_model_patch(patch, "attn1_patch")

    def set_model_attn2_patch(self, patch: Callable) -> None:
        self.set_model_patch(patch, "attn2_patch")

    def set_model_attn1_replace(self, patch: Callable, block_name: str, number: int,
                                transformer_index: int | None = None) -> None:
        self.set_model_patch_replace(patch, "attn1", block_name, number, transformer_index)

    def set_model_attn2_replace(self, patch: Callable, block_name: str, number: int,
                                transformer_index: int | None = None) -> None:
        self.set_model_patch_replace(patch, "attn2", block_name, number, transformer_index)

    def set_model_attn1_output_patch(self, patch: Callable) -> None:
        self.set_model_patch(patch, "attn1_output_patch")

    def set_model_attn2_output_patch(self, patch: Callable) -> None:
        self.set_model_patch(patch, "attn2_output_patch")

    def set_model_input_block_patch(self, patch: Callable) -> None:
        self.set_model_patch(patch, "input_block_patch")

    def set_model_input_block_patch_after_skip(self, patch: Callable) -> None:
        self.set_model_patch(patch, "input_block_patch_after_skip")

    def set_model_output_block_patch(self, patch: Callable) -> None:
        self.set_model_patch(patch, "output_block_patch")

    def set_model_middle_block_patch(self, patch: Callable) -> None:
        self.set_model_patch(patch, "middle_patch")

    # -- ComfyUI's wrapper / callback registries (ComfyUI keeps them on the patcher; Weft keeps the
    #    kinds it runs where its sampler reads them: see add_hooks_wrapper) ------------------------
    def add_wrapper(self, wrapper_type: str, wrapper: Callable) -> None:
        self.add_wrapper_with_key(wrapper_type, None, wrapper)

    def add_wrapper_with_key(self, wrapper_type: str, key: str | None, wrapper: Callable) -> None:
        """Register ``wrapper(executor, x, timesteps, context, y, control, transformer_options)``
        around the UNet (``diffusion_model``) or ``wrapper(executor, x, sigma, model_options, seed)``
        around each guided prediction (``predict_noise``); other types raise ``NotImplementedError``."""
        add_hooks_wrapper(self.hooks, wrapper_type, key, wrapper)

    def remove_wrappers_with_key(self, wrapper_type: str, key: str | None) -> None:
        remove_hooks_wrappers(self.hooks, wrapper_type, key)

    def get_wrappers(self, wrapper_type: str, key: str | None) -> list[Callable]:
        return list(hooks_wrappers(self.hooks, wrapper_type).get(key, []))

    def get_all_wrappers(self, wrapper_type: str) -> list[Callable]:
        return [wrapper for wrappers in hooks_wrappers(self.hooks, wrapper_type).values() for wrapper in wrappers]

    def add_callback(self, call_type: str, callback: Callable) -> None:
        self.add_callback_with_key(call_type, None, callback)

    def add_callback_with_key(self, call_type: str, key: str | None, callback: Callable) -> None:
        raise unsupported_callback(call_type)

    def remove_callbacks_with_key(self, call_type: str, key: str | None) -> None:
        """Nothing to remove: no callback is ever registered."""

    def get_callbacks(self, call_type: str, key: str | None) -> list[Callable]:
        return []

    def get_all_callbacks(self, call_type: str) -> list[Callable]:
        return []

    # -- loading (the engine places weights per use; these keep ComfyUI callers working) -------------
    def patch_model(self, device_to=None, *args, **kwargs) -> torch.nn.Module:
        """The network with the weight patches written in (ComfyUI's ``patch_model``); undo with
        :meth:`unpatch_model`. Nodes that sample go through the engine instead."""
        from ldm.lora.patches import apply_patches
        if getattr(self, "_applied_backups", None) is None:
            self._applied_backups = apply_patches(self.unet, self.patches) if self.patches else {}
        return self.unet

    def unpatch_model(self, device_to=None, unpatch_weights: bool = True, *args, **kwargs) -> None:
        from ldm.lora.patches import restore_weights
        backups = getattr(self, "_applied_backups", None)
        if backups:
            restore_weights(self.unet, backups)
        self._applied_backups = None

    def model_patches_to(self, device) -> None:
        """Nothing to move: hooks run where they are called."""

    def memory_required(self, input_shape) -> int:
        return self.model.memory_required(input_shape)

    def loaded_size(self) -> int:
        return self.model_size()

    def get_nested_additional_models(self) -> list:
        return []

    def cleanup(self) -> None:
        """Nothing to release: the engine owns residency."""


def _patch_table(patches: Mapping[str, list]) -> dict:
    return {key: [(p.strength, id(p.adapter), p.strength_model) for p in found] for key, found in patches.items()}
