"""nodes.devices: ComfyUI's device choices as this machine has them, passing through choices it
lacks, and placements the engine honours when it runs the model."""

from __future__ import annotations

import logging

import pytest
import torch

from graph.registry import NodeRegistry
from ldm.devices import compute_devices, device_options, resolve_device_option, supported_compute_dtype
from nodes import devices, sampling
from tests.nodes.sampling_support import make_runner
from tests.nodes.sampling_support import one_torch_thread, sd1, tiny_sd1  # noqa: F401 (fixtures)


@pytest.fixture
def setup(tmp_path, sd1):
    model, clip, vae = sd1
    return model, clip, vae, make_runner(tmp_path)


def sample(run, model, clip):
    positive = clip.encode_from_tokens_scheduled(clip.tokenize("a red cat"))
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(""))
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    [out] = run(sampling.KSampler().sample, model, 3, 2, 4.0, "euler", "normal", positive, negative, latent)
    return out["samples"]


def test_choices_are_what_the_machine_has():
    assert device_options([torch.device("cpu")]) == ["default", "cpu"]
    assert device_options([torch.device("cuda", 0)]) == ["default", "cpu"]  # one GPU: nothing to pick
    two = [torch.device("cuda", 0), torch.device("cuda", 1)]
    assert device_options(two) == ["default", "cpu", "gpu:0", "gpu:1"]
    assert device_options(two, with_cpu=False) == ["default", "gpu:0", "gpu:1"]
    assert resolve_device_option("gpu:1", two) == torch.device("cuda", 1)
    assert resolve_device_option("gpu:0", [torch.device("cuda", 0)]) == torch.device("cuda", 0)
    for missing in ("gpu:2", "gpu:x", "tpu", "default", None):
        assert resolve_device_option(missing, two) is None
    assert resolve_device_option("cpu", two) == torch.device("cpu")
    assert compute_devices(torch.device("cpu")) == [torch.device("cpu")]
    assert supported_compute_dtype(torch.float16, torch.device("cpu")) == torch.float32
    assert supported_compute_dtype(torch.bfloat16, torch.device("cpu")) is None


def test_schemas_list_this_machines_devices():
    registry = NodeRegistry()
    assert registry.register_mappings(devices.NODE_CLASS_MAPPINGS, devices.NODE_DISPLAY_NAME_MAPPINGS,
                                      core=True) == {}
    info = registry.object_info()
    here = devices._devices()
    assert info["SelectModelDevice"]["input"]["required"]["device"][0] == device_options(here)
    assert info["SelectCLIPDevice"]["input"]["required"]["device"][0] == device_options(here)
    assert info["SelectVAEDevice"]["input"]["required"]["device"][0] == device_options(here, with_cpu=False)
    assert info["MultiGPU_WorkUnits"]["input"]["required"]["max_gpus"][1] == {"default": 2, "min": 1, "step": 1}
    assert info["MultiGPU_WorkUnits"]["display_name"] == "MultiGPU CFG Split"
    assert {entry["category"] for entry in info.values()} == {"advanced/multigpu"}
    # a workflow from a bigger machine validates; the node passes its choice over at run time
    assert all(devices.NODE_CLASS_MAPPINGS[name].VALIDATE_INPUTS(device="gpu:7") is True
               for name in ("SelectModelDevice", "SelectCLIPDevice", "SelectVAEDevice"))


def test_select_model_device_cpu_runs_there_and_samples_the_same(setup):
    model, clip, _, run = setup
    [placed] = run(devices.SelectModelDevice().execute, model, "cpu")
    assert placed is not model and placed.hooks.compute_device == torch.device("cpu")
    assert model.hooks.compute_device is None
    engine = run.services.engine
    with engine.use_unet(placed) as unet:
        assert unet.device == torch.device("cpu")
    torch.testing.assert_close(sample(run, placed, clip), sample(run, model, clip))
    [restored] = run(devices.SelectModelDevice().execute, placed, "default")
    assert restored.hooks.compute_device is None and restored.device == engine.compute.device


def test_select_model_device_on_the_cpu_leaves_fp16_for_fp32(setup):
    model, _, _, run = setup
    half = model.clone()
    half.hooks.compute_dtype = half.dtype = torch.float16
    [placed] = run(devices.SelectModelDevice().execute, half, "cpu")
    assert placed.hooks.compute_dtype == torch.float32 and placed.dtype == torch.float32


def test_missing_devices_pass_through(setup, caplog):
    model, clip, vae, run = setup
    with caplog.at_level(logging.INFO):
        [same_model] = run(devices.SelectModelDevice().execute, model, "gpu:9")
        [same_clip] = run(devices.SelectCLIPDevice().execute, clip, "gpu:9")
        [same_vae] = run(devices.SelectVAEDevice().execute, vae, "gpu:9")
        [cpu_vae] = run(devices.SelectVAEDevice().execute, vae, "cpu")
    assert caplog.text.count("not available") == 3 and "CPU is not a supported choice" in caplog.text
    assert same_model is not model and same_model.hooks.compute_device is None
    assert getattr(same_clip, "compute_device", None) is None
    assert same_vae.device == vae.device and cpu_vae.device == vae.device and cpu_vae is not vae


def test_select_clip_device_cpu_places_the_encoders_there(setup):
    _, clip, _, run = setup
    [placed] = run(devices.SelectCLIPDevice().execute, clip, "cpu")
    assert placed is not clip and placed.compute_device == torch.device("cpu")
    engine = run.services.engine
    with engine.use_clip(placed):
        assert {p.device for p in placed.encoders.parameters()} == {torch.device("cpu")}
    tokens = clip.tokenize("a red cat")
    torch.testing.assert_close(run(engine.encode_tokens, placed, tokens)[0][0],
                               run(engine.encode_tokens, clip, tokens)[0][0])


def test_select_vae_device_default_is_the_engines(setup):
    _, _, vae, run = setup
    moved = vae.__class__.__new__(vae.__class__)
    moved.__dict__.update(vae.__dict__, device=torch.device("meta"))  # as if placed elsewhere before
    [restored] = run(devices.SelectVAEDevice().execute, moved, "default")
    assert restored.device == run.services.engine.compute.vae_device and moved.device == torch.device("meta")
    assert restored.model is vae.model


def test_multigpu_work_units_on_one_device_samples_as_before(setup):
    model, clip, _, run = setup
    [split] = run(devices.MultiGPU_WorkUnits().execute, model, 2)
    assert split is not model and split.unet is model.unet
    torch.testing.assert_close(sample(run, split, clip), sample(run, model, clip))
