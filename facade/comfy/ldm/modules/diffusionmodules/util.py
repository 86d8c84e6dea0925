"""``comfy.ldm.modules.diffusionmodules.util``: the UNet's small helpers, by ComfyUI's names.

``timestep_embedding`` is Weft's (:func:`ldm.networks.unet.timestep_embedding`, cos first). ``conv_nd``,
``linear``, ``normalization`` and ``GroupNorm32`` left ComfyUI in December 2023 (for
``comfy.ops``); they are here because packs written before still import them.
``make_beta_schedule`` knows the schedules Weft samples with ("linear", "sqrt_linear").
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.utils.checkpoint
from torch import nn

from ldm.networks.unet import timestep_embedding as _weft_timestep_embedding
from ldm.sampling.model_sampling import ScheduleConfig, make_betas

#: ComfyUI's schedule names -> Weft's (CompVis "linear" is evenly spaced in sqrt space).
_BETA_SCHEDULES = {"linear": "scaled_linear", "sqrt_linear": "linear"}


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000,
                       repeat_only: bool = False) -> torch.Tensor:
    """Sinusoidal embedding [N, dim] of timesteps [N]; ``repeat_only`` repeats each value instead."""
    if repeat_only:
        return timesteps[:, None].repeat(1, dim)
    return _weft_timestep_embedding(timesteps, dim, max_period)


def zero_module(module: nn.Module) -> nn.Module:
    """``module`` with every parameter set to zero."""
    for parameter in module.parameters():
        parameter.detach().zero_()
    return module


def scale_module(module: nn.Module, scale: float) -> nn.Module:
    for parameter in module.parameters():
        parameter.detach().mul_(scale)
    return module


def mean_flat(tensor: torch.Tensor) -> torch.Tensor:
    """The mean over every dimension but the batch."""
    return tensor.mean(dim=list(range(1, tensor.ndim)))


def checkpoint(func: Callable, inputs: tuple, params: Any, flag: bool) -> Any:
    """``func(*inputs)``; with ``flag`` (and gradients on) through activation checkpointing."""
    if flag and torch.is_grad_enabled():
        return torch.utils.checkpoint.checkpoint(func, *inputs, use_reentrant=False)
    return func(*inputs)


def _layer(kind: str, dims: int) -> type:
    layers = {1: getattr(nn, kind + "1d"), 2: getattr(nn, kind + "2d"), 3: getattr(nn, kind + "3d")}
    if dims not in layers:
        raise ValueError(f"unsupported dimensions: {dims}")
    return layers[dims]


def avg_pool_nd(dims: int, *args: Any, **kwargs: Any) -> nn.Module:
    return _layer("AvgPool", dims)(*args, **kwargs)


def conv_nd(dims: int, *args: Any, **kwargs: Any) -> nn.Module:
    return _layer("Conv", dims)(*args, **kwargs)


def linear(*args: Any, **kwargs: Any) -> nn.Linear:
    return nn.Linear(*args, **kwargs)


class GroupNorm32(nn.GroupNorm):
    """Group norm computed in float32, returned in the input's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


def normalization(channels: int, dtype=None) -> GroupNorm32:
    return GroupNorm32(32, channels, dtype=dtype)


def make_beta_schedule(schedule: str, n_timestep: int, linear_start: float = 1e-4, linear_end: float = 2e-2,
                       cosine_s: float = 8e-3) -> torch.Tensor:
    """The float64 betas [n_timestep] of a DDPM schedule ("linear" or "sqrt_linear")."""
    if schedule not in _BETA_SCHEDULES:
        raise ValueError(f"schedule '{schedule}' unknown (Weft has {sorted(_BETA_SCHEDULES)}).")
    return make_betas(ScheduleConfig(beta_schedule=_BETA_SCHEDULES[schedule], linear_start=linear_start,
                                     linear_end=linear_end, timesteps=n_timestep))
