"""High-resolution convolutional sampling (Rombach et al. 2022, sec. 4.3.2, fig. 9): a model
conditioned on a spatial map samples far beyond its training size because its UNet is
convolutional and the map fixes the layout. Checked on the tiny semantic-synthesis checkpoint
through the nodes a user wires (CheckpointLoaderSimple -> LoadImage -> SemanticMapConditioning ->
KSampler -> VAEDecode -> SaveImage): a label map of over 4x the training latent area and another aspect
samples whole (one UNet call per step over the entire latent, no tiles) to a picture of its size,
and the engine's memory admission is asked for that bigger run, refusing it when the budget is
too small while the training-size run still fits."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from PIL import Image

from ldm.loading.tiny_ldm import SEMANTIC_CLASSES, write_tiny_ldm_checkpoint
from ldm.memory.plan import unet_inference_bytes
from tests.nodes.sampling_support import one_torch_thread  # noqa: F401 (fixture)
from tests.nodes.test_memory_admission import FP32, engine_with_ram, execute, make_services

CHECKPOINT = "ldm-semantic-synthesis256.ckpt"
#: The size the test treats as the tiny model's training size (the real model's is 256 x 256).
TRAINING_SIZE = (32, 32)
#: A label map of 8x the training area and a 1:2 aspect (the real model: 256 x 256 -> 512 x 1024 is 8x too).
HIGH_RESOLUTION = (64, 128)
FIRST_STAGE_FACTOR = 4  # the tiny semantic layout's VQ-f4 first stage
MB = 1000 ** 2


@pytest.fixture(scope="module")
def checkpoint_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ldm_high_resolution")
    write_tiny_ldm_checkpoint(folder / CHECKPOINT, "semantic")
    return folder


def _label_map_png(folder, size: tuple[int, int]) -> str:
    """An 8-bit label map (value = COCO-Stuff class id) of ``size`` (height, width): sky over a
    mountain ridge over sea, so every row is not the same."""
    height, width = size
    v, u = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    labels = np.full((height, width), 156, np.uint8)  # sky-other
    labels[v > 0.5 - 0.2 * np.exp(-((u - 0.4) / 0.2) ** 2)] = 134  # mountain
    labels[v > 0.7] = 154  # sea
    assert labels.max() < SEMANTIC_CLASSES
    name = f"labels_{height}x{width}.png"
    Image.fromarray(labels, "L").save(folder / name)
    return name


def _prompt(label_map: str) -> dict:
    """The semantic-synthesis template's graph as an API prompt (3 DDIM steps to stay fast)."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
        "3": {"class_type": "LoadImage", "inputs": {"image": label_map}},
        "4": {"class_type": "SemanticMapConditioning",
              "inputs": {"positive": ["2", 0], "negative": ["2", 0], "clip": ["1", 1], "segmentation": ["3", 0]}},
        "5": {"class_type": "KSampler",
              "inputs": {"model": ["1", 0], "seed": 42, "steps": 3, "cfg": 1.0, "sampler_name": "ddim",
                         "scheduler": "ddim_uniform", "positive": ["4", 0], "negative": ["4", 1],
                         "latent_image": ["4", 2], "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "high_res"}},
    }


class EngineSpy:
    """Records what the engine is asked to admit and the inputs the UNet module receives."""

    def __init__(self, engine):
        self.admitted: list[tuple[int, str]] = []
        self.unet_inputs: list[tuple[int, ...]] = []
        admit, use_unet = engine.admit, engine.use_unet

        def spy_admit(nbytes, what, *args, **kwargs):
            self.admitted.append((nbytes, what))
            return admit(nbytes, what, *args, **kwargs)

        @contextlib.contextmanager
        def spy_use_unet(model, **kwargs):
            hook = model.unet.register_forward_pre_hook(
                lambda module, args: self.unet_inputs.append(tuple(args[0].shape)))
            try:
                with use_unet(model, **kwargs) as runnable:
                    yield runnable
            finally:
                hook.remove()

        engine.admit, engine.use_unet = spy_admit, spy_use_unet

    def activations(self) -> list[tuple[int, str]]:
        return [(nbytes, what) for nbytes, what in self.admitted if "activations" in what]


def _run(tmp_path, checkpoint_folder, engine, size: tuple[int, int]):
    services = make_services(tmp_path, engine)
    services.folders.add_model_root("checkpoints", checkpoint_folder, first=True)
    label_map = _label_map_png(services.folders.input, size)
    spy = EngineSpy(engine)
    outcome, events = execute(services, _prompt(label_map))
    return services, spy, outcome, events


def _latent(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The semantic model's latent for a label map of ``size``: 3 channels at 1/4 the pixels."""
    return (1, 3, size[0] // FIRST_STAGE_FACTOR, size[1] // FIRST_STAGE_FACTOR)


def test_high_resolution_labels_sample_whole_to_a_picture_of_their_size(tmp_path, checkpoint_folder):
    training_area = (TRAINING_SIZE[0] * TRAINING_SIZE[1]) // FIRST_STAGE_FACTOR ** 2
    latent = _latent(HIGH_RESOLUTION)
    assert latent[2] * latent[3] >= 4 * training_area and latent[2] != latent[3]

    services, spy, outcome, _ = _run(tmp_path, checkpoint_folder, engine_with_ram(None), HIGH_RESOLUTION)
    assert outcome.status == "success", outcome.messages
    [saved] = list(services.folders.output.glob("high_res_*.png"))
    with Image.open(saved) as picture:
        assert picture.size == (HIGH_RESOLUTION[1], HIGH_RESOLUTION[0])
        assert np.asarray(picture).std() > 0
    # Convolutional sampling: every UNet call sees the whole latent with the label map's
    # rescaled one-hot concatenated (3 + 3 channels), never a tile of it. Guidance 1: one call a step.
    assert spy.unet_inputs and set(spy.unet_inputs) == {(1, 6) + latent[2:]}
    # ... and the engine was asked to admit that run's activations.
    [(nbytes, what)] = spy.activations()
    assert nbytes == unet_inference_bytes(latent, FP32.dtype.itemsize)
    assert what == "the ldm_concat UNet's activations on latents 1×3×16×32 float32"


@pytest.mark.parametrize("size, budget, admitted", [
    (TRAINING_SIZE, 30 * MB, True),  # the training size fits the small budget...
    (HIGH_RESOLUTION, 30 * MB, False),  # ...8x its area does not
    (HIGH_RESOLUTION, 2000 * MB, True),  # a normal budget runs it
])
def test_memory_admission_decides_on_the_bigger_run(tmp_path, checkpoint_folder, size, budget, admitted):
    latent = _latent(size)
    needed = unet_inference_bytes(latent, FP32.dtype.itemsize)
    services, spy, outcome, events = _run(tmp_path, checkpoint_folder, engine_with_ram(budget), size)
    assert [nbytes for nbytes, _ in spy.activations()] == [needed]
    if admitted:
        assert outcome.status == "success", outcome.messages
        assert spy.unet_inputs
        return
    assert outcome.status == "error" and not spy.unet_inputs, "refused before the UNet ran"
    [error] = [data for event, data in events if event == "execution_error"]
    assert error["node_type"] == "KSampler"
    assert error["exception_type"] == "ldm.memory.admission.AdmissionError"
    assert error["exception_message"] == (
        f"the ldm_concat UNet's activations on latents 1×3×{latent[2]}×{latent[3]} float32 needs "
        f"{needed / 1e9:.2g} GB; 0.03 GB of memory is available on cpu")
