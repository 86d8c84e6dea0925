"""T2I-Adapters (Mou et al. 2023) in TencentARC's layout, attribute names = keys.

An adapter reads the control image once (not per step): pixel-unshuffle by 8 (SD1.x) or 16
(SDXL), then a ResNet stack whose output after each level is one feature map. The UNet adds
them to its input blocks (:func:`adapter_residuals` places them as ComfyUI does: after the last
input block of each level for SD1.x; for SDXL after input blocks 3, 5 and 8 and the middle block).

- full adapter: ``conv_in``, ``body.n`` = ResnetBlock (``down_opt`` at the first block of a
  downsampling level, ``in_conv`` where the width changes, ``block1``-ReLU-``block2`` plus the
  input, or plus ``skep(x)`` in the oldest files);
- light adapter: ``body.i`` = extractor per level (``in_conv``, ``body.k`` residual pairs,
  ``out_conv``), downsampling before every level but the first.

diffusers-layout files (``adapter.body.i.resnets.j``) are renamed to this layout on loading.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ldm.networks.ops import META, Operations

#: Unshuffled input widths that mean an SDXL adapter (1 or 3 channels x 16 x 16), as ComfyUI decides.
XL_INPUT_WIDTHS = (256, 768)
#: ResNet blocks per level of a full adapter (every released adapter).
FULL_BLOCKS_PER_LEVEL = 2
LIGHT_BLOCKS_PER_LEVEL = 4


class AdapterError(ValueError):
    """The weights are not a T2I-Adapter this build knows."""


def _avg_down(x: torch.Tensor) -> torch.Tensor:
    # 2x2 average; an odd side is zero-padded by one (the original sets padding = size % 2).
    return F.avg_pool2d(x, 2, 2, padding=(x.shape[-2] % 2, x.shape[-1] % 2))


class DownOpt(nn.Module):
    """A strided 3x3 convolution (``down_opt.op``) where a file has one, else 2x2 averaging."""

    def __init__(self, channels: int, use_conv: bool, ops: Operations):
        super().__init__()
        if use_conv:
            self.op = ops.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x) if hasattr(self, "op") else _avg_down(x)


class ResnetBlock(nn.Module):
    def __init__(self, in_c: int, out_c: int, down: bool, kernels: dict[str, int], use_conv: bool,
                 ops: Operations):
        super().__init__()
        if down:
            self.down_opt = DownOpt(in_c, use_conv, ops)
        if "in_conv" in kernels:
            self.in_conv = ops.Conv2d(in_c, out_c, kernels["in_conv"], padding=kernels["in_conv"] // 2)
        self.block1 = ops.Conv2d(out_c, out_c, kernels["block1"], padding=kernels["block1"] // 2)
        self.block2 = ops.Conv2d(out_c, out_c, kernels["block2"], padding=kernels["block2"] // 2)
        if "skep" in kernels:
            self.skep = ops.Conv2d(in_c, out_c, kernels["skep"], padding=kernels["skep"] // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "down_opt"):
            x = self.down_opt(x)
        if hasattr(self, "in_conv"):
            x = self.in_conv(x)
        h = self.block2(F.relu(self.block1(x)))
        return h + (self.skep(x) if hasattr(self, "skep") else x)


class LightResBlock(nn.Module):
    def __init__(self, channels: int, ops: Operations):
        super().__init__()
        self.block1 = ops.Conv2d(channels, channels, 3, padding=1)
        self.block2 = ops.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block2(F.relu(self.block1(x))) + x


class Extractor(nn.Module):
    def __init__(self, in_c: int, inner: int, out_c: int, blocks: int, down: bool, ops: Operations):
        super().__init__()
        self.down = down
        self.in_conv = ops.Conv2d(in_c, inner, 1)
        self.body = nn.Sequential(*(LightResBlock(inner, ops) for _ in range(blocks)))
        self.out_conv = ops.Conv2d(inner, out_c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = _avg_down(x)
        return self.out_conv(self.body(self.in_conv(x)))


@dataclass(frozen=True)
class AdapterConfig:
    kind: str  # "full" | "light"
    input_width: int  # channels after pixel-unshuffle
    channels: tuple[int, ...]  # per level
    blocks_per_level: int
    xl: bool = False
    kernels: tuple[tuple[tuple[str, int], ...], ...] = ()  # full: conv kernel sizes per body block
    down_conv: bool = False  # full: strided conv instead of averaging

    @property
    def unshuffle(self) -> int:
        return 16 if self.xl else 8

    @property
    def image_channels(self) -> int:
        return self.input_width // (self.unshuffle * self.unshuffle)

    def downsamples(self, level: int) -> bool:
        return level == 2 if self.xl else level > 0


class T2IAdapterModel(nn.Module):
    def __init__(self, config: AdapterConfig, ops: Operations = META):
        super().__init__()
        self.config = config
        c = config
        if c.kind == "light":
            self.body = nn.ModuleList(
                Extractor(c.input_width if i == 0 else c.channels[i - 1], c.channels[i] // 4, c.channels[i],
                          c.blocks_per_level, down=i > 0, ops=ops) for i in range(len(c.channels)))
            return
        self.conv_in = ops.Conv2d(c.input_width, c.channels[0], 3, padding=1)
        body = []
        for level, width in enumerate(c.channels):
            for j in range(c.blocks_per_level):
                first = j == 0 and level > 0
                in_c = c.channels[level - 1] if first else width
                kernels = dict(c.kernels[len(body)])
                body.append(ResnetBlock(in_c, width, first and c.downsamples(level), kernels, c.down_conv, ops))
        self.body = nn.ModuleList(body)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """One feature map per level for ``image`` [B, C, H, W] (H, W multiples of the unshuffle)."""
        x = F.pixel_unshuffle(image, self.config.unshuffle)
        features = []
        if self.config.kind == "light":
            for extractor in self.body:
                x = extractor(x)
                features.append(x)
            return features
        x = self.conv_in(x)
        per_level = self.config.blocks_per_level
        for index, block in enumerate(self.body):
            x = block(x)
            if index % per_level == per_level - 1:
                features.append(x)
        return features


def adapter_residuals(features: list[torch.Tensor], xl: bool) -> dict[str, list]:
    """ComfyUI's control dict for adapter features (lists consumed from the end by the UNet).

    SD1.x: each level's feature after its third input block (``None`` for the two before).
    SDXL: the UNet's 9 input blocks get level 0 after block 3, level 1 after block 5, level 2
    after block 8; the last level goes to the middle block.
    """
    placed: list[torch.Tensor | None] = []
    for level, feature in enumerate(features):
        if xl:
            placed += [None] * {0: 3, 1: 1, 2: 2}.get(level, 1)
        else:
            placed += [None, None]
        placed.append(feature)
    placed.reverse()
    if xl:
        return {"input": placed[1:], "middle": placed[:1]}
    return {"input": placed}


def _kernel(state_dict: dict, key: str) -> int:
    return int(state_dict[key].shape[-1])


def diffusers_adapter_to_original(state_dict: dict) -> dict:
    """``adapter.body.i.resnets.j.*`` -> ``body.{2i+j}.*``, ``adapter.body.i.in_conv`` -> ``body.{2i}.in_conv``."""
    out = {}
    for key, value in state_dict.items():
        if not key.startswith("adapter."):
            out[key] = value
            continue
        parts = key[len("adapter."):].split(".")
        if parts[0] == "body" and len(parts) > 3 and parts[2] == "resnets":
            level, block = int(parts[1]), int(parts[3])
            key = ".".join(["body", str(level * FULL_BLOCKS_PER_LEVEL + block)] + parts[4:])
        elif parts[0] == "body":
            key = ".".join(["body", str(int(parts[1]) * FULL_BLOCKS_PER_LEVEL)] + parts[2:])
        else:
            key = ".".join(parts)
        out[key] = value
    return out


def adapter_config(state_dict: dict) -> AdapterConfig:
    """The :class:`AdapterConfig` of TencentARC-layout weights."""
    if "body.0.in_conv.weight" in state_dict and "conv_in.weight" not in state_dict:
        levels = sorted({int(k.split(".")[1]) for k in state_dict if k.startswith("body.")})
        channels = tuple(int(state_dict[f"body.{i}.out_conv.weight"].shape[0]) for i in levels)
        blocks = len({k.split(".")[3] for k in state_dict if k.startswith("body.0.body.")})
        return AdapterConfig(kind="light", input_width=int(state_dict["body.0.in_conv.weight"].shape[1]),
                             channels=channels, blocks_per_level=blocks or LIGHT_BLOCKS_PER_LEVEL)
    if "conv_in.weight" not in state_dict:
        raise AdapterError("no conv_in or body.0.in_conv weights: not a T2I-Adapter")
    count = len({int(k.split(".")[1]) for k in state_dict if k.startswith("body.")})
    if count == 0 or count % FULL_BLOCKS_PER_LEVEL:
        raise AdapterError(f"{count} adapter blocks do not make levels of {FULL_BLOCKS_PER_LEVEL}")
    kernels = []
    for n in range(count):
        found = tuple((name, _kernel(state_dict, f"body.{n}.{name}.weight"))
                      for name in ("in_conv", "block1", "block2", "skep") if f"body.{n}.{name}.weight" in state_dict)
        kernels.append(found)
    channels = tuple(int(state_dict[f"body.{level * FULL_BLOCKS_PER_LEVEL}.block1.weight"].shape[0])
                     for level in range(count // FULL_BLOCKS_PER_LEVEL))
    input_width = int(state_dict["conv_in.weight"].shape[1])
    return AdapterConfig(kind="full", input_width=input_width, channels=channels,
                         blocks_per_level=FULL_BLOCKS_PER_LEVEL, xl=input_width in XL_INPUT_WIDTHS,
                         kernels=tuple(kernels),
                         down_conv=any(k.endswith("down_opt.op.weight") for k in state_dict))
