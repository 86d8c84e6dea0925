"""The latent diffusion UNet (CompVis ``openaimodel.UNetModel`` / SGM layout), attribute names = keys.

Structure (Rombach et al. 2022, after Dhariwal & Nichol's ADM UNet): ``input_blocks`` (a 3x3 conv,
then per resolution level ``num_res_blocks`` ResBlocks, each optionally followed by a
SpatialTransformer, and a strided-conv Downsample between levels), ``middle_block``
(ResBlock, SpatialTransformer, ResBlock), ``output_blocks`` (mirror image, each taking the skip
of its input block by concatenation, Upsample at the end of a level), ``out`` (GroupNorm, SiLU,
conv). ``time_embed`` turns the sinusoidal timestep embedding into ``emb``; ``label_emb`` adds a
class/ADM vector to it (SDXL: pooled text + size embeddings; x4 upscaler: noise level).

Every attribute is named after its checkpoint key (after ``model.diffusion_model.``), so
``load_state_dict`` is the whole loader. Attention runs through
``torch.nn.functional.scaled_dot_product_attention`` (``ldm.ops.attention``: sliced over the
queries when the engine says memory is short). Activations may be channels-last: the transformer's
reshapes are views then, and residual adds happen in place on fresh branch outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ldm.ops import META, Operations, SlicedAttention, attention

GROUPS = 32  # every GroupNorm of the CompVis UNet uses 32 groups


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
    """Multi-head attention of ``x`` over ``context`` (or itself): to_q/to_k/to_v, to_out.0."""

    def __init__(self, query_dim: int, context_dim: int, heads: int, dim_head: int, ops: Operations):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = ops.Linear(query_dim, inner, bias=False)
        self.to_k = ops.Linear(context_dim, inner, bias=False)
        self.to_v = ops.Linear(context_dim, inner, bias=False)
        self.to_out = nn.ModuleList([ops.Linear(inner, query_dim)])  # index 1 was a Dropout

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        batch = x.shape[0]
        # [B, L, heads*d] -> [B, heads, L, d]
        q, k, v = (t.view(batch, -1, self.heads, t.shape[-1] // self.heads).transpose(1, 2)
                   for t in (self.to_q(x), self.to_k(context), self.to_v(context)))
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
        self.net = nn.ModuleList([GEGLU(dim, inner, ops), nn.Identity(), ops.Linear(inner, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](self.net[0](x))


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int, disable_self_attn: bool,
                 ops: Operations):
        super().__init__()
        self.disable_self_attn = disable_self_attn
        self.attn1 = CrossAttention(dim, context_dim if disable_self_attn else dim, heads, dim_head, ops)
        self.ff = FeedForward(dim, ops)
        self.attn2 = CrossAttention(dim, context_dim, heads, dim_head, ops)
        self.norm1 = ops.LayerNorm(dim)
        self.norm2 = ops.LayerNorm(dim)
        self.norm3 = ops.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
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
        self.use_linear = use_linear
        self.norm = ops.GroupNorm(GROUPS, channels, eps=1e-6)
        self.proj_in = ops.Linear(channels, inner) if use_linear else ops.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(inner, heads, dim_head, context_dim, disable_self_attn, ops)
            for _ in range(depth))
        self.proj_out = ops.Linear(inner, channels) if use_linear else ops.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        b, c, h, w = x.shape
        hidden = self.norm(x)
        if not self.use_linear:
            hidden = self.proj_in(hidden)
        # [B, C, H, W] -> [B, H*W, C]: a free view when the map is channels-last (NHWC in memory).
        channels_last = hidden.is_contiguous(memory_format=torch.channels_last)
        hidden = hidden.permute(0, 2, 3, 1).reshape(b, h * w, -1)
        if self.use_linear:
            hidden = self.proj_in(hidden)
        for block in self.transformer_blocks:
            hidden = block(hidden, context)
        if self.use_linear:
            hidden = self.proj_out(hidden)
        # [B, H*W, C] -> [B, C, H, W], back in the input's memory layout (a view for channels-last).
        hidden = hidden.reshape(b, h, w, -1).permute(0, 3, 1, 2)
        if not channels_last:
            hidden = hidden.contiguous()
        if not self.use_linear:
            hidden = self.proj_out(hidden)
        return hidden.add_(x)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, plus the projected time embedding, GroupNorm-SiLU-conv, plus the skip."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int, ops: Operations):
        super().__init__()
        self.in_layers = nn.Sequential(ops.GroupNorm(GROUPS, channels), nn.SiLU(),
                                       ops.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), ops.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(ops.GroupNorm(GROUPS, out_channels), nn.SiLU(), nn.Identity(),
                                        ops.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = (nn.Identity() if channels == out_channels
                                else ops.Conv2d(channels, out_channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x).add_(self.emb_layers(emb)[:, :, None, None])
        return self.out_layers(h).add_(self.skip_connection(x))


class Downsample(nn.Module):
    def __init__(self, channels: int, out_channels: int, ops: Operations):
        super().__init__()
        self.op = ops.Conv2d(channels, out_channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int, out_channels: int, ops: Operations):
        super().__init__()
        self.conv = ops.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        # Nearest x2; to the skip's exact size when the latent side was odd.
        if size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=size, mode="nearest")
        return self.conv(x)


class UNetBlock(nn.ModuleList):
    """CompVis' TimestepEmbedSequential: each layer gets what it needs (emb, context, size)."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor | None,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            elif isinstance(layer, Upsample):
                x = layer(x, size)
            else:
                x = layer(x)
        return x


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

        def transformer(channels: int, depth: int, disable_self_attn: bool) -> SpatialTransformer:
            heads, dim_head = config.heads(channels)
            return SpatialTransformer(channels, heads, dim_head, depth, config.context_dim,
                                      config.use_linear_in_transformer, disable_self_attn, ops)

        self.input_blocks = nn.ModuleList([UNetBlock([ops.Conv2d(config.in_channels, mc, 3, padding=1)])])
        skip_channels = [mc]
        ch, res_index = mc, 0
        for level, mult in enumerate(config.channel_mult):
            for _ in range(config.num_res_blocks[level]):
                layers: list[nn.Module] = [ResBlock(ch, emb_dim, mult * mc, ops)]
                ch = mult * mc
                depth = config.transformer_depth[res_index]
                res_index += 1
                if depth > 0:
                    layers.append(transformer(ch, depth, config.self_attn_disabled(level)))
                self.input_blocks.append(UNetBlock(layers))
                skip_channels.append(ch)
            if level != config.levels - 1:
                self.input_blocks.append(UNetBlock([Downsample(ch, ch, ops)]))
                skip_channels.append(ch)

        middle: list[nn.Module] = [ResBlock(ch, emb_dim, ch, ops)]
        if config.transformer_depth_middle > 0:
            middle += [transformer(ch, config.transformer_depth_middle, config.disable_middle_self_attn),
                       ResBlock(ch, emb_dim, ch, ops)]
        self.middle_block = UNetBlock(middle)

        self.output_blocks = nn.ModuleList()
        out_index = 0
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            for i in range(config.num_res_blocks[level] + 1):
                layers = [ResBlock(ch + skip_channels.pop(), emb_dim, mult * mc, ops)]
                ch = mult * mc
                depth = config.transformer_depth_output[out_index]
                out_index += 1
                if depth > 0:
                    layers.append(transformer(ch, depth, config.self_attn_disabled(level)))
                if level and i == config.num_res_blocks[level]:
                    layers.append(Upsample(ch, ch, ops))
                self.output_blocks.append(UNetBlock(layers))

        self.out = nn.Sequential(ops.GroupNorm(GROUPS, ch), nn.SiLU(),
                                 ops.Conv2d(ch, config.out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None = None,
                y: torch.Tensor | None = None, **extra) -> torch.Tensor:
        """The raw network output (eps or v) for latents ``x`` [B, C, h, w] at ``timesteps`` [B].

        ``context`` [B, tokens, context_dim] is the cross-attention conditioning; ``y`` is the
        label input: [B, adm_in_channels] for SDXL, integer noise levels [B] for the x4 upscaler.
        """
        unknown = set(extra) - {"transformer_options"}
        if unknown:
            raise TypeError(f"UNetModel.forward got unexpected arguments {sorted(unknown)}")
        timesteps = torch.as_tensor(timesteps, device=x.device)
        if timesteps.ndim == 0:
            timesteps = timesteps.expand(x.shape[0])
        emb = self.time_embed(timestep_embedding(timesteps, self.config.model_channels).to(x.dtype))
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
        for block in self.input_blocks:
            h = block(h, emb, context)
            skips.append(h)
        h = self.middle_block(h, emb, context)
        for block in self.output_blocks:
            h = torch.cat([h, skips.pop()], dim=1)
            h = block(h, emb, context, skips[-1].shape[-2:] if skips else None)
        return self.out(h)


# --- reading the configuration from a state dict --------------------------------------------------

def _block_indices(state_dict: dict, prefix: str) -> list[int]:
    found = {int(k[len(prefix):].split(".", 1)[0]) for k in state_dict if k.startswith(prefix)}
    return sorted(found)


def _transformer_depth(state_dict: dict, prefix: str) -> int:
    return len(_block_indices(state_dict, prefix + "transformer_blocks."))


def unet_config_from_state_dict(state_dict: dict, *, num_heads: int = -1,
                                num_head_channels: int = -1) -> UNetConfig:
    """The :class:`UNetConfig` of UNet weights keyed as in CompVis' layout (no key prefix).

    Head counts are not visible in tensor shapes (q/k/v are ``inner x inner`` for any split), so
    the caller passes the family's convention (see ``ldm.detect``).
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

    channel_mult: list[int] = []
    num_res_blocks: list[int] = []
    transformer_depth: list[int] = []
    disable_self_attn: list[bool] = []
    context_dim = None
    use_linear = False
    res_in_level = 0
    level_channels = None
    for index in _block_indices(state_dict, "input_blocks.")[1:]:
        prefix = f"input_blocks.{index}."
        if prefix + "0.op.weight" in state_dict:  # Downsample closes the level
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
        depth = _transformer_depth(state_dict, prefix + "1.")
        transformer_depth.append(depth)
        if depth:
            use_linear = len(shape(prefix + "1.proj_in.weight")) == 2
            block = prefix + "1.transformer_blocks.0."
            context_dim = shape(block + "attn2.to_k.weight")[1]
            disable_self_attn_level = shape(block + "attn1.to_k.weight")[1] != channels
    if level_channels is None:
        raise UNetConfigError("the last resolution level of the UNet has no ResBlock")
    channel_mult.append(level_channels // model_channels)
    num_res_blocks.append(res_in_level)
    disable_self_attn.append(disable_self_attn_level)

    if "middle_block.1.in_layers.0.weight" in state_dict:
        raise UNetConfigError("a middle block without a transformer between its ResBlocks is not supported")
    middle_depth = _transformer_depth(state_dict, "middle_block.1.") or -1
    disable_middle = False
    if middle_depth > 0:
        mid_channels = shape("middle_block.0.out_layers.3.weight")[0]
        disable_middle = shape("middle_block.1.transformer_blocks.0.attn1.to_k.weight")[1] != mid_channels

    output_depth = [_transformer_depth(state_dict, f"output_blocks.{i}.1.")
                    for i in _block_indices(state_dict, "output_blocks.")]
    expected_outputs = sum(n + 1 for n in num_res_blocks)
    if len(output_depth) != expected_outputs:
        raise UNetConfigError(f"{len(output_depth)} output blocks for {expected_outputs} expected "
                              f"from the input side")

    return UNetConfig(
        in_channels=in_channels, out_channels=out_channels, model_channels=model_channels,
        channel_mult=tuple(channel_mult), num_res_blocks=tuple(num_res_blocks),
        transformer_depth=tuple(transformer_depth), transformer_depth_middle=middle_depth,
        transformer_depth_output=tuple(output_depth), context_dim=context_dim,
        use_linear_in_transformer=use_linear, num_heads=num_heads, num_head_channels=num_head_channels,
        adm_in_channels=adm_in_channels, num_classes=num_classes,
        disable_self_attn=tuple(disable_self_attn) if any(disable_self_attn) else (),
        disable_middle_self_attn=disable_middle,
        time_embed_dim=time_embed_dim if time_embed_dim != 4 * model_channels else None)
