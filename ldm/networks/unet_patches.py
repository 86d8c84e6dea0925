"""ComfyUI's UNet patches (``transformer_options``), applied while :mod:`ldm.networks.unet` walks its blocks.

Node packs patch the UNet through ``model_options["transformer_options"]`` (ComfyUI's
``ModelPatcher.set_model_*_patch`` / ``set_model_*_replace`` / ``add_wrapper``); the guidance layer
hands that dict to every model call with the batch's ``cond_or_uncond`` and ``sigmas``. The places,
order and signatures below are facts read from ComfyUI (``comfy/ldm/modules/diffusionmodules/
openaimodel.py``: ``UNetModel._forward``, ``forward_timestep_embed``; ``comfy/ldm/modules/
attention.py``: ``BasicTransformerBlock.forward``, ``SpatialTransformer.forward``,
``CrossAttention.forward``; ``comfy/patcher_extension.py``: ``WrapperExecutor``).

``transformer_options``::

    "patches":         {name: [fn, ...]}                  each list runs in order
    "patches_replace": {"attn1" | "attn2": {key: fn}}     key (block kind, block id), or with the
                                                          block's index in its transformer third
    "wrappers":        {"diffusion_model": {key: [fn, ...]}}
    "optimized_attention_override": fn                    fn(attention, q, k, v, heads, **kw)
    anything else (cond_or_uncond, sigmas, uuids, ...)    handed to the patches as is

Where each ``patches`` list runs, and how its functions are called (``opts`` is
``transformer_options``, ``extra`` a transformer block's copy of it):

- ``emb_patch``: after ``time_embed``, before ``label_emb``: ``emb = fn(emb, model_channels, opts)``;
- ``input_block_patch``: after each input block, before its skip is kept: ``h = fn(h, opts)``;
- ``input_block_patch_after_skip``: after the skip is kept: ``h = fn(h, opts)``;
- ``output_block_patch``: before each output block's concatenation: ``h, skip = fn(h, skip, opts)``;
- ``forward_timestep_embed_patch``: ``[(layer class, handler)]`` for a block's layers other than
  ResBlock / transformer / Upsample:
  ``x = handler(layer, x, emb, context, opts, output_shape, None, None, None)``;
- ``attn1_patch`` / ``attn2_patch``: before self- / cross-attention:
  ``n, context, value = fn(n, context, value, extra)``;
- replace ``attn1`` / ``attn2``: instead of the attention core, between ``to_q/k/v`` and
  ``to_out``: ``out = fn(q, k, v, extra)`` with q/k/v [B, L, heads*d];
- ``attn1_output_patch`` / ``attn2_output_patch``: on the attention output, before its residual:
  ``n = fn(n, extra)``;
- ``middle_patch``: after the self-attention residual: ``x = fn(x, extra)``.

While walking, the UNet writes into the dict it was given (as ComfyUI does; the guidance layer
builds a fresh one per call): ``original_shape`` (the latent's), ``transformer_index`` (transformers
passed so far), ``block`` (``("input", i)`` / ``("middle", 0)`` / ``("output", i)``),
``block_index`` (the transformer block inside its SpatialTransformer) and ``activations_shape``
(the feature map entering the transformer). ``extra`` is a per-transformer-block copy without
``patches``/``patches_replace``, plus ``n_heads``, ``dim_head`` and ``attn_precision``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

#: Entries of ``transformer_options`` that change what the UNet computes.
PATCHING_KEYS = ("patches", "patches_replace", "wrappers", "optimized_attention_override")
#: ``transformer_options`` entries that are not copied into a transformer block's ``extra``.
NOT_EXTRA = ("patches", "patches_replace")


def patching_options(transformer_options: Mapping[str, Any] | None) -> dict | None:
    """``transformer_options`` when it asks the UNet for anything (a patch, a replacement, a
    wrapper, an attention override), else None: an unpatched call walks the plain path."""
    if transformer_options and any(transformer_options.get(key) for key in PATCHING_KEYS):
        return transformer_options
    return None


def patched(options: dict | None, name: str, value: Any, *args: Any) -> Any:
    """``value`` passed through each patch registered under ``name``: ``value = fn(value, *args)``."""
    if options is None:
        return value
    for patch in options.get("patches", {}).get(name, ()):
        value = patch(value, *args)
    return value


def entering(options: dict | None, kind: str, index: int) -> dict | None:
    """``options`` with ``block`` set to ComfyUI's name of the block about to run."""
    if options is not None:
        options["block"] = (kind, index)
    return options


def output_block_patched(options: dict | None, h: torch.Tensor,
                         skip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h, skip)`` through the ``output_block_patch`` list, before they are concatenated."""
    if options is not None:
        for patch in options.get("patches", {}).get("output_block_patch", ()):
            h, skip = patch(h, skip, options)
    return h, skip


def timestep_embed_handler(options: dict, layer: torch.nn.Module) -> Callable | None:
    """The first ``forward_timestep_embed_patch`` handler registered for ``layer``'s class."""
    for layer_class, handler in options.get("patches", {}).get("forward_timestep_embed_patch", ()):
        if isinstance(layer, layer_class):
            return handler
    return None


