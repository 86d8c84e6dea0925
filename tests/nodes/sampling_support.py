"""Helpers for the sampling node tests: tiny checkpoints loaded as real handles, a recording
stand-in for the engine's UNet, and running node methods inside an execution context."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from graph.context import ExecutionContext, InterruptFlag, use_context
from graph.folders import FolderPaths
from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.model import load_checkpoint
from ldm.tiny import write_tiny_checkpoint
from nodes.services import NodeOptions, Services

FP32_CPU = detect_compute("cpu", force_dtype=torch.float32)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny networks run faster on one thread; on a loaded 2-core machine the default two threads
    spin against other work (a KSampler test measured 16 s instead of under 1 s). Restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_sd1(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sampling_nodes") / "tiny_sd1.safetensors"
    return write_tiny_checkpoint(path, "sd1", seed=0)


@pytest.fixture
def sd1(tiny_sd1):
    """``(model, clip, vae)`` of the tiny SD1 checkpoint, fp32 on the CPU."""
    return load_checkpoint(tiny_sd1, compute=FP32_CPU)


class RecordingUNet:
    """Stands in for a UNet: predicts zero noise, records every input."""

    def __init__(self, out_channels: int = 4):
        self.out_channels = out_channels
        self.inputs: list[torch.Tensor] = []

    def __call__(self, x, timesteps, context=None, y=None, **kwargs):
        self.inputs.append(x.detach().clone())
        return torch.zeros_like(x[:, :self.out_channels])


@dataclass
class RecordingEngine:
    """An engine whose ``use_unet`` lends a :class:`RecordingUNet` and counts the loans."""

    unet: RecordingUNet = field(default_factory=RecordingUNet)
    loans: int = 0
    compute: object = FP32_CPU
    intermediate_device: torch.device = torch.device("cpu")

    @contextmanager
    def use_unet(self, model, *, latent_shape=None):
        self.loans += 1
        yield self.unet


@dataclass
class NodeRunner:
    services: Services
    progress: list = field(default_factory=list)
    interrupt: InterruptFlag = field(default_factory=InterruptFlag)
    interrupt_after: int | None = None  # request an interrupt after this many progress reports

    def hook(self, value, total, preview):
        self.progress.append((value, total, preview))
        if self.interrupt_after is not None and len(self.progress) >= self.interrupt_after:
            self.interrupt.request()

    def __call__(self, function, *args, **kwargs):
        context = ExecutionContext("prompt", "7", "7", self.services, self.interrupt, self.hook)
        with use_context(context):
            return function(*args, **kwargs)


def make_runner(base: Path, engine=None, **options) -> NodeRunner:
    folders = FolderPaths.under(base)
    folders.ensure()
    options.setdefault("preview_method", "latent2rgb")
    services = Services(folders=folders, options=NodeOptions(**options), engine=engine or Engine(FP32_CPU))
    return NodeRunner(services)


def load_tiny_ldm(runner: NodeRunner, layout: str):
    """CheckpointLoaderSimple's ``(MODEL, CLIP, VAE)`` of the tiny Lightning-style ``.ckpt`` of one of the
    paper's layouts (``ldm.loading.tiny_ldm``), written into the runner's checkpoints folder."""
    from ldm.loading.tiny_ldm import write_tiny_ldm_checkpoint
    from nodes.loaders import CheckpointLoaderSimple

    name = f"tiny-ldm-{layout}.ckpt"
    write_tiny_ldm_checkpoint(runner.services.folders.model_roots("checkpoints")[0] / name, layout)
    return runner(CheckpointLoaderSimple().load_checkpoint, name)
