"""The KL-regularised autoencoder of latent diffusion (CompVis ``AutoencoderKL``), names = keys,
and the encoder/decoder it shares with the VQ autoencoder (:mod:`ldm.networks.vq_autoencoder`).

Encoder: conv_in, per level ``num_res_blocks`` ResnetBlocks (+ single-head attention where the
config says), a stride-2 Downsample between levels, a middle ResnetBlock-Attention-ResnetBlock
(the attention left out in CompVis' ``attn_type: none`` models), GroupNorm-SiLU-conv_out to
``2 * z_channels`` moments (``z_channels`` for VQ: ``double_z: false``). ``quant_conv`` maps them
to the mean and log-variance of a diagonal Gaussian over the latent. The decoder mirrors it (one
more ResnetBlock per level, nearest x2 Upsample, attention at the same levels), after
``post_quant_conv``. Keys are those after ``first_stage_model.`` in a single-file checkpoint, or
of a standalone VAE file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ldm.networks.ops import META, Operations, SlicedAttention, attention

GROUPS = 32
NORM_EPS = 1e-6


class VaeConfigError(ValueError):
    """A state dict does not describe an autoencoder this module can build."""


@dataclass(frozen=True)
class VaeConfig:
    ch: int
    ch_mult: tuple[int, ...]
    num_res_blocks: int
    z_channels: int
    embed_dim: int  # latent channels after quant_conv
    in_channels: int = 3
    out_channels: int = 3
    attn_levels: tuple[bool, ...] = ()  # per level: attention after each ResnetBlock
    mid_attn: bool = True  # False: CompVis' ``attn_type: none`` (an identity in the middle block)
    double_z: bool = True  # encoder emits mean and log-variance (KL); False: one latent (VQ)

    @property
    def levels(self) -> int:
        return len(self.ch_mult)

    @property
    def downscale_ratio(self) -> int:
        return 2 ** (self.levels - 1)

    def has_attn(self, level: int) -> bool:
        return bool(self.attn_levels[level]) if self.attn_levels else False


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, ops: Operations):
        super().__init__()
        self.norm1 = ops.GroupNorm(GROUPS, in_channels, eps=NORM_EPS)
        self.conv1 = ops.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = ops.GroupNorm(GROUPS, out_channels, eps=NORM_EPS)
        self.conv2 = ops.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = ops.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return h.add_(skip)  # in place on the fresh conv output; a + b == b + a exactly


class AttnBlock(SlicedAttention, nn.Module):
    """Single-head self-attention over the pixels, with 1x1 conv projections."""

    def __init__(self, channels: int, ops: Operations):
        super().__init__()
        self.norm = ops.GroupNorm(GROUPS, channels, eps=NORM_EPS)
        self.q = ops.Conv2d(channels, channels, 1)
        self.k = ops.Conv2d(channels, channels, 1)
        self.v = ops.Conv2d(channels, channels, 1)
        self.proj_out = ops.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        hidden = self.norm(x)
        # [B, C, H, W] -> [B, 1, H*W, C]: a view when the map is channels-last (NHWC in memory)
        q, k, v = (t(hidden).permute(0, 2, 3, 1).reshape(b, 1, h * w, c) for t in (self.q, self.k, self.v))
        out = attention(q, k, v, self.attention_slice_bytes)
        out = out.reshape(b, h, w, c).permute(0, 3, 1, 2)  # back to [B, C, H, W], channels-last strides
        if not x.is_contiguous(memory_format=torch.channels_last):
            out = out.contiguous()  # keep the input's layout
        return self.proj_out(out).add_(x)


class Downsample(nn.Module):
    def __init__(self, channels: int, ops: Operations):
        super().__init__()
        self.conv = ops.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric padding, as trained


class Upsample(nn.Module):
    def __init__(self, channels: int, ops: Operations):
        super().__init__()
        self.conv = ops.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution level: ``block`` (ResnetBlocks), ``attn``, and ``downsample``/``upsample``."""

    def __init__(self, blocks: list[nn.Module], attns: list[nn.Module]):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attns)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.block):
            x = block(x)
            if len(self.attn):
                x = self.attn[i](x)
        return x


