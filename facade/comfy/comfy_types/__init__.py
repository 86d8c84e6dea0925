"""``comfy.comfy_types``: ComfyUI's typing helpers (see :mod:`comfy.comfy_types.node_typing`) and
the signature of a UNet wrapper (``set_model_unet_function_wrapper``)."""

from __future__ import annotations

from typing import Callable, List, Optional, Protocol, TypedDict

import torch

from comfy.comfy_types.node_typing import IO, CheckLazyMixin, ComfyNodeABC, FileLocator, InputTypeDict

from _weft_lazy import submodule_getattr

__all__ = ["UnetWrapperFunction", "UnetApplyConds", "UnetParams", "UnetApplyFunction", "IO", "InputTypeDict",
           "ComfyNodeABC", "CheckLazyMixin", "FileLocator"]


class UnetApplyFunction(Protocol):
    """``apply_model(x, t, **conds)`` as a UNet wrapper receives it."""

    def __call__(self, x: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor: ...


class UnetApplyConds(TypedDict):
    c_concat: Optional[torch.Tensor]
    c_crossattn: Optional[torch.Tensor]
    control: Optional[torch.Tensor]
    transformer_options: Optional[dict]


class UnetParams(TypedDict):
    input: torch.Tensor            # [B, C, H, W]
    timestep: torch.Tensor         # [B]
    c: UnetApplyConds
    cond_or_uncond: List[int]      # per batch chunk: 0 = cond, 1 = uncond


UnetWrapperFunction = Callable[[UnetApplyFunction, UnetParams], torch.Tensor]

__getattr__ = submodule_getattr(__name__)
