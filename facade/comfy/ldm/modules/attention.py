"""``comfy.ldm.modules.attention``: Weft's transformer layers and one attention function, by ComfyUI's names.

The classes are Weft's own (:mod:`ldm.networks.unet`), so ``isinstance(layer, CrossAttention)`` holds for
the layers of every UNet Weft loads, and they carry the attributes packs read: ``heads``,
``dim_head``, ``to_q``/``to_k``/``to_v``/``to_out`` (CrossAttention); ``n_heads``, ``d_head``,
``attn1``/``attn2``/``ff``/``norm1-3`` (BasicTransformerBlock); ``transformer_blocks``,
``in_channels``, ``proj_in``/``proj_out`` (SpatialTransformer). Their constructors are Weft's.

Every attention backend name of ComfyUI is one SDPA function with ComfyUI's signature,
``(q, k, v, heads, mask=None, attn_precision=None, skip_reshape=False, skip_output_reshape=False,
**kwargs)`` (:func:`ldm.networks.unet_patches.attention_with_heads`), wrapped as ComfyUI wraps its backends
(:func:`wrap_attn`): called with ``transformer_options`` that hold an
``optimized_attention_override``, the call goes to the override. Weft's layers do not look these
module names up, so assigning to them (a process-wide monkeypatch) does not reach them; the
override in ``transformer_options`` does.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import torch

from _weft_absent import VIDEO, absent_class
from ldm.networks.unet import BasicTransformerBlock, CrossAttention, FeedForward, GEGLU, SpatialTransformer
from ldm.networks.unet_patches import attention_with_heads

__all__ = ["BasicTransformerBlock", "CrossAttention", "FeedForward", "GEGLU", "SpatialTransformer",
           "Normalize", "default", "exists", "wrap_attn", "optimized_attention", "optimized_attention_masked",
           "optimized_attention_for_device", "attention_basic", "attention_pytorch", "attention_split",
           "attention_sub_quad", "attention_xformers", "attention_sage", "attention_flash",
           "register_attention_function", "get_attention_function"]

SAGE_ATTENTION_IS_AVAILABLE = False
FLASH_ATTENTION_IS_AVAILABLE = False


def exists(value: Any) -> bool:
    return value is not None


def default(value: Any, fallback: Any) -> Any:
    return value if value is not None else fallback


def Normalize(in_channels: int, dtype=None, device=None) -> torch.nn.GroupNorm:
    """GroupNorm of 32 groups, eps 1e-6 (the transformers' input norm)."""
    return torch.nn.GroupNorm(32, in_channels, eps=1e-6, affine=True, dtype=dtype, device=device)


def wrap_attn(func: Callable) -> Callable:
    """``func`` made to honour ``transformer_options["optimized_attention_override"]``: the call
    becomes ``override(func, *args, **kwargs)``, flagged so the override may call a wrapped
    function again without coming back to itself."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "_inside_attn_wrapper" not in kwargs:
            override = (kwargs.get("transformer_options") or {}).get("optimized_attention_override")
            if override is not None:
                return override(func, *args, **kwargs, _inside_attn_wrapper=True)
        return func(*args, **kwargs)

    return wrapper


optimized_attention = wrap_attn(attention_with_heads)
optimized_attention_masked = optimized_attention
# ComfyUI's backends; on Weft each is the one SDPA path.
attention_basic = attention_pytorch = attention_split = attention_sub_quad = optimized_attention
attention_xformers = attention_sage = attention_flash = optimized_attention


def optimized_attention_for_device(device: Any = None, mask: bool = False, small_input: bool = False) -> Callable:
    return optimized_attention


REGISTERED_ATTENTION_FUNCTIONS: dict[str, Callable] = {
    "pytorch": attention_pytorch, "sub_quad": attention_sub_quad, "split": attention_split}


def register_attention_function(name: str, func: Callable) -> None:
    """Add a named attention function (the first registration of a name wins, as in ComfyUI)."""
    if name in REGISTERED_ATTENTION_FUNCTIONS:
        logging.warning("Attention function %s already registered, skipping registration.", name)
        return
    REGISTERED_ATTENTION_FUNCTIONS[name] = func


_MISSING = object()


def get_attention_function(name: str, default: Any = _MISSING) -> Callable | None:
    if name == "optimized":
        return optimized_attention
    if name in REGISTERED_ATTENTION_FUNCTIONS:
        return REGISTERED_ATTENTION_FUNCTIONS[name]
    if default is _MISSING:
        raise KeyError(f"Attention function {name} not found.")
    return default


# Video UNet layers (SVD, AnimateDiff's ComfyUI base): packs import them to test isinstance.
SpatialVideoTransformer = absent_class(VIDEO, __name__, "SpatialVideoTransformer", (SpatialTransformer,))
