"""Fixtures for the memory-manager tests: tiny UNets, LoRA patches and a pretend device.

A :class:`FakeDevice` gives the manager a device capacity on the CPU: its free memory is the
capacity minus what the manager says is resident, so the planning, unloading and streaming code
runs for real (tensors are copied and cast per call) without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from ldm.latent_formats import FAMILY_LATENT_FORMATS
from ldm.loading.weights import adopt_weights, random_weights
from ldm.lora.patches import LoraAdapter, WeightPatch
from ldm.model import ModelHandle
from ldm.networks.unet import UNetConfig, UNetModel

KIB = 1024


@dataclass
class FakeDevice:
    capacity: int
    manager: object = None

    def __call__(self, device) -> int:
        used = self.manager.resident_bytes() if self.manager is not None else 0
        return max(0, self.capacity - used)


#: A two-level SD-style UNet (ResBlocks, transformers with self- and cross-attention, a
#: Downsample and an Upsample, skip concatenations): every layer kind, few layers, fast tests.
MINI_UNET = UNetConfig(in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2),
                       num_res_blocks=(1, 1), transformer_depth=(1, 1), transformer_depth_middle=1,
                       transformer_depth_output=(1, 1, 1, 1), context_dim=32,
                       use_linear_in_transformer=False, num_heads=2)


def tiny_unet_handle(seed: int = 3) -> ModelHandle:
    """A MODEL handle of a tiny UNet, weights stored in fp16 as in a real download."""
    unet = UNetModel(MINI_UNET)
    adopt_weights(unet, random_weights(unet, torch.Generator().manual_seed(seed), torch.float16))
    return ModelHandle(unet=unet, config=MINI_UNET, family="sd1", prediction="eps",
                       latent_format=FAMILY_LATENT_FORMATS["sd1"])


def unet_inputs(config, batch: int = 2, size: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, config.in_channels, size, size, generator=g)
    t = torch.tensor([3.0, 741.0])[:batch]
    context = torch.randn(batch, 7, config.context_dim, generator=g)
    return x, t, context


def random_lora(unet, keys, rank: int = 4, seed: int = 0) -> dict:
    """LoRA adapters for ``keys`` of ``unet`` (Linear and Conv weights), random up/down."""
    g = torch.Generator().manual_seed(seed)
    weights = unet.state_dict()
    adapters = {}
    for key in keys:
        shape = weights[key].shape
        fan_in = 1
        for s in shape[1:]:
            fan_in *= s
        down = torch.randn(rank, *shape[1:], generator=g) / fan_in ** 0.5
        up = torch.randn(shape[0], rank, *([1] * (len(shape) - 2)), generator=g) * 0.5
        adapters[key] = LoraAdapter(up=up, down=down, alpha=float(rank))
    return adapters


def patches_of(adapters: dict, strength: float) -> dict:
    return {key: [WeightPatch(strength, adapter)] for key, adapter in adapters.items()}


@pytest.fixture
def tiny_unet():
    return tiny_unet_handle()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models are dominated by per-op overhead; with two threads on a shared 2-core machine the
    OpenMP hand-offs cost ~7x (measured), so these tests run single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
