"""nodes.upscale_model: UpscaleModelLoader and ImageUpscaleWithModel on tiny spandrel networks."""

from __future__ import annotations

import pytest
import torch

from graph.registry import NodeRegistry
from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.imaging.upscale import MIN_TILE, tile_memory_bytes
from ldm.loading.checkpoint import save_state_dict
from ldm.memory import MemoryManager, MemoryOptions, VramMode
from nodes import upscale_model
from tests.nodes.sampling_support import one_torch_thread  # noqa: F401 (autouse fixture)


def tiny_networks():
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.SwinIR import SwinIR
    torch.manual_seed(0)
    esrgan = ESRGAN(num_filters=8, num_blocks=1, scale=2)
    swinir = SwinIR(img_size=16, embed_dim=12, depths=[1], num_heads=[2], window_size=4, mlp_ratio=2.0,
                    upscale=2, upsampler="pixelshuffledirect")
    return {"esrgan_x2.safetensors": ("ESRGAN", esrgan), "swinir_x2.pth": ("SwinIR", swinir)}


@pytest.fixture
def upscalers(node_services):
    folder = node_services.folders.model_roots("upscale_models")[0]
    folder.mkdir(parents=True, exist_ok=True)
    networks = tiny_networks()
    for name, (_, network) in networks.items():
        if name.endswith(".pth"):
            torch.save(network.state_dict(), folder / name)
        else:
            save_state_dict(folder / name, network.state_dict())
    return networks


def test_schema_is_comfyuis():
    registry = NodeRegistry()
    assert registry.register_mappings(upscale_model.NODE_CLASS_MAPPINGS, upscale_model.NODE_DISPLAY_NAME_MAPPINGS,
                                      core=True) == {}
    info = registry.object_info()
    loader, upscale = info["UpscaleModelLoader"], info["ImageUpscaleWithModel"]
    assert (loader["display_name"], loader["category"]) == ("Load Upscale Model", "model/loaders")
    assert loader["output"] == ["UPSCALE_MODEL"] and list(loader["input"]["required"]) == ["model_name"]
    assert (upscale["display_name"], upscale["category"]) == ("Upscale Image (using Model)", "image/upscaling")
    assert upscale["input"]["required"] == {"upscale_model": ("UPSCALE_MODEL",), "image": ("IMAGE",)}
    assert upscale["output"] == ["IMAGE"]


def test_loader_lists_the_folder_and_loads_both_architectures(upscalers):
    names = upscale_model.UpscaleModelLoader.INPUT_TYPES()["required"]["model_name"][0]
    assert names == sorted(upscalers)
    for name, (architecture, network) in upscalers.items():
        (descriptor,) = upscale_model.UpscaleModelLoader().load_model(name)
        assert descriptor.architecture.name == architecture
        x = torch.rand(1, 3, 16, 20)
        with torch.no_grad():
            torch.testing.assert_close(descriptor.model(x), network.eval()(x))


@pytest.mark.parametrize("name", ["esrgan_x2.safetensors", "swinir_x2.pth"])
def test_tiled_upscale_matches_spandrel_on_the_whole_image(node_services, upscalers, name):
    (descriptor,) = upscale_model.UpscaleModelLoader().load_model(name)
    image = torch.rand(1, 150, 200, 3)
    with torch.no_grad():
        whole = descriptor(image.movedim(-1, 1)).movedim(1, -1)
    # Little free memory: the engine starts at the smallest tile, so 150x200 takes 2x2 tiles.
    node_services.engine = Engine(node_services.engine.compute, manager=MemoryManager(
        MemoryOptions(mode=VramMode.CPU), free_memory=lambda device: tile_memory_bytes(MIN_TILE, 2) - 1))
    (tiled,) = upscale_model.ImageUpscaleWithModel().upscale(descriptor, image)
    assert tiled.shape == (1, 300, 400, 3) and tiled.min() >= 0 and tiled.max() <= 1
    difference = (tiled - whole).abs()
    # Away from the tile seams the network saw the same neighbourhood: identical there.
    torch.testing.assert_close(tiled[:, :150, :150], whole[:, :150, :150], atol=1e-5, rtol=0)
    # Near the seams the tiles' cut edges show, blended away to a small mean difference.
    assert 0 < difference.max() < 0.1 and difference.mean() < 1e-3
    # With plenty of memory the image is one tile: exactly spandrel's output.
    node_services.engine = Engine(detect_compute("cpu", force_dtype=torch.float32))
    (single,) = upscale_model.ImageUpscaleWithModel().upscale(descriptor, image)
    torch.testing.assert_close(single, whole)
