"""ldm.imaging.upscale: spandrel upscale models loaded safely, tiled as ComfyUI tiles, OOM retries."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.imaging.upscale import (MIN_TILE, TILE, UpscaleModelError, feather_mask, first_tile, load_upscale_model,
                                 tile_count, tile_memory_bytes, tile_origins, tiled_scale, upscale_image)
from ldm.loading.checkpoint import CheckpointError, save_state_dict
from ldm.memory import MemoryManager, MemoryOptions, VramMode


def tiny_esrgan(scale: int = 2):
    from spandrel.architectures.ESRGAN import ESRGAN
    torch.manual_seed(0)
    return ESRGAN(num_filters=8, num_blocks=1, scale=scale)


def engine_with_free(free_bytes: int) -> Engine:
    manager = MemoryManager(MemoryOptions(mode=VramMode.CPU), free_memory=lambda device: free_bytes)
    return Engine(detect_compute("cpu", force_dtype=torch.float32), manager=manager)


def test_tile_origins_and_counts_follow_comfyui():
    # ComfyUI: range(0, size - overlap, tile - overlap); the last tile runs short
    assert tile_origins(100, 512, 32) == [0]
    assert tile_origins(600, 512, 32) == [0, 480]
    assert tile_origins(1000, 256, 32) == [0, 224, 448, 672, 896]
    # comfy.utils.get_tiled_scale_steps: ceil((size - overlap) / (tile - overlap)) per axis
    for h, w in ((600, 1000), (1000, 256), (257, 3000)):
        expected = math.ceil((h - 32) / 224) if h > 256 else 1
        expected *= math.ceil((w - 32) / 224) if w > 256 else 1
        assert tile_count(h, w, 256, 32) == expected


def test_feather_mask_ramps_from_every_edge():
    mask = feather_mask((6, 10), (3, 3))
    torch.testing.assert_close(mask[2], torch.tensor([1, 2, 3, 3, 3, 3, 3, 3, 2, 1]) / 3)
    assert mask[0, 0] == pytest.approx(1 / 9) and mask[3, 5] == 1.0
    assert torch.equal(feather_mask((4, 8), (4, 4))[:, 4], torch.tensor([1.0, 1.0, 1.0, 1.0]))  # too short: flat
    assert torch.equal(feather_mask((3, 5, 7), (1, 0, 2))[:, 2, 3], torch.ones(3))  # per axis; 0 and 1: flat


def test_tiled_scale_of_a_pointwise_function_equals_the_whole_image():
    samples = torch.rand(2, 3, 70, 45)
    scale = 3

    def fn(x):
        return F.interpolate(x * 0.5 + 0.1, scale_factor=scale, mode="nearest")

    calls = []
    tiled = tiled_scale(fn, samples, tile=24, overlap=8, scale=scale, out_channels=3,
                        progress=lambda done, total: calls.append((done, total)))
    torch.testing.assert_close(tiled, fn(samples), atol=1e-6, rtol=1e-6)
    steps = 2 * tile_count(70, 45, 24, 8)
    assert calls[-1] == (steps, steps) and len(calls) == steps


def test_tiled_scale_runs_any_number_of_axes_and_downscales():
    volume = torch.rand(1, 2, 9, 30, 26)

    def fn(x):
        return F.interpolate(x * 2 - 0.3, scale_factor=(1, 2, 2), mode="nearest")

    tiled = tiled_scale(fn, volume, tile=(4, 16, 16), overlap=(1, 4, 4), scale=(1, 2, 2), out_channels=2)
    torch.testing.assert_close(tiled, fn(volume), atol=1e-6, rtol=1e-6)
    image = torch.rand(1, 3, 64, 72)
    encoded = tiled_scale(lambda x: F.avg_pool2d(x, 4), image, tile=32, overlap=8, scale=4, out_channels=3,
                          downscale=True)
    torch.testing.assert_close(encoded, F.avg_pool2d(image, 4), atol=1e-6, rtol=1e-6)


def test_first_tile_fits_free_memory():
    assert first_tile(10 ** 12, 4) == TILE
    assert first_tile(tile_memory_bytes(256, 4), 4) == 256
    assert first_tile(0, 4) == MIN_TILE
    assert tile_memory_bytes(512, 4) == 512 * 512 * 3 * 4 * 4 * 384


def test_loads_safetensors_and_nested_weights_only_pth(tmp_path):
    network = tiny_esrgan()
    path = tmp_path / "x2.safetensors"
    save_state_dict(path, network.state_dict())
    descriptor = load_upscale_model(path)
    assert descriptor.architecture.name == "ESRGAN" and descriptor.scale == 2
    assert not descriptor.model.training
    # Real-ESRGAN's release files nest the weights under "params_ema"; DataParallel adds "module."
    nested = tmp_path / "x2.pth"
    torch.save({"params_ema": network.state_dict()}, nested)
    again = load_upscale_model(nested)
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(again(x), descriptor(x))
    parallel = tmp_path / "parallel.pth"
    torch.save({f"module.{k}": v for k, v in network.state_dict().items()}, parallel)
    assert load_upscale_model(parallel).scale == 2


def test_refuses_pickled_objects_and_unknown_models(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(2), "code": print}, evil)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_upscale_model(evil)
    unknown = tmp_path / "unknown.safetensors"
    save_state_dict(unknown, {"some.weight": torch.zeros(3, 3)})
    with pytest.raises(UpscaleModelError, match="spandrel"):
        load_upscale_model(unknown)


class OutOfMemoryAbove:
    """A descriptor stand-in that runs out of memory on tiles larger than ``limit`` pixels."""

    def __init__(self, descriptor, limit: int):
        self.descriptor, self.limit, self.sizes = descriptor, limit, []
        self.model, self.scale = descriptor.model, descriptor.scale
        self.output_channels = descriptor.output_channels

    def __call__(self, piece):
        self.sizes.append(max(piece.shape[-2:]))
        if max(piece.shape[-2:]) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.descriptor(piece)


def test_out_of_memory_halves_the_tile_until_it_fits(tmp_path):
    path = tmp_path / "x2.safetensors"
    save_state_dict(path, tiny_esrgan().state_dict())
    flaky = OutOfMemoryAbove(load_upscale_model(path), limit=300)
    image = torch.rand(1, 520, 40, 3)
    out = upscale_image(engine_with_free(10 ** 12), flaky, image)
    assert flaky.sizes[0] == 512 and 256 in flaky.sizes and max(flaky.sizes[1:]) == 256
    assert out.shape == (1, 1040, 80, 3)
    hopeless = OutOfMemoryAbove(flaky.descriptor, limit=10)
    with pytest.raises(torch.OutOfMemoryError):
        upscale_image(engine_with_free(10 ** 12), hopeless, image)
    assert sorted(set(hopeless.sizes)) == [128, 256, 512]


def test_alpha_is_resized_bilinearly_beside_the_rgb(tmp_path):
    path = tmp_path / "x2.safetensors"
    save_state_dict(path, tiny_esrgan().state_dict())
    descriptor = load_upscale_model(path)
    image = torch.rand(1, 12, 10, 4)
    out = upscale_image(engine_with_free(10 ** 12), descriptor, image)
    assert out.shape == (1, 24, 20, 4)
    alpha = F.interpolate(image[..., 3:].movedim(-1, 1), size=(24, 20), mode="bilinear")
    torch.testing.assert_close(out[..., 3:], alpha.movedim(1, -1))
    with torch.no_grad():
        rgb = descriptor(image[..., :3].movedim(-1, 1)).movedim(1, -1)
    torch.testing.assert_close(out[..., :3], rgb)