class WrapperChain:
    """ComfyUI's ``WrapperExecutor`` as a wrapper sees it: ``executor(*args, **kwargs)`` runs the
    next wrapper, or the network after the last one; ``class_obj`` is the network."""

    def __init__(self, original: Callable, class_obj: Any, wrappers: list[Callable], index: int = 0):
        self.original = original
        self.class_obj = class_obj
        self.wrappers = wrappers
        self.idx = index

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return WrapperChain(self.original, self.class_obj, self.wrappers, self.idx + 1).execute(*args, **kwargs)

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        if self.idx == len(self.wrappers):
            return self.original(*args, **kwargs)
        return self.wrappers[self.idx](self, *args, **kwargs)


def diffusion_model_wrappers(options: dict | None) -> list[Callable]:
    """The ``diffusion_model`` wrappers, every key's list in insertion order."""
    if options is None:
        return []
    by_key = options.get("wrappers", {}).get("diffusion_model", {})
    return [wrapper for wrappers in by_key.values() for wrapper in wrappers]


def attention_with_heads(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                         mask: torch.Tensor | None = None, attn_precision: Any = None,
                         skip_reshape: bool = False, skip_output_reshape: bool = False,
                         **kwargs: Any) -> torch.Tensor:
    """Scaled dot-product attention in ComfyUI's calling convention (its ``attention_pytorch``).

    ``q`` [B, Lq, heads*d], ``k``/``v`` [B, Lk, heads*d]; with ``skip_reshape`` they are already
    [B, heads, L, d]. ``mask`` [Lq, Lk], [B, Lq, Lk] or [B, heads, Lq, Lk], boolean (True attends)
    or additive. Returns [B, Lq, heads*d], or [B, heads, Lq, d] with ``skip_output_reshape``.
    ``kwargs`` may carry SDPA's ``scale`` and ``enable_gqa``; anything else (``transformer_options``)
    is ignored. ``attn_precision`` is ignored as in ComfyUI's SDPA path (SDPA accumulates in float32).
    """
    if skip_reshape:
        batch, _, _, dim_head = q.shape
    else:
        batch, dim_head = q.shape[0], q.shape[-1] // heads
        # [B, L, heads*d] -> [B, heads, L, d]
        q, k, v = (t.reshape(batch, -1, t.shape[-1] // dim_head, dim_head).transpose(1, 2) for t in (q, k, v))
    if mask is not None and mask.ndim == 2:  # [Lq, Lk] -> [1, Lq, Lk]
        mask = mask.unsqueeze(0)
    if mask is not None and mask.ndim == 3:  # [B, Lq, Lk] -> [B, 1, Lq, Lk]: every head alike
        mask = mask.unsqueeze(1)
    sdpa_kwargs = {key: kwargs[key] for key in ("scale", "enable_gqa") if key in kwargs}
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **sdpa_kwargs)
    if skip_output_reshape:
        return out
    return out.transpose(1, 2).reshape(batch, -1, out.shape[1] * dim_head)  # [B, Lq, heads*d]


def _replacement(replacements: Mapping | None, keys: tuple) -> Callable | None:
    """The replace patch for the first of ``keys`` present (ComfyUI tries the key with the
    transformer index first, then the block's)."""
    if replacements:
        for key in keys:
            if key in replacements:
                return replacements[key]
    return None


def _attend(attention: torch.nn.Module, replacement: Callable | None, n: torch.Tensor,
            context: torch.Tensor | None, value: torch.Tensor | None, extra: dict,
            options: dict) -> torch.Tensor:
    """``attention`` of ``n`` over ``context``/``value``, or a pack's replacement of its core."""
    if replacement is None:
        return attention(n, context, value, options)
    context = n if context is None else context
    value = context if value is None else value
    out = replacement(attention.to_q(n), attention.to_k(context), attention.to_v(value), extra)
    return attention.to_out(out)


def patched_transformer_block(block: Any, x: torch.Tensor, context: torch.Tensor | None,
                              options: dict) -> torch.Tensor:
    """``BasicTransformerBlock.forward`` with ComfyUI's patches, in ComfyUI's order.

    ``x`` [B, L, C]; residual adds are out of place, since a patch may return a tensor it keeps.
    """
    patches = options.get("patches", {})
    replacements = options.get("patches_replace", {})
    extra = {key: value for key, value in options.items() if key not in NOT_EXTRA}
    extra.update(n_heads=block.n_heads, dim_head=block.d_head, attn_precision=block.attn_precision)
    where = options.get("block")
    keys = ((where[0], where[1], options.get("block_index", 0)), where) if where is not None else ()

    n = block.norm1(x)
    context1 = context if block.disable_self_attn else None
    value1 = None
    if "attn1_patch" in patches:
        context1 = n if context1 is None else context1
        value1 = context1
        for patch in patches["attn1_patch"]:
            n, context1, value1 = patch(n, context1, value1, extra)
    n = _attend(block.attn1, _replacement(replacements.get("attn1"), keys), n, context1, value1, extra, options)
    for patch in patches.get("attn1_output_patch", ()):
        n = patch(n, extra)
    x = n + x
    for patch in patches.get("middle_patch", ()):
        x = patch(x, extra)

    n = block.norm2(x)
    context2, value2 = context, None
    if "attn2_patch" in patches:
        value2 = context2
        for patch in patches["attn2_patch"]:
            n, context2, value2 = patch(n, context2, value2, extra)
    n = _attend(block.attn2, _replacement(replacements.get("attn2"), keys), n, context2, value2, extra, options)
    for patch in patches.get("attn2_output_patch", ()):
        n = patch(n, extra)
    x = n + x
    return block.ff(block.norm3(x)) + x