class Middle(nn.Module):
    def __init__(self, channels: int, ops: Operations, with_attention: bool = True):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, ops)
        self.attn_1 = AttnBlock(channels, ops) if with_attention else nn.Identity()
        self.block_2 = ResnetBlock(channels, channels, ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(self, config: VaeConfig, ops: Operations):
        super().__init__()
        self.conv_in = ops.Conv2d(config.in_channels, config.ch, 3, padding=1)
        self.down = nn.ModuleList()
        block_in = config.ch
        for level, mult in enumerate(config.ch_mult):
            block_out = config.ch * mult
            blocks, attns = [], []
            for _ in range(config.num_res_blocks):
                blocks.append(ResnetBlock(block_in, block_out, ops))
                block_in = block_out
                if config.has_attn(level):
                    attns.append(AttnBlock(block_in, ops))
            stage = Level(blocks, attns)
            if level != config.levels - 1:
                stage.downsample = Downsample(block_in, ops)
            self.down.append(stage)
        self.mid = Middle(block_in, ops, config.mid_attn)
        self.norm_out = ops.GroupNorm(GROUPS, block_in, eps=NORM_EPS)
        moments = 2 * config.z_channels if config.double_z else config.z_channels
        self.conv_out = ops.Conv2d(block_in, moments, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            h = stage(h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, config: VaeConfig, ops: Operations):
        super().__init__()
        block_in = config.ch * config.ch_mult[-1]
        self.conv_in = ops.Conv2d(config.z_channels, block_in, 3, padding=1)
        self.mid = Middle(block_in, ops, config.mid_attn)
        stages: list[Level] = []
        for level in reversed(range(config.levels)):
            block_out = config.ch * config.ch_mult[level]
            blocks, attns = [], []
            for _ in range(config.num_res_blocks + 1):
                blocks.append(ResnetBlock(block_in, block_out, ops))
                block_in = block_out
                if config.has_attn(level):
                    attns.append(AttnBlock(block_in, ops))
            stage = Level(blocks, attns)
            if level != 0:
                stage.upsample = Upsample(block_in, ops)
            stages.insert(0, stage)  # up[i] is level i: up[0] works at full resolution
        self.up = nn.ModuleList(stages)
        self.norm_out = ops.GroupNorm(GROUPS, block_in, eps=NORM_EPS)
        self.conv_out = ops.Conv2d(block_in, config.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for stage in reversed(self.up):
            h = stage(h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    def __init__(self, config: VaeConfig, ops: Operations = META):
        super().__init__()
        if not config.double_z:
            raise VaeConfigError("a KL autoencoder's encoder must emit mean and log-variance (double_z)")
        self.config = config
        self.encoder = Encoder(config, ops)
        self.decoder = Decoder(config, ops)
        self.quant_conv = ops.Conv2d(2 * config.z_channels, 2 * config.embed_dim, 1)
        self.post_quant_conv = ops.Conv2d(config.embed_dim, config.z_channels, 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, logvar)`` of the diagonal Gaussian posterior for images in -1..1."""
        moments = self.quant_conv(self.encoder(x))
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic latent the diffusion model works in: the posterior mean."""
        return self.encode(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in (about) -1..1 for raw latents ``z`` (not multiplied by the scale factor)."""
        return self.decoder(self.post_quant_conv(z))


def sample_posterior(mean: torch.Tensor, logvar: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """A draw ``mean + exp(logvar / 2) * noise`` from the posterior (noise drawn on the CPU)."""
    noise = torch.randn(mean.shape, generator=generator, dtype=torch.float32).to(mean.device, mean.dtype)
    return mean + torch.exp(0.5 * logvar) * noise


# --- reading the configuration from a state dict --------------------------------------------------

def _indices(state_dict: dict, prefix: str) -> list[int]:
    return sorted({int(k[len(prefix):].split(".", 1)[0]) for k in state_dict if k.startswith(prefix)})


def _has_prefix(state_dict: dict, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in state_dict)


def normalize_vae_weights(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Attention projections saved as linear ``[C, C]`` matrices become ``[C, C, 1, 1]`` kernels."""
    out = {}
    for key, value in state_dict.items():
        name = key.rsplit(".", 2)
        if (len(name) == 3 and name[-2] in ("q", "k", "v", "proj_out") and name[-1] == "weight"
                and ".attn" in key and value.ndim == 2):
            value = value[:, :, None, None]
        out[key] = value
    return out


def vae_config_from_state_dict(state_dict: dict) -> VaeConfig:
    """The :class:`VaeConfig` of KL- or VQ-autoencoder weights in CompVis layout (no key prefix).

    Everything is read from keys and shapes: levels and widths from the encoder's blocks, the
    latent widths from ``post_quant_conv`` ([z_channels, embed_dim]), ``double_z`` from whether the
    encoder emits two or one ``z_channels``-wide maps, attention from which ``attn`` keys exist.
    """
    def shape(key: str) -> tuple[int, ...]:
        if key not in state_dict:
            raise VaeConfigError(f"VAE weights lack {key!r}")
        return tuple(state_dict[key].shape)

    if any(".to_qkv." in key for key in state_dict):  # CompVis' attn_type "linear" (LinAttnBlock)
        raise VaeConfigError("autoencoders with linear attention (attn_type 'linear') are not supported")
    ch, in_channels = shape("encoder.conv_in.weight")[:2]
    levels = _indices(state_dict, "encoder.down.")
    if not levels:
        raise VaeConfigError("VAE weights have no encoder.down levels")
    ch_mult = tuple(shape(f"encoder.down.{level}.block.0.conv1.weight")[0] // ch for level in levels)
    num_res_blocks = len(_indices(state_dict, "encoder.down.0.block."))
    attn_levels = tuple(bool(_indices(state_dict, f"encoder.down.{level}.attn.")) for level in levels)
    z_channels, embed_dim = shape("post_quant_conv.weight")[:2]
    encoder_out = shape("encoder.conv_out.weight")[0]
    if encoder_out not in (z_channels, 2 * z_channels):
        raise VaeConfigError(f"the encoder emits {encoder_out} channels, neither z_channels = {z_channels} "
                             f"(VQ) nor 2 x z_channels (KL), as post_quant_conv says")
    out_channels = shape("decoder.conv_out.weight")[0]
    return VaeConfig(ch=ch, ch_mult=ch_mult, num_res_blocks=num_res_blocks, z_channels=z_channels,
                     embed_dim=embed_dim, in_channels=in_channels, out_channels=out_channels,
                     attn_levels=attn_levels if any(attn_levels) else (),
                     mid_attn=_has_prefix(state_dict, "encoder.mid.attn_1."),
                     double_z=encoder_out == 2 * z_channels)
