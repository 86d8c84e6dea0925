"""Test helpers for LoRA: CompVis-layout UNet weights written from the architecture, and a
minimal MODEL handle stand-in that follows docs/engine-contract.md (``.unet``, ``.patches``,
``clone()``) until the engine's ``ldm.model.ModelHandle`` is merged."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TinyUNetSpec:
    channels: int = 32
    mult: tuple[int, ...] = (1, 2)
    res_blocks: int = 2
    attention_levels: tuple[int, ...] = (0,)
    depth: tuple[int, ...] = (1, 1)  # transformer blocks per level
    context: int = 32
    adm: int | None = None  # SDXL's label_emb input width


def compvis_unet_shapes(spec: TinyUNetSpec) -> dict[str, tuple[int, ...]]:
    """Weight name -> shape of a CompVis UNet (openaimodel.py structure)."""
    shapes: dict[str, tuple[int, ...]] = {}
    mc = spec.channels
    emb = 4 * mc

    def conv(prefix, cin, cout, k=3):
        shapes[f"{prefix}.weight"] = (cout, cin, k, k)
        shapes[f"{prefix}.bias"] = (cout,)

    def linear(prefix, cin, cout, bias=True):
        shapes[f"{prefix}.weight"] = (cout, cin)
        if bias:
            shapes[f"{prefix}.bias"] = (cout,)

    def norm(prefix, c):
        shapes[f"{prefix}.weight"] = (c,)
        shapes[f"{prefix}.bias"] = (c,)

    def resblock(prefix, cin, cout):
        norm(f"{prefix}.in_layers.0", cin)
        conv(f"{prefix}.in_layers.2", cin, cout)
        linear(f"{prefix}.emb_layers.1", emb, cout)
        norm(f"{prefix}.out_layers.0", cout)
        conv(f"{prefix}.out_layers.3", cout, cout)
        if cin != cout:
            conv(f"{prefix}.skip_connection", cin, cout, k=1)

    def transformer(prefix, c, depth):
        norm(f"{prefix}.norm", c)
        conv(f"{prefix}.proj_in", c, c, k=1)
        for b in range(depth):
            block = f"{prefix}.transformer_blocks.{b}"
            for attn, kv in (("attn1", c), ("attn2", spec.context)):
                linear(f"{block}.{attn}.to_q", c, c, bias=False)
                linear(f"{block}.{attn}.to_k", kv, c, bias=False)
                linear(f"{block}.{attn}.to_v", kv, c, bias=False)
                linear(f"{block}.{attn}.to_out.0", c, c)
            linear(f"{block}.ff.net.0.proj", c, 8 * c)
            linear(f"{block}.ff.net.2", 4 * c, c)
            for n in (1, 2, 3):
                norm(f"{block}.norm{n}", c)
        conv(f"{prefix}.proj_out", c, c, k=1)

    linear("time_embed.0", mc, emb)
    linear("time_embed.2", emb, emb)
    if spec.adm is not None:
        linear("label_emb.0.0", spec.adm, emb)
        linear("label_emb.0.2", emb, emb)
    conv("input_blocks.0.0", 4, mc)
    ch, index, skips = mc, 1, [mc]
    for level, m in enumerate(spec.mult):
        for _ in range(spec.res_blocks):
            resblock(f"input_blocks.{index}.0", ch, m * mc)
            ch = m * mc
            if level in spec.attention_levels:
                transformer(f"input_blocks.{index}.1", ch, spec.depth[level])
            skips.append(ch)
            index += 1
        if level != len(spec.mult) - 1:
            conv(f"input_blocks.{index}.0.op", ch, ch)
            skips.append(ch)
            index += 1
    resblock("middle_block.0", ch, ch)
    transformer("middle_block.1", ch, spec.depth[-1])
    resblock("middle_block.2", ch, ch)
    index = 0
    for level in reversed(range(len(spec.mult))):
        m = spec.mult[level]
        for j in range(spec.res_blocks + 1):
            resblock(f"output_blocks.{index}.0", ch + skips.pop(), m * mc)
            ch = m * mc
            slot = 1
            if level in spec.attention_levels:
                transformer(f"output_blocks.{index}.1", ch, spec.depth[level])
                slot = 2
            if level and j == spec.res_blocks:
                conv(f"output_blocks.{index}.{slot}.conv", ch, ch)
            index += 1
    norm("out.0", ch)
    conv("out.2", ch, 4)
    return shapes


class KeyedModule(nn.Module):
    """A module holding parameters at dotted names (``a.b.weight``), nothing else."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        super().__init__()
        for key, tensor in tensors.items():
            owner = self
            *path, leaf = key.split(".")
            for part in path:
                if part not in owner._modules:
                    owner.add_module(part, nn.Module())
                owner = owner._modules[part]
            owner.register_parameter(leaf, nn.Parameter(tensor, requires_grad=False))


def random_unet(spec: TinyUNetSpec, seed: int = 0, dtype=torch.float32) -> KeyedModule:
    generator = torch.Generator().manual_seed(seed)
    return KeyedModule({k: torch.randn(s, generator=generator).to(dtype)
                        for k, s in compvis_unet_shapes(spec).items()})


class StandInModelHandle:
    """The MODEL handle shape of docs/engine-contract.md, enough for LoRA: ``unet``, ``patches``,
    ``clone()`` (shares the module, copies the patch lists)."""

    def __init__(self, unet: nn.Module):
        self.unet = unet
        self.patches: dict[str, list] = {}

    def clone(self) -> "StandInModelHandle":
        twin = StandInModelHandle(self.unet)
        twin.patches = {key: list(found) for key, found in self.patches.items()}
        return twin


SD1_NAMES = TinyUNetSpec(channels=320, mult=(1, 2, 4, 4), attention_levels=(0, 1, 2), depth=(1, 1, 1, 1),
                         context=768)
SDXL_NAMES = TinyUNetSpec(channels=320, mult=(1, 2, 4), attention_levels=(1, 2), depth=(0, 2, 10),
                          context=2048, adm=2816)
