"""The latent diffusion UNet (CompVis ``openaimodel.UNetModel`` / SGM layout), attribute names = keys.

Structure (Rombach et al. 2022, after Dhariwal & Nichol's ADM UNet): ``input_blocks`` (a 3x3 conv,
then per resolution level ``num_res_blocks`` ResBlocks, each optionally followed by a
SpatialTransformer, and a strided-conv Downsample between levels), ``middle_block``
(ResBlock, SpatialTransformer, ResBlock), ``output_blocks`` (mirror image, each taking the skip
of its input block by concatenation, Upsample at the end of a level), ``out`` (GroupNorm, SiLU,
conv). ``time_embed`` turns the sinusoidal timestep embedding into ``emb``; ``label_emb`` adds a
class/ADM vector to it (SDXL: pooled text + size embeddings; x4 upscaler: noise level).

The CompVis LDMs of the paper itself build on the same skeleton with ADM's options: attention
through ADM's ``AttentionBlock`` instead of a SpatialTransformer where there is no cross-attention
(``legacy_attention``; ``ldm.networks.legacy_attention``), FiLM ResBlocks
(``use_scale_shift_norm``), and ResBlocks that resample instead of the strided / upsampling convs
(``resblock_updown``). All three are read off the state dict's keys and shapes.

Every attribute is named after its checkpoint key (after ``model.diffusion_model.``), so
``load_state_dict`` is the whole loader; the layers also carry the attribute names ComfyUI's
classes have (``heads``, ``dim_head``, ``n_heads``, ``d_head``, ``in_channels``, ...), which node
packs read. Attention runs through ``torch.nn.functional.scaled_dot_product_attention``
(``ldm.networks.ops.attention``: sliced over the queries when the engine says memory is short).
Activations may be channels-last: the transformer's reshapes are views then, and residual adds
happen in place on fresh branch outputs.

``forward(..., transformer_options=...)`` honours ComfyUI's UNet patches (``ldm.networks.unet_patches``):
an options dict without patches walks the plain path, so unpatched calls cost nothing extra.
``forward(..., control=...)`` adds ControlNet / T2I-Adapter residuals where ComfyUI adds them
(:func:`add_control`; the networks are ``ldm.control``'s).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ldm.networks.legacy_attention import AttentionBlock
from ldm.networks.ops import META, Operations, SlicedAttention, attention
from ldm.networks.unet_patches import (WrapperChain, attention_with_heads, diffusion_model_wrappers, entering,
                                       output_block_patched, patched, patched_transformer_block, patching_options,
                                       timestep_embed_handler)

log = logging.getLogger(__name__)

GROUPS = 32  # every GroupNorm of the CompVis UNet uses 32 groups
#: SDXL's label embeds each size/crop/score scalar 256 wide (Podell et al. 2023; ``ldm.networks.adm``).
SIZE_EMBED_DIM = 256


class UNetConfigError(ValueError):
    """A state dict does not describe a UNet this module can build."""


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int
    out_channels: int
    model_channels: int
    channel_mult: tuple[int, ...]
    num_res_blocks: tuple[int, ...]  # per level
    transformer_depth: tuple[int, ...]  # per input ResBlock, in order; 0 = no attention after it
    transformer_depth_middle: int  # -1 = the middle block is a single ResBlock
    transformer_depth_output: tuple[int, ...]  # per output block, in order
    context_dim: int | None
    use_linear_in_transformer: bool
    num_heads: int = -1  # fixed head count (SD1, x4 upscaler: 8) ...
    num_head_channels: int = -1  # ... or fixed head width (SD2, SDXL: 64)
    adm_in_channels: int | None = None  # SDXL "sequential" label embedding: an MLP from this width
    num_classes: int | None = None  # x4 upscaler: label_emb is an Embedding over noise levels
    disable_self_attn: tuple[bool, ...] = ()  # per level: attn1 attends to the context (x4 upscaler)
    disable_middle_self_attn: bool = False
    time_embed_dim: int | None = None  # default 4 * model_channels
    size_embed_dim: int = SIZE_EMBED_DIM  # SDXL label: width of each size/crop/score embedding
    # CompVis LDMs without cross-attention: attention layers are ADM's AttentionBlock
    # (``ldm.networks.legacy_attention``); depth entries are then 0 or 1 (there or not).
    legacy_attention: bool = False
    use_scale_shift_norm: bool = False  # ResBlocks apply emb as FiLM: norm(h) * (1 + scale) + shift
    resblock_updown: bool = False  # levels change resolution in ResBlocks (avg-pool / nearest x2)

    @property
    def levels(self) -> int:
        return len(self.channel_mult)

    @property
    def emb_dim(self) -> int:
        return self.time_embed_dim or 4 * self.model_channels

    def heads(self, channels: int) -> tuple[int, int]:
        """``(number of heads, head width)`` of a transformer over ``channels`` channels."""
        if self.num_head_channels > 0:
            if channels % self.num_head_channels:
                raise UNetConfigError(
                    f"{channels} channels do not split into heads of {self.num_head_channels}")
            return channels // self.num_head_channels, self.num_head_channels
        if self.num_heads <= 0 or channels % self.num_heads:
            raise UNetConfigError(f"{channels} channels do not split into {self.num_heads} heads")
        return self.num_heads, channels // self.num_heads

    def self_attn_disabled(self, level: int) -> bool:
        return bool(self.disable_self_attn[level]) if self.disable_self_attn else False


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [B, dim] of (possibly fractional) timesteps: ``cat(cos, sin)``.

    Frequencies ``exp(-ln(max_period) * i / half)`` for ``i < half`` (DDPM / ADM convention, cos first).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32,
                                                           device=timesteps.device) / half)
    args = timesteps.float()[:, None] * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


class CrossAttention(SlicedAttention, nn.Module):
    """Multi-head attention of ``x`` over ``context`` (or itself): to_q/to_k/to_v, to_out.0.

    ``value`` (ComfyUI's argument) feeds ``to_v`` instead of ``context`` when an attention patch
    gave one; a ``transformer_options["optimized_attention_override"]`` replaces the core as
    ``override(attention_with_heads, q, k, v, heads, attn_precision=..., transformer_options=...)``
    with q/k/v [B, L, heads*d] (ComfyUI's layout).
    """

    attn_precision = None  # ComfyUI's per-layer upcast request; SDPA accumulates in float32 anyway

    def __init__(self, query_dim: int, context_dim: int, heads: int, dim_head: int, ops: Operations):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.dim_head = dim_head
        self.to_q = ops.Linear(query_dim, inner, bias=False)
        self.to_k = ops.Linear(context_dim, inner, bias=False)
        self.to_v = ops.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(ops.Linear(inner, query_dim))  # index 1 was a Dropout

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, value: torch.Tensor | None = None,
                transformer_options: dict | None = None) -> torch.Tensor:
        context = x if context is None else context
        value = context if value is None else value
        override = transformer_options.get("optimized_attention_override") if transformer_options else None
        if override is not None:
            # flagged as ComfyUI's wrapped backends do, so the override may call a facade backend
            out = override(attention_with_heads, self.to_q(x), self.to_k(context), self.to_v(value), self.heads,
                           attn_precision=self.attn_precision, transformer_options=transformer_options,
                           _inside_attn_wrapper=True)
            return self.to_out[0](out)
        batch = x.shape[0]
        # [B, L, heads*d] -> [B, heads, L, d]
        q, k, v = (t.view(batch, -1, self.heads, t.shape[-1] // self.heads).transpose(1, 2)
                   for t in (self.to_q(x), self.to_k(context), self.to_v(value)))
        out = attention(q, k, v, self.attention_slice_bytes)
        out = out.transpose(1, 2).reshape(batch, -1, out.shape[1] * out.shape[3])
        return self.to_out[0](out)


class GEGLU(nn.Module):
    """Gated GELU (Shazeer 2020): ``a * gelu(b)`` with ``a, b`` the halves of one projection."""

    def __init__(self, dim: int, inner: int, ops: Operations):
        super().__init__()
        self.proj = ops.Linear(dim, inner * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, ops: Operations, mult: int = 4):
        super().__init__()
        inner = dim * mult
        # keys ff.net.0.proj and ff.net.2; net.1 was a Dropout
        self.net = nn.Sequential(GEGLU(dim, inner, ops), nn.Identity(), ops.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](self.net[0](x))


class BasicTransformerBlock(nn.Module):
    """Self-attention, cross-attention, gated feed-forward; each pre-normed, each residual."""

    # ComfyUI's names for what this block always is (packs read them): no ff_in, no temporal swap
    attn_precision = None
    ff_in = False
    is_res = True
    switch_temporal_ca_to_sa = False

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int, disable_self_attn: bool,
                 ops: Operations):
        super().__init__()
        self.n_heads = heads
        self.d_head = dim_head
        self.disable_self_attn = disable_self_attn
        self.attn1 = CrossAttention(dim, context_dim if disable_self_attn else dim, heads, dim_head, ops)
        self.ff = FeedForward(dim, ops)
        self.attn2 = CrossAttention(dim, context_dim, heads, dim_head, ops)
        self.norm1 = ops.LayerNorm(dim)
        self.norm2 = ops.LayerNorm(dim)
        self.norm3 = ops.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                transformer_options: dict | None = None) -> torch.Tensor:
        if transformer_options is not None:
            return patched_transformer_block(self, x, context, transformer_options)
        # Residual adds in place on the fresh branch outputs (a + b == b + a exactly): no new
        # activation-sized buffers, and autograd-safe (a linear layer's backward needs no output).
        x = self.attn1(self.norm1(x), context if self.disable_self_attn else None).add_(x)
        x = self.attn2(self.norm2(x), context).add_(x)
        return self.ff(self.norm3(x)).add_(x)


class SpatialTransformer(nn.Module):
    """Transformer over the pixels of a feature map, projected in and out by 1x1 conv or linear."""

    def __init__(self, channels: int, heads: int, dim_head: int, depth: int, context_dim: int,
                 use_linear: bool, disable_self_attn: bool, ops: Operations):
        super().__init__()
        inner = heads * dim_head
        self.in_channels = channels
        self.use_linear = use_linear
        self.norm = ops.GroupNorm(GROUPS, channels, eps=1e-6)
        self.proj_in = ops.Linear(channels, inner) if use_linear else ops.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(inner, heads, dim_head, context_dim, disable_self_attn, ops)
            for _ in range(depth))
        self.proj_out = ops.Linear(inner, channels) if use_linear else ops.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                transformer_options: dict | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        if transformer_options is not None:
            transformer_options["activations_shape"] = [b, c, h, w]
        hidden = self.norm(x)
        if not self.use_linear:
            hidden = self.proj_in(hidden)
        # [B, C, H, W] -> [B, H*W, C]: a free view when the map is channels-last (NHWC in memory).
        channels_last = hidden.is_contiguous(memory_format=torch.channels_last)
        hidden = hidden.permute(0, 2, 3, 1).reshape(b, h * w, -1)
        if self.use_linear:
            hidden = self.proj_in(hidden)
        for index, block in enumerate(self.transformer_blocks):
            if transformer_options is not None:
                transformer_options["block_index"] = index
            hidden = block(hidden, context, transformer_options)
        if self.use_linear:
            hidden = self.proj_out(hidden)
        # [B, H*W, C] -> [B, C, H, W], back in the input's memory layout (a view for channels-last).
        hidden = hidden.reshape(b, h, w, -1).permute(0, 3, 1, 2)
        if not channels_last:
            hidden = hidden.contiguous()
        if not self.use_linear:
            hidden = self.proj_out(hidden)
        return hidden.add_(x)


class TimestepBlock(nn.Module):
    """A layer whose forward takes the timestep embedding: ``layer(x, emb)`` (ComfyUI's base class,
    which packs test with ``isinstance`` and subclass)."""


def _resample(x: torch.Tensor, direction: str) -> torch.Tensor:
    """ADM's parameter-free resampling inside up/down ResBlocks: 2x2 average pool or nearest x2."""
    if direction == "down":
        return F.avg_pool2d(x, kernel_size=2, stride=2)
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class ResBlock(TimestepBlock):
    """GroupNorm-SiLU-conv, plus the projected time embedding, GroupNorm-SiLU-conv, plus the skip.

    Two ADM variants some CompVis LDMs use: ``use_scale_shift_norm`` (the embedding projects to
    ``2 * out_channels``, a scale and a shift applied after the second GroupNorm) and
    ``resample`` "down" / "up" (``resblock_updown``: this block halves or doubles the resolution,
    features and skip alike, between the first SiLU and the first conv).
    """

    # ComfyUI's names for what this block is (the first two set per instance; packs may read
    # them off the class)
    updown = False
    use_scale_shift_norm = False
    skip_t_emb = False
    exchange_temb_dims = False

    def __init__(self, channels: int, emb_channels: int, out_channels: int, ops: Operations, *,
                 use_scale_shift_norm: bool = False, resample: str | None = None):
        super().__init__()
        if resample not in (None, "down", "up"):
            raise ValueError(f"resample must be None, 'down' or 'up', got {resample!r}")
        self.channels = channels
        self.emb_channels = emb_channels
        self.out_channels = out_channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.resample = resample
        self.updown = resample is not None  # ComfyUI's flag
        self.in_layers = nn.Sequential(ops.GroupNorm(GROUPS, channels), nn.SiLU(),
                                       ops.Conv2d(channels, out_channels, 3, padding=1))
        emb_out = 2 * out_channels if use_scale_shift_norm else out_channels
        self.emb_layers = nn.Sequential(nn.SiLU(), ops.Linear(emb_channels, emb_out))
        self.out_layers = nn.Sequential(ops.GroupNorm(GROUPS, out_channels), nn.SiLU(), nn.Identity(),
                                        ops.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = (nn.Identity() if channels == out_channels
                                else ops.Conv2d(channels, out_channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.resample is None:
            h = self.in_layers(x)
        else:
            h = _resample(self.in_layers[1](self.in_layers[0](x)), self.resample)
            x = _resample(x, self.resample)
            h = self.in_layers[2](h)
        emb_out = self.emb_layers(emb)[:, :, None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = torch.addcmul(shift, self.out_layers[0](h), 1 + scale)
            h = self.out_layers[3](self.out_layers[1](h))
        else:
            h = self.out_layers(h.add_(emb_out))
        return h.add_(self.skip_connection(x))


class Downsample(nn.Module):
    use_conv = True
    dims = 2

    def __init__(self, channels: int, out_channels: int, ops: Operations):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels
        self.op = ops.Conv2d(channels, out_channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    use_conv = True
    dims = 2

    def __init__(self, channels: int, out_channels: int, ops: Operations):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels
        self.conv = ops.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, output_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        # Nearest x2; to the next skip's size ([B, C, H, W]) when a latent side was odd.
        if output_shape is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=tuple(output_shape[-2:]), mode="nearest")
        return self.conv(x)


class UNetBlock(nn.Sequential, TimestepBlock):
    """CompVis' TimestepEmbedSequential: each layer gets what it needs (emb, context, output shape).

    A ``Sequential`` built as ``UNetBlock(*layers)``, like ComfyUI's. With ``transformer_options``
    (patches active) it counts ``transformer_index`` and lets ``forward_timestep_embed_patch``
    handlers run the other layers, as ComfyUI's ``forward_timestep_embed`` does.
    """

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor | None = None,
                transformer_options: dict | None = None,
                output_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, TimestepBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context, transformer_options)
                if transformer_options is not None and "transformer_index" in transformer_options:
                    transformer_options["transformer_index"] += 1
            elif isinstance(layer, Upsample):
                x = layer(x, output_shape)
            elif transformer_options is not None and (handler := timestep_embed_handler(transformer_options, layer)):
                x = handler(layer, x, emb, context, transformer_options, output_shape, None, None, None)
            else:
                x = layer(x)
        return x


def add_control(h: torch.Tensor, control: dict | None, name: str) -> torch.Tensor:
    """``h`` plus the next residual of ``control[name]`` (ComfyUI's ``apply_control``).

    ``control`` is ``{"input": [...], "middle": [...], "output": [...]}``; each list is consumed
    from its end: ``"input"`` after each input block (T2I-Adapters), ``"middle"`` after the middle
    block, ``"output"`` on each skip as the output blocks take it (ControlNets: the last residual
    belongs to the deepest input block). ``None`` entries skip a block; a residual whose shape does
    not fit (a T2I-Adapter made for another layout) is left out with a warning, as in ComfyUI.
    """
    if not control or not control.get(name):
        return h
    residual = control[name].pop()
    if residual is None:
        return h
    if residual.shape[1:] != h.shape[1:] or residual.shape[0] not in (1, h.shape[0]):
        log.warning("control residual %s does not fit the %s features %s; left out",
                    tuple(residual.shape), name, tuple(h.shape))
        return h
    return h + residual.to(h)


def spatial_transformer(config: UNetConfig, channels: int, depth: int, disable_self_attn: bool,
                        ops: Operations) -> SpatialTransformer:
    """The transformer of a UNet block ``channels`` wide, its heads as ``config`` sets them."""
    heads, dim_head = config.heads(channels)
    return SpatialTransformer(channels, heads, dim_head, depth, config.context_dim,
                              config.use_linear_in_transformer, disable_self_attn, ops)


def attention_layer(config: UNetConfig, channels: int, depth: int, disable_self_attn: bool,
                    ops: Operations) -> nn.Module:
    """The attention after a ResBlock: a SpatialTransformer, or ADM's AttentionBlock in the
    CompVis LDMs without cross-attention (``config.legacy_attention``)."""
    if config.legacy_attention:
        return AttentionBlock(channels, config.heads(channels)[0], ops)
    return spatial_transformer(config, channels, depth, disable_self_attn, ops)


def res_block(config: UNetConfig, channels: int, out_channels: int, ops: Operations,
              resample: str | None = None) -> ResBlock:
    return ResBlock(channels, config.emb_dim, out_channels, ops,
                    use_scale_shift_norm=config.use_scale_shift_norm, resample=resample)


def encoder_blocks(config: UNetConfig, ops: Operations) -> tuple[nn.ModuleList, UNetBlock, list[int]]:
    """The UNet's ``input_blocks`` and ``middle_block`` (a ControlNet copies both) and the
    channel count after each input block (the skip connections' widths)."""
    mc = config.model_channels
    blocks = nn.ModuleList([UNetBlock(ops.Conv2d(config.in_channels, mc, 3, padding=1))])
    widths = [mc]
    ch, res_index = mc, 0
    for level, mult in enumerate(config.channel_mult):
        for _ in range(config.num_res_blocks[level]):
            layers: list[nn.Module] = [res_block(config, ch, mult * mc, ops)]
            ch = mult * mc
            depth = config.transformer_depth[res_index]
            res_index += 1
            if depth > 0:
                layers.append(attention_layer(config, ch, depth, config.self_attn_disabled(level), ops))
            blocks.append(UNetBlock(*layers))
            widths.append(ch)
        if level != config.levels - 1:
            down = res_block(config, ch, ch, ops, "down") if config.resblock_updown else Downsample(ch, ch, ops)
            blocks.append(UNetBlock(down))
            widths.append(ch)
    middle: list[nn.Module] = [res_block(config, ch, ch, ops)]
    if config.transformer_depth_middle > 0:
        depth = config.transformer_depth_middle
        middle += [attention_layer(config, ch, depth, config.disable_middle_self_attn, ops),
                   res_block(config, ch, ch, ops)]
    return blocks, UNetBlock(*middle), widths


class UNetModel(nn.Module):
    def __init__(self, config: UNetConfig, ops: Operations = META):
        super().__init__()
        self.config = config
        mc, emb_dim = config.model_channels, config.emb_dim
        self.time_embed = nn.Sequential(ops.Linear(mc, emb_dim), nn.SiLU(), ops.Linear(emb_dim, emb_dim))
        if config.num_classes is not None:
            self.label_emb = ops.Embedding(config.num_classes, emb_dim)
        elif config.adm_in_channels is not None:
            self.label_emb = nn.Sequential(nn.Sequential(
                ops.Linear(config.adm_in_channels, emb_dim), nn.SiLU(), ops.Linear(emb_dim, emb_dim)))

        self.input_blocks, self.middle_block, skip_channels = encoder_blocks(config, ops)
        ch = skip_channels[-1]

        self.output_blocks = nn.ModuleList()
        out_index = 0
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            for i in range(config.num_res_blocks[level] + 1):
                layers: list[nn.Module] = [res_block(config, ch + skip_channels.pop(), mult * mc, ops)]
                ch = mult * mc
                depth = config.transformer_depth_output[out_index]
                out_index += 1
                if depth > 0:
                    layers.append(attention_layer(config, ch, depth, config.self_attn_disabled(level), ops))
                if level and i == config.num_res_blocks[level]:
                    up = res_block(config, ch, ch, ops, "up") if config.resblock_updown else Upsample(ch, ch, ops)
                    layers.append(up)
                self.output_blocks.append(UNetBlock(*layers))

        self.out = nn.Sequential(ops.GroupNorm(GROUPS, ch), nn.SiLU(),
                                 ops.Conv2d(ch, config.out_channels, 3, padding=1))

    # ComfyUI's attribute names for the configuration (packs read them off the diffusion model)
    @property
    def model_channels(self) -> int:
        return self.config.model_channels

    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    @property
    def out_channels(self) -> int:
        return self.config.out_channels

    @property
    def num_classes(self) -> int | str | None:
        """The label input: a class count (x4 upscaler), ``"sequential"`` (SDXL's vector) or None."""
        if self.config.num_classes is not None:
            return self.config.num_classes
        return "sequential" if self.config.adm_in_channels is not None else None

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None = None,
                y: torch.Tensor | None = None, transformer_options: dict | None = None,
                control: dict | None = None, **extra) -> torch.Tensor:
        """The raw network output (eps or v) for latents ``x`` [B, C, h, w] at ``timesteps`` [B].

        ``context`` [B, tokens, context_dim] is the cross-attention conditioning; ``y`` is the
        label input: [B, adm_in_channels] for SDXL, integer noise levels [B] for the x4 upscaler.
        ``transformer_options`` carries ComfyUI's UNet patches (see ``ldm.networks.unet_patches``); its
        ``diffusion_model`` wrappers run around the whole walk, as ComfyUI's do. ``control`` is
        ComfyUI's ControlNet / T2I-Adapter residual dict (see :func:`add_control`).
        """
        if extra:
            raise TypeError(f"UNetModel.forward got unexpected arguments {sorted(extra)}")
        options = patching_options(transformer_options)
        wrappers = diffusion_model_wrappers(options)
        if wrappers:  # ComfyUI's wrapper call: (x, timesteps, context, y, control, transformer_options)
            return WrapperChain(self._walk, self, wrappers).execute(x, timesteps, context, y, control, options)
        return self._walk(x, timesteps, context, y, control, options)

    def _walk(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None = None,
              y: torch.Tensor | None = None, control: dict | None = None,
              transformer_options: dict | None = None) -> torch.Tensor:
        """The network proper; ``transformer_options`` is None on the plain path."""
        # Residual lists are consumed from their ends (ComfyUI's order); the caller's stay whole.
        control = {name: list(residuals) for name, residuals in control.items()} if control else None
        options = transformer_options
        if options is not None:
            options["original_shape"] = list(x.shape)
            options["transformer_index"] = 0
        timesteps = torch.as_tensor(timesteps, device=x.device)
        if timesteps.ndim == 0:
            timesteps = timesteps.expand(x.shape[0])
        emb = self.time_embed(timestep_embedding(timesteps, self.config.model_channels).to(x.dtype))
        emb = patched(options, "emb_patch", emb, self.config.model_channels, options)
        if hasattr(self, "label_emb"):
            if y is None:
                raise ValueError("this UNet needs a label input y (SDXL size/pooled vector or noise level)")
            if isinstance(self.label_emb, nn.Embedding):
                emb = emb + self.label_emb(y.to(x.device).long(), out_dtype=x.dtype)
            else:
                emb = emb + self.label_emb(y.to(device=x.device, dtype=x.dtype))
        if context is not None:
            context = context.to(device=x.device, dtype=x.dtype)

        skips = []
        h = x
        for index, block in enumerate(self.input_blocks):
            h = block(h, emb, context, entering(options, "input", index))
            h = add_control(h, control, "input")
            h = patched(options, "input_block_patch", h, options)
            skips.append(h)
            h = patched(options, "input_block_patch_after_skip", h, options)
        h = self.middle_block(h, emb, context, entering(options, "middle", 0))
        h = add_control(h, control, "middle")
        for index, block in enumerate(self.output_blocks):
            entering(options, "output", index)
            h, skip = output_block_patched(options, h, add_control(skips.pop(), control, "output"))
            h = torch.cat([h, skip], dim=1)
            h = block(h, emb, context, options, skips[-1].shape if skips else None)
        return self.out(h)


# --- reading the configuration from a state dict --------------------------------------------------

def _block_indices(state_dict: dict, prefix: str) -> list[int]:
    found = {int(k[len(prefix):].split(".", 1)[0]) for k in state_dict if k.startswith(prefix)}
    return sorted(found)


def _transformer_depth(state_dict: dict, prefix: str) -> int:
    return len(_block_indices(state_dict, prefix + "transformer_blocks."))


TRANSFORMER = "transformer"
LEGACY = "legacy"


def _attention_at(state_dict: dict, prefix: str) -> tuple[str | None, int]:
    """``(kind, depth)`` of the attention layer at ``prefix`` (a block's ``.1.``): a
    SpatialTransformer (depth = its blocks), ADM's AttentionBlock (``qkv``; depth 1) or none."""
    if prefix + "qkv.weight" in state_dict:
        return LEGACY, 1
    depth = _transformer_depth(state_dict, prefix)
    return (TRANSFORMER, depth) if depth else (None, 0)


def _resblock_downsamplers(state_dict: dict, output_indices: list[int]) -> set[int]:
    """Input-block indices of the down-sampling ResBlocks of a ``resblock_updown`` UNet; empty
    for a UNet that resamples with convolutions.

    Such a ResBlock looks like a level's own ResBlocks; only its place tells it. The output side
    shows the levels: each but the last ends in an up-sampling ResBlock (a second ResBlock, at
    layer 1 or, after an attention layer, 2) and holds ``num_res_blocks + 1`` blocks.
    """
    ends = [position for position, i in enumerate(output_indices)
            if f"output_blocks.{i}.1.in_layers.0.weight" in state_dict
            or f"output_blocks.{i}.2.in_layers.0.weight" in state_dict]
    if not ends:
        return set()
    sizes, start = [], 0  # output blocks per level, deepest level first
    for end in ends:
        sizes.append(end - start + 1)
        start = end + 1
    sizes.append(len(output_indices) - start)
    downsamplers, index = set(), 1
    for blocks in list(reversed(sizes))[:-1]:  # levels from the top; the last has no downsampler
        index += blocks - 1
        downsamplers.add(index)
        index += 1
    return downsamplers


def unet_config_from_state_dict(state_dict: dict, *, num_heads: int = -1,
                                num_head_channels: int = -1) -> UNetConfig:
    """The :class:`UNetConfig` of UNet weights keyed as in CompVis' layout (no key prefix).

    Head counts are not visible in tensor shapes (q/k/v are ``inner x inner`` for any split), so
    the caller passes the family's convention (see ``ldm.loading.detect``). Read from the shapes:
    the levels, the attention layers (SpatialTransformer with its depth, context width and
    projection kind, or ADM's AttentionBlock), the label input, FiLM ResBlocks
    (``use_scale_shift_norm``) and ResBlock resampling (``resblock_updown``).
    """
    def shape(key: str) -> tuple[int, ...]:
        if key not in state_dict:
            raise UNetConfigError(f"UNet weights lack {key!r}")
        return tuple(state_dict[key].shape)

    conv_in = shape("input_blocks.0.0.weight")
    model_channels, in_channels = conv_in[0], conv_in[1]
    out_channels = shape("out.2.weight")[0]
    time_embed_dim = shape("time_embed.0.weight")[0]

    num_classes = adm_in_channels = None
    if "label_emb.weight" in state_dict:
        num_classes = shape("label_emb.weight")[0]
    elif "label_emb.0.0.weight" in state_dict:
        adm_in_channels = shape("label_emb.0.0.weight")[1]

    output_indices = _block_indices(state_dict, "output_blocks.")
    if output_indices != list(range(len(output_indices))):
        raise UNetConfigError("the UNet's output blocks are not numbered 0, 1, 2, ...")
    downsamplers = _resblock_downsamplers(state_dict, output_indices)

    channel_mult: list[int] = []
    num_res_blocks: list[int] = []
    transformer_depth: list[int] = []
    disable_self_attn: list[bool] = []
    attention_kinds: set[str] = set()
    context_dim = None
    use_linear = False
    res_in_level = 0
    level_channels = None
    for index in _block_indices(state_dict, "input_blocks.")[1:]:
        prefix = f"input_blocks.{index}."
        if prefix + "0.op.weight" in state_dict or index in downsamplers:  # closes the level
            if level_channels is None:
                raise UNetConfigError(f"input block {index} downsamples a level without ResBlocks")
            channel_mult.append(level_channels // model_channels)
            num_res_blocks.append(res_in_level)
            disable_self_attn.append(disable_self_attn_level)
            res_in_level, level_channels = 0, None
            continue
        if prefix + "0.in_layers.0.weight" not in state_dict:
            raise UNetConfigError(f"input block {index} is neither a ResBlock nor a Downsample")
        channels = shape(prefix + "0.out_layers.3.weight")[0]
        if level_channels is None:
            level_channels, disable_self_attn_level = channels, False
        res_in_level += 1
        kind, depth = _attention_at(state_dict, prefix + "1.")
        transformer_depth.append(depth)
        if kind == TRANSFORMER:
            use_linear = len(shape(prefix + "1.proj_in.weight")) == 2
            block = prefix + "1.transformer_blocks.0."
            context_dim = shape(block + "attn2.to_k.weight")[1]
            disable_self_attn_level = shape(block + "attn1.to_k.weight")[1] != channels
        if kind is not None:
            attention_kinds.add(kind)
    if level_channels is None:
        raise UNetConfigError("the last resolution level of the UNet has no ResBlock")
    channel_mult.append(level_channels // model_channels)
    num_res_blocks.append(res_in_level)
    disable_self_attn.append(disable_self_attn_level)

    if "middle_block.1.in_layers.0.weight" in state_dict:
        raise UNetConfigError("a middle block without attention between its ResBlocks is not supported")
    middle_kind, middle_depth = _attention_at(state_dict, "middle_block.1.")
    disable_middle = False
    if middle_kind == TRANSFORMER:
        mid_channels = shape("middle_block.0.out_layers.3.weight")[0]
        disable_middle = shape("middle_block.1.transformer_blocks.0.attn1.to_k.weight")[1] != mid_channels

    output_attention = [_attention_at(state_dict, f"output_blocks.{i}.1.") for i in output_indices]
    attention_kinds |= {kind for kind in [middle_kind] + [kind for kind, _ in output_attention] if kind}
    if len(attention_kinds) > 1:
        raise UNetConfigError("the UNet mixes spatial transformers and ADM attention blocks")
    expected_outputs = sum(n + 1 for n in num_res_blocks)
    if len(output_attention) != expected_outputs:
        raise UNetConfigError(f"{len(output_attention)} output blocks for {expected_outputs} expected "
                              f"from the input side")
    # FiLM ResBlocks project the embedding to a scale and a shift: twice their width.
    scale_shift = shape("middle_block.0.emb_layers.1.weight")[0] == 2 * shape("middle_block.0.out_layers.3.weight")[0]

    return UNetConfig(
        in_channels=in_channels, out_channels=out_channels, model_channels=model_channels,
        channel_mult=tuple(channel_mult), num_res_blocks=tuple(num_res_blocks),
        transformer_depth=tuple(transformer_depth), transformer_depth_middle=middle_depth or -1,
        transformer_depth_output=tuple(depth for _, depth in output_attention), context_dim=context_dim,
        use_linear_in_transformer=use_linear, num_heads=num_heads, num_head_channels=num_head_channels,
        adm_in_channels=adm_in_channels, num_classes=num_classes,
        disable_self_attn=tuple(disable_self_attn) if any(disable_self_attn) else (),
        disable_middle_self_attn=disable_middle,
        time_embed_dim=time_embed_dim if time_embed_dim != 4 * model_channels else None,
        legacy_attention=LEGACY in attention_kinds, use_scale_shift_norm=scale_shift,
        resblock_updown=bool(downsamplers))
