"""ControlNets lent by the engine's memory manager: placed like a UNet, streamed where memory is
short, and computing exactly what the network does in place."""

from __future__ import annotations

import torch

from ldm.control.apply import attach, lend_in_place, prepare_control
from ldm.control.loading import control_model_from_state_dict
from ldm.control.tiny import tiny_controlnet_state_dict
from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.loading.detect import UNET_PREFIX, detect_unet
from ldm.loading.weights import strip_prefix
from ldm.memory import MemoryManager, MemoryOptions, VramMode
from ldm.model import build_unet
from ldm.sampling.from_handle import guided_model
from ldm.tiny import tiny_checkpoint
from tests.ldm.memory.conftest import FakeDevice

FP32 = detect_compute("cpu", force_dtype=torch.float32)


def _engine(mode: VramMode) -> Engine:
    fake = FakeDevice(10 ** 10)
    manager = MemoryManager(MemoryOptions(mode=mode, reserve_bytes=0, min_inference_bytes=0),
                            free_memory=fake, empty_cache=lambda device: None)
    fake.manager = manager
    return Engine(FP32, manager=manager)


def test_sampling_lends_the_controlnet_through_the_memory_manager_and_novram_streams_it():
    state_dict, metadata = tiny_checkpoint("sd1", seed=1, include_text=False, dtype=torch.float32)
    unet_sd = strip_prefix(state_dict, UNET_PREFIX)
    handle = build_unet(unet_sd, detect_unet(unet_sd, metadata), compute=FP32)
    weights = {k: v.half() for k, v in tiny_controlnet_state_dict("sd1", seed=2).items()}  # cast per call
    control = control_model_from_state_dict(weights)
    applied = attach(control, torch.rand(1, 64, 64, 3), 0.8)
    x = torch.randn(2, 4, 8, 8)
    sigma = torch.full((2,), 2.0)
    inputs = {"c_crossattn": torch.randn(2, 5, 32)}

    engine = _engine(VramMode.NONE)
    with engine.use_unet(handle) as unet:
        guided = guided_model(handle, unet)
        run = prepare_control(applied, guided.sampling, guided.diffusion_model, {})
        streamed = run.residuals(x, sigma, inputs, 2, guided.lend)
    entry = engine.memory.find(control.network)
    assert entry is not None and entry.name == "ControlNetModel"
    assert not any(unit.resident for unit in entry.units)  # novram: every layer streamed
    assert entry.streamed_units and entry.stream.fetches >= len(entry.streamed_units)

    reference = prepare_control(applied, guided.sampling, None, {}).residuals(x, sigma, inputs, 2, lend_in_place)
    for a, b in zip(streamed["output"] + streamed["middle"], reference["output"] + reference["middle"]):
        assert torch.equal(a, b)
