"""nodes.loaders: ComfyUI's loader nodes over tiny checkpoints in temporary model folders."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from graph.context import ExecutionContext, InterruptFlag, use_context
from graph.folders import FolderPaths, UnsafePathError
from graph.registry import NodeRegistry
from ldm.devices import detect_compute
from ldm.loading.checkpoint import load_state_dict
from ldm.model import ModelHandle, load_checkpoint
from ldm.tiny import write_tiny_checkpoint, write_tiny_unet, write_tiny_vae
from ldm.vae import VaeHandle
from nodes import loaders
from nodes.services import NodeOptions, Services


@pytest.fixture
def folders(tmp_path):
    paths = FolderPaths.under(tmp_path)
    paths.ensure()
    write_tiny_checkpoint(paths.model_roots("checkpoints")[0] / "sd15" / "tiny.safetensors", "sd1",
                          include_text=False)
    write_tiny_checkpoint(paths.model_roots("checkpoints")[0] / "tiny_sd2.safetensors", "sd2",
                          include_text=False)
    write_tiny_unet(paths.model_roots("diffusion_models")[0] / "unet.safetensors", "sdxl")
    write_tiny_vae(paths.model_roots("vae")[0] / "vae.safetensors")
    return paths


@pytest.fixture
def run(folders):
    """Call a node method inside an execution context carrying the test's services."""
    services = Services(folders=folders, options=NodeOptions(),
                        engine=SimpleNamespace(compute=detect_compute("cpu", force_dtype=torch.float32)))

    def call(function, *args, **kwargs):
        context = ExecutionContext("prompt", "1", "1", services, InterruptFlag())
        with use_context(context):
            return function(*args, **kwargs)

    call.services = services
    return call


def test_nodes_register_with_comfyui_schema(run):
    registry = NodeRegistry()
    assert registry.register_mappings(loaders.NODE_CLASS_MAPPINGS, loaders.NODE_DISPLAY_NAME_MAPPINGS,
                                      core=True) == {}
    info = run(registry.object_info)
    simple = info["CheckpointLoaderSimple"]
    assert simple["input"]["required"]["ckpt_name"][0] == ["sd15/tiny.safetensors", "tiny_sd2.safetensors"]
    assert simple["output"] == ["MODEL", "CLIP", "VAE"] and simple["category"] == "model/loaders"
    assert {info[name]["category"] for name in ("CheckpointLoader", "UNETLoader", "VAELoader",
                                                 "DiffusersLoader")} == {"model/loaders"}
    assert info["UNETLoader"]["input"]["required"]["weight_dtype"] == (
        ["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"], {"advanced": True})
    assert info["UNETLoader"]["display_name"] == "Load Diffusion Model"
    assert info["CheckpointSave"]["output_node"] is True
    assert info["CheckpointSave"]["input"]["required"]["filename_prefix"] == (
        "STRING", {"default": "checkpoints/ComfyUI"})
    assert info["CheckpointLoader"]["deprecated"] is True
    # outside a running prompt there are no folders to list, and nothing breaks
    assert loaders.VAELoader.INPUT_TYPES() == {"required": {"vae_name": ([],)}}


def test_checkpoint_loader_simple(run):
    model, clip, vae = run(loaders.CheckpointLoaderSimple().load_checkpoint, "sd15/tiny.safetensors")
    assert isinstance(model, ModelHandle) and model.family == "sd1"
    assert clip is None and isinstance(vae, VaeHandle)
    with pytest.raises(UnsafePathError):
        run(loaders.CheckpointLoaderSimple().load_checkpoint, "../outside.safetensors")
    with pytest.raises(FileNotFoundError):
        run(loaders.CheckpointLoaderSimple().load_checkpoint, "missing.safetensors")


def test_checkpoint_loader_with_config_sets_the_prediction(run, folders):
    config = folders.model_roots("configs")[0] / "v2-inference-v.yaml"
    config.write_text("model:\n  params:\n    parameterization: \"v\"\n    scale_factor: 0.18215\n")
    model, _clip, _vae = run(loaders.CheckpointLoader().load_checkpoint, "v2-inference-v.yaml",
                             "tiny_sd2.safetensors")
    assert (model.family, model.prediction) == ("sd2_v", "v")
    plain = folders.model_roots("configs")[0] / "v1-inference.yaml"
    plain.write_text("model:\n  params:\n    scale_factor: 0.18215\n")
    model, _clip, _vae = run(loaders.CheckpointLoader().load_checkpoint, "v1-inference.yaml",
                             "sd15/tiny.safetensors")
    assert (model.family, model.prediction) == ("sd1", "eps")


def test_unet_and_vae_loaders(run):
    (model,) = run(loaders.UNETLoader().load_unet, "unet.safetensors", "fp8_e5m2")
    assert model.family == "sdxl"
    assert model.unet.out[2].weight.dtype == torch.float8_e5m2
    (vae,) = run(loaders.VAELoader().load_vae, "vae.safetensors")
    assert vae.downscale_ratio == 8


def test_checkpoint_save_writes_numbered_files_inside_output(run, folders):
    model, clip, vae = run(loaders.CheckpointLoaderSimple().load_checkpoint, "sd15/tiny.safetensors")
    saver = loaders.CheckpointSave()
    assert run(saver.save, model, clip, vae, "checkpoints/ComfyUI", prompt={"1": {"class_type": "X"}},
               extra_pnginfo={"workflow": {"nodes": []}}) == {}
    run(saver.save, model, clip, vae, "checkpoints/ComfyUI")
    first = folders.output / "checkpoints" / "ComfyUI_00001_.safetensors"
    second = folders.output / "checkpoints" / "ComfyUI_00002_.safetensors"
    assert first.is_file() and second.is_file()
    state_dict, metadata = load_state_dict(first)
    assert metadata["prompt"] == '{"1": {"class_type": "X"}}' and metadata["workflow"] == '{"nodes": []}'
    reloaded = load_checkpoint(first, compute=run.services.engine.compute)[0]
    assert reloaded.family == "sd1"
    for bad in ("../escape", "/abs/path", "checkpoints/../../escape", ""):
        with pytest.raises(UnsafePathError):
            run(saver.save, model, clip, vae, bad)
    assert not (folders.base / "escape_00001_.safetensors").exists()


def test_checkpoint_save_respects_disable_metadata(run, folders):
    run.services.options.disable_metadata = True
    model, clip, vae = run(loaders.CheckpointLoaderSimple().load_checkpoint, "sd15/tiny.safetensors")
    run(loaders.CheckpointSave().save, model, clip, vae, "plain", prompt={"1": {}})
    _, metadata = load_state_dict(folders.output / "plain_00001_.safetensors")
    assert "prompt" not in metadata
