"""Dense attention backends a MODEL can be switched to (ComfyUI's ModelAttentionBackend), as
``transformer_options["optimized_attention_override"]`` functions: ``override(default, q, k, v,
heads, **kwargs)`` runs the chosen backend instead of ``default``.

Weft has one backend, PyTorch's ``scaled_dot_product_attention``; ComfyUI's "comfy kitchen
attention" (INT8, from the comfy-kitchen package) is not available.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor

from ldm.networks.unet_patches import attention_with_heads


def pytorch_attention(default: Callable, q: Tensor, k: Tensor, v: Tensor, heads: int, **kwargs: Any) -> Tensor:
    """SDPA in ComfyUI's calling convention, whatever ``default`` the layer had."""
    return attention_with_heads(q, k, v, heads, **kwargs)


#: Backend name (the node's choice) -> override.
BACKENDS: dict[str, Callable] = {"pytorch attention": pytorch_attention}
