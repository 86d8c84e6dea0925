"""A tiny SD1 UNet (real layout, random weights) and its inputs, for the patch tests."""

from __future__ import annotations

import pytest
import torch

from ldm.devices import detect_compute
from ldm.loading.detect import UNET_PREFIX, detect_unet
from ldm.loading.weights import strip_prefix
from ldm.model import build_unet
from ldm.tiny import tiny_checkpoint


@pytest.fixture(scope="package")
def sd1_unet():
    state_dict, metadata = tiny_checkpoint("sd1", seed=3, include_text=False)
    unet_sd = strip_prefix(state_dict, UNET_PREFIX)
    return build_unet(unet_sd, detect_unet(unet_sd, metadata),
                      compute=detect_compute("cpu", force_dtype=torch.float32)).unet.eval()


def unet_inputs(unet, batch: int = 2, size: tuple[int, int] = (16, 16), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, unet.config.in_channels, *size, generator=g)
    t = torch.linspace(3.0, 741.0, batch)
    context = torch.randn(batch, 7, unet.config.context_dim, generator=g)
    return x, t, context


def run_unet(unet, transformer_options=None, batch: int = 2, size: tuple[int, int] = (16, 16), sigma: float = 1.0):
    """The UNet's output with ``transformer_options`` (given the batch's sigmas, as guidance does)."""
    x, t, context = unet_inputs(unet, batch, size)
    if transformer_options is not None:
        transformer_options = {**transformer_options, "sigmas": torch.full((batch,), sigma),
                               "cond_or_uncond": [0, 1][:batch]}
    with torch.no_grad():
        return unet(x, t, context, transformer_options=transformer_options)
