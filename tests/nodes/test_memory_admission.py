"""Memory admission in the built-in nodes: allocations whose size a user controls are refused
before they are made, with a clear job error; the sampling nodes pass the latent's shape, so
the UNet's activations are estimated (and admitted)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy
import psutil
import pytest
import torch
from PIL import Image

from graph.context import ExecutionContext, InterruptFlag, services_context, use_context
from graph.executor import Executor
from graph.folders import FolderPaths
from graph.registry import NodeRegistry
from graph.validation import validate_prompt
from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.memory import AdmissionError, MemoryManager, MemoryOptions, VramMode
from ldm.memory.plan import unet_inference_bytes
from nodes import image, image_edit, latent, register_builtin_nodes, vae
from nodes.services import NodeOptions, Services
from tests.e2e.prompts import default_txt2img
from tests.nodes.sampling_support import one_torch_thread, tiny_sd1  # noqa: F401 (fixtures)

GB = 1000 ** 3
MB = 1000 ** 2
GIB = 1024 ** 3
FP32 = detect_compute("cpu", force_dtype=torch.float32)


def engine_with_ram(available: int | None) -> Engine:
    """A CPU engine whose RAM available after the 1 GiB margin is ``available`` (None: the real figure)."""
    if available is None:
        return Engine(FP32)
    manager = MemoryManager(MemoryOptions(mode=VramMode.CPU, cpu_reserve_bytes=GIB),
                            free_memory=lambda device: GIB + available)
    return Engine(FP32, manager=manager)


def make_services(base, engine: Engine) -> Services:
    folders = FolderPaths.under(base)
    folders.ensure()
    return Services(folders=folders, engine=engine, options=NodeOptions(preview_method="none"))


def run_in_context(services: Services, function, *args):
    context = ExecutionContext("prompt", "1", "1", services, InterruptFlag())
    with use_context(context):
        return function(*args)


def execute(services: Services, prompt: dict):
    """``(outcome, events)`` of an API prompt run through validation and the executor."""
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    with services_context(services):  # the checkpoint combo lists the services' folders
        checked = validate_prompt(prompt, registry)
    assert checked.ok, checked.node_errors
    events = []
    outcome = Executor(registry, services=services, emit=lambda event, data: events.append((event, data))).execute(
        "admission", checked.prompt, checked.outputs)
    return outcome, events


def rss() -> int:
    return psutil.Process().memory_info().rss


# --- a whole job ---------------------------------------------------------------------------------

@pytest.mark.parametrize("batch, available, message", [
    (80, 3_100_000_000, "EmptyLatentImage: a latent of 80×4×2048×2048 float32 needs 5.4 GB; "
                        "3.1 GB of memory is available on cpu"),
    # the real RAM figure: 274.9 GB are more than any machine these tests run on has free
    (4096, None, "EmptyLatentImage: a latent of 4096×4×2048×2048 float32 needs 274.9 GB; "),
])
def test_a_huge_empty_latent_fails_the_job_with_a_clear_error_and_allocates_nothing(
        tmp_path, tiny_sd1, batch, available, message):
    if available is None and psutil.virtual_memory().available > 300 * GB:
        pytest.skip("this machine could hold the latent")
    services = make_services(tmp_path, engine_with_ram(available))
    services.folders.add_model_root("checkpoints", tiny_sd1.parent, first=True)
    before = rss()
    outcome, events = execute(services, default_txt2img(size=16384, batch_size=batch))
    after = rss()
    assert outcome.status == "error"
    [error] = [data for event, data in events if event == "execution_error"]
    assert error["node_type"] == "EmptyLatentImage"
    assert error["exception_type"] == "ldm.memory.admission.AdmissionError"
    assert error["exception_message"].startswith(message)
    assert after - before < 200 * MB  # nothing was allocated (the tiny checkpoint is a few MB)


def test_ksampler_passes_the_latent_shape_so_activations_are_estimated(tmp_path, tiny_sd1):
    services = make_services(tmp_path, Engine(FP32))
    services.folders.add_model_root("checkpoints", tiny_sd1.parent, first=True)
    engine = services.engine
    shapes, loads = [], []
    use_unet, load = engine.use_unet, engine.memory.load

    def spy_use_unet(model, *, latent_shape=None):
        shapes.append(latent_shape)
        return use_unet(model, latent_shape=latent_shape)

    def spy_load(model, placement, **options):
        loads.append((options.get("name"), options.get("inference_bytes", 0)))
        return load(model, placement, **options)

    engine.use_unet, engine.memory.load = spy_use_unet, spy_load
    outcome, _ = execute(services, default_txt2img(size=128, batch_size=2, steps=1))
    assert outcome.status == "success", outcome.messages
    assert shapes == [(2, 4, 16, 16)]
    [(name, inference)] = [entry for entry in loads if entry[0].endswith("UNet")]
    assert inference == unet_inference_bytes((2, 4, 16, 16), 4) > 0


def test_ksampler_refuses_latents_whose_activations_cannot_fit(tmp_path, tiny_sd1):
    services = make_services(tmp_path, engine_with_ram(2 * GB))
    services.folders.add_model_root("checkpoints", tiny_sd1.parent, first=True)
    outcome, events = execute(services, default_txt2img(size=1024, batch_size=8, steps=1))  # ~11 GB of activations
    [error] = [data for event, data in events if event == "execution_error"]
    assert error["node_type"] == "KSampler"
    assert error["exception_message"] == ("the sd1 UNet's activations on latents 8×4×128×128 float32 needs 11.0 GB; "
                                          "2.0 GB of memory is available on cpu")


# --- one node at a time --------------------------------------------------------------------------

BIG_IMAGE = torch.zeros(1, 64, 64, 3)
BIG_LATENT = {"samples": torch.zeros(1, 4, 8, 8)}
REFUSALS = [
    ("EmptyImage", lambda: image.EmptyImage().generate(16384, 16384, 80),
     "EmptyImage: an image of 80×16384×16384×3 float32 needs 257.7 GB"),
    ("ImageScale", lambda: image.ImageScale().upscale(BIG_IMAGE.expand(64, -1, -1, -1), "nearest-exact",
                                                      16384, 16384, "disabled"),
     "ImageScale: an image of 64×16384×16384×3 float32 needs 206.2 GB"),
    ("ImageScaleBy", lambda: image.ImageScaleBy().upscale(BIG_IMAGE, "nearest-exact", 8.0),
     "ImageScaleBy: an image of 1×512×512×3 float32 needs 0.0031 GB"),
    ("RepeatImageBatch", lambda: image_edit.RepeatImageBatch().repeat(BIG_IMAGE, 4096),
     "RepeatImageBatch: an image of 4096×64×64×3 float32 needs 0.2 GB"),
    ("RepeatLatentBatch", lambda: latent.RepeatLatentBatch().repeat(
        {"samples": torch.zeros(64, 4, 64, 64)}, 64), "RepeatLatentBatch: a latent of 4096×4×64×64 float32"),
    ("LatentUpscale", lambda: latent.LatentUpscale().upscale(BIG_LATENT, "nearest-exact", 16384, 16384,
                                                             "disabled"),
     "LatentUpscale: a latent of 1×4×2048×2048 float32 needs 0.067 GB"),
    ("LatentUpscaleBy", lambda: latent.LatentUpscaleBy().upscale({"samples": torch.zeros(16, 4, 128, 128)},
                                                                 "nearest-exact", 8.0),
     "LatentUpscaleBy: a latent of 16×4×1024×1024 float32 needs 0.3 GB"),
    ("VAEDecode", lambda: vae.VAEDecode().decode(SimpleNamespace(downscale_ratio=8),
                                                 {"samples": torch.zeros(2, 4, 128, 128)}),
     "VAEDecode: decoding images of 2×1024×1024×3 float32 (the pieces and the joined batch) needs 0.05 GB"),
    ("VAEDecodeTiled", lambda: vae.VAEDecodeTiled().decode(SimpleNamespace(downscale_ratio=8),
                                                           {"samples": torch.zeros(2, 4, 128, 128)}, 512),
     "VAEDecodeTiled: decoding images of 2×1024×1024×3 float32"),
]


@pytest.mark.parametrize("name, call, message", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_nodes_refuse_outputs_that_cannot_fit(tmp_path, name, call, message):
    services = make_services(tmp_path, engine_with_ram(2 * MB))
    with pytest.raises(AdmissionError) as refused:
        run_in_context(services, call)
    assert str(refused.value).startswith(message)
    assert str(refused.value).endswith("; 0.002 GB of memory is available on cpu")


def test_nodes_that_fit_still_run(tmp_path):
    services = make_services(tmp_path, engine_with_ram(None))
    [empty] = run_in_context(services, latent.EmptyLatentImage().generate, 512, 512, 2)
    assert empty["samples"].shape == (2, 4, 64, 64)
    [scaled] = run_in_context(services, image.ImageScaleBy().upscale, BIG_IMAGE, "nearest-exact", 2.0)
    assert scaled.shape == (1, 128, 128, 3)
    [repeated] = run_in_context(services, latent.RepeatLatentBatch().repeat, BIG_LATENT, 3)
    assert repeated["samples"].shape == (3, 4, 8, 8)


def test_outside_a_running_prompt_nothing_is_checked():
    [empty] = latent.EmptyLatentImage().generate(64, 64, 1)  # a script calling the node: no engine to ask
    assert empty["samples"].shape == (1, 4, 8, 8)


# --- LoadImage: every frame counted from the header ------------------------------------------------

def write_frames(path, frames: int, size: int = 256) -> str:
    rng = numpy.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=numpy.uint8)) for _ in range(frames)]
    options = {"duration": 100, "loop": 0} if path.suffix in (".gif", ".webp") else {}
    if path.suffix == ".webp":
        options["lossless"] = True
    pictures[0].save(path, save_all=True, append_images=pictures[1:], **options)
    return path.name


@pytest.mark.parametrize("suffix", [".tiff", ".gif", ".webp"])
def test_load_image_refuses_frames_that_cannot_fit_before_decoding_them(tmp_path, monkeypatch, suffix):
    # 6 frames of 256×256: 2 × 6 × 256 × 256 × 4 values × 4 bytes = 12.6 MB at the peak
    services = make_services(tmp_path, engine_with_ram(8 * MB))
    name = write_frames(services.folders.input / f"frames{suffix}", 6)

    def decode(path):
        raise AssertionError("frames were decoded")

    monkeypatch.setattr(image.image_io, "load_image", decode)
    with pytest.raises(AdmissionError) as refused:
        run_in_context(services, image.LoadImage().load_image, name)
    assert str(refused.value) == (f"LoadImage: 'frames{suffix}' holds 6 frames of 256×256; decoding them as "
                                  f"float32 needs 0.013 GB; 0.008 GB of memory is available on cpu")


@pytest.mark.parametrize("suffix", [".tiff", ".gif", ".webp"])
def test_load_image_within_the_limit_returns_every_frame(tmp_path, suffix):
    services = make_services(tmp_path, engine_with_ram(16 * MB))
    name = write_frames(services.folders.input / f"frames{suffix}", 6)
    pixels, mask = run_in_context(services, image.LoadImage().load_image, name)
    assert pixels.shape == (6, 256, 256, 3) and mask.shape[0] == 6
