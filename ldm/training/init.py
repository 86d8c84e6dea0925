"""Fresh weights for networks built through ``ldm.networks.ops`` (whose layers skip initialisation,
since loaders adopt a checkpoint's tensors instead).

Linear and conv layers get PyTorch's default (Kaiming-uniform) initialisation, norms scale 1 and
shift 0. As in CompVis' ``zero_module``, the UNet's residual branches end in zeros — each
ResBlock's last conv, each transformer's ``proj_out`` and the output conv — so a fresh UNet is
the identity on its skip paths and predicts zero.
"""

from __future__ import annotations

import torch
from torch import nn

from ldm.networks.autoencoder import AutoencoderKL, VaeConfig
from ldm.networks.ops import Operations
from ldm.networks.unet import ResBlock, SpatialTransformer, UNetConfig, UNetModel


def trainable_ops(device: torch.device | str = "cpu") -> Operations:
    """Layers with real float32 parameters on ``device`` (the master weights of training)."""
    return Operations(device=device, dtype=torch.float32)


def initialise(module: nn.Module, generator: torch.Generator) -> None:
    """Default initialisation of every layer of ``module``, drawn from ``generator``."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                fan_in = layer.weight[0].numel()
                bound = 1.0 / fan_in ** 0.5
                # kaiming_uniform_(a=sqrt(5)) as nn.Linear / nn.Conv2d do: bound = 1/sqrt(fan_in)
                layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) * 2 * bound - bound)
                if layer.bias is not None:
                    layer.bias.copy_(torch.rand(layer.bias.shape, generator=generator) * 2 * bound - bound)
            elif isinstance(layer, (nn.GroupNorm, nn.LayerNorm)) and layer.weight is not None:
                layer.weight.fill_(1.0)
                layer.bias.zero_()
            elif isinstance(layer, nn.Embedding):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.02)


def _zero(layer: nn.Module) -> None:
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.zero_()


def new_unet(config: UNetConfig, seed: int, device: torch.device | str = "cpu") -> UNetModel:
    unet = UNetModel(config, trainable_ops(device))
    initialise(unet, torch.Generator().manual_seed(seed))
    for layer in unet.modules():
        if isinstance(layer, ResBlock):
            _zero(layer.out_layers[3])
        elif isinstance(layer, SpatialTransformer):
            _zero(layer.proj_out)
    _zero(unet.out[2])
    return unet.train()


#: Initial posterior log-variance: a fresh encoder's latents would otherwise be drowned in unit
#: noise, and the decoder would learn nothing until the encoder had shrunk it (the KL weight is
#: tiny, so training drives it this low anyway).
INITIAL_LOGVAR = -8.0


def new_autoencoder(config: VaeConfig, seed: int, device: torch.device | str = "cpu") -> AutoencoderKL:
    vae = AutoencoderKL(config, trainable_ops(device))
    initialise(vae, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        vae.quant_conv.bias[config.embed_dim:] = INITIAL_LOGVAR
    return vae.train()
