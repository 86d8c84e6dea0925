"""bench.models: the real-size layouts are what Weft detects and what diffusers converts."""

from __future__ import annotations

import pytest
import torch

from bench.models import FAMILIES, _fill, _ldm_yaml, _shapes
from ldm.loading.detect import UNET_PREFIX, detect_unet
from ldm.networks.unet import UNetModel


@pytest.mark.parametrize("name, family", [("sd15", "sd1"), ("sdxl", "sdxl")])
def test_real_layouts_are_detected_as_their_family(name, family):
    config = FAMILIES[name].unet
    shapes = _shapes(lambda: UNetModel(config))
    meta = {k: torch.empty(v, device="meta") for k, v in shapes.items()}
    detection = detect_unet(meta, {})
    assert detection.family == family and detection.config == config
    params = sum(torch.Size(v).numel() for v in shapes.values())
    assert params == {"sd15": 859_520_964, "sdxl": 2_567_463_684}[name]  # the published counts


@pytest.mark.parametrize("name", ["sd15", "sdxl"])
def test_diffusers_builds_the_same_unet_config_from_the_yaml(name):
    from diffusers.loaders.single_file_utils import create_unet_diffusers_config_from_ldm

    family = FAMILIES[name]
    shapes = _shapes(lambda: UNetModel(family.unet))
    state = {UNET_PREFIX + k: torch.empty(v, device="meta") for k, v in shapes.items()}
    config = create_unet_diffusers_config_from_ldm(_ldm_yaml(family), state, image_size=64)
    assert config["cross_attention_dim"] == family.unet.context_dim
    assert tuple(config["block_out_channels"]) == tuple(320 * m for m in family.unet.channel_mult)


def test_random_weights_keep_the_scale_of_a_unit_variance_layer():
    g = torch.Generator().manual_seed(0)
    kernel = _fill("input_blocks.1.0.in_layers.2.weight", torch.Size([320, 320, 3, 3]), g).float()
    assert abs(kernel.var().item() * 320 * 9 - 1.0) < 0.05
    norm = _fill("out.0.weight", torch.Size([320]), g).float()
    assert 0.9 <= norm.min() and norm.max() <= 1.1
