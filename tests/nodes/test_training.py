"""nodes.training: datasets and the two training stages as nodes, on tiny models and 16 x 16 scenes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from graph.context import ExecutionContext, InterruptFlag, Interrupted, use_context
from graph.folders import FolderPaths, UnsafePathError
from graph.registry import NodeRegistry
from ldm.devices import detect_compute
from ldm.model import ModelHandle
from ldm.sampling.sample import common_ksampler
from ldm.text.handle import ClipHandle
from ldm.sampling.from_handle import guided_model
from ldm.vae import VaeHandle
from nodes import loaders, training
from nodes.services import NodeOptions, Services


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def run(tmp_path):
    """Call a node method in an execution context; ``run.reports`` collects its progress."""
    folders = FolderPaths.under(tmp_path)
    folders.ensure()
    services = Services(folders=folders, options=NodeOptions(),
                        engine=SimpleNamespace(compute=detect_compute("cpu", force_dtype=torch.float32)))
    reports = []

    def call(function, *args, interrupt_at=None, **kwargs):
        flag = InterruptFlag()

        def hook(value, total, preview):
            reports.append((value, total, preview))
            if value == interrupt_at:
                flag.request()

        with use_context(ExecutionContext("prompt", "7", "7", services, flag, hook)):
            return function(*args, **kwargs)

    call.folders, call.reports = folders, reports
    return call


TINY_AE = dict(name="ae", architecture="tiny", steps=4, batch_size=2, learning_rate=1e-3,
               discriminator_start=2, seed=0, resume=True)
TINY_LDM = dict(name="ldm", architecture="tiny", steps=4, batch_size=4, learning_rate=1e-3,
                caption_dropout=0.1, seed=0, resume=True)


def shapes(run, count=16):
    return run(training.ShapesDataset().make, count=count, size=16, seed=0, partial_captions=0.1)[0]


def test_nodes_register(run):
    registry = NodeRegistry()
    assert registry.register_mappings(training.NODE_CLASS_MAPPINGS, training.NODE_DISPLAY_NAME_MAPPINGS,
                                      core=True) == {}
    info = run(registry.object_info)
    assert info["TrainLatentDiffusion"]["output"] == ["MODEL", "CLIP"]
    assert info["TrainAutoencoder"]["output"] == ["VAE"]
    assert info["TrainLatentDiffusion"]["input"]["required"]["vae"][0] == "VAE"
    assert info["ShapesDataset"]["category"] == "training"


def test_image_folder_dataset_stays_inside_input(run):
    folder = run.folders.input / "mine"
    folder.mkdir()
    Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(folder / "x.png")
    (folder / "x.txt").write_text("a black image")
    data = run(training.ImageFolderDataset().load, folder="mine", size=16)[0]
    assert len(data) == 1 and data.caption(0) == "a black image" and data.image(0).shape == (3, 16, 16)
    with pytest.raises(UnsafePathError):
        run(training.ImageFolderDataset().load, folder="../outside", size=16)


def test_train_both_stages_and_load_the_result(run):
    data = shapes(run)
    vae, = run(training.TrainAutoencoder().train, data, **TINY_AE)
    assert isinstance(vae, VaeHandle)
    assert (run.folders.model_roots("vae")[0] / "ae.safetensors").is_file()
    assert [r[0] for r in run.reports] == [1, 2, 3, 4] and run.reports[-1][2] is not None  # preview image

    run.reports.clear()
    model, clip = run(training.TrainLatentDiffusion().train, data, vae, **TINY_LDM)
    assert isinstance(model, ModelHandle) and isinstance(clip, ClipHandle) and model.family == "sd1"
    assert run.reports[-1][:2] == (4, 4) and run.reports[-1][2] is not None
    assert "ldm.safetensors" in run.folders.list_models("checkpoints")

    # the loaders see the new model and it samples through the normal path
    loaded, loaded_clip, loaded_vae = run(loaders.CheckpointLoaderSimple().load_checkpoint, "ldm.safetensors")
    positive = loaded_clip.encode_from_tokens_scheduled(loaded_clip.tokenize(data.caption(0)))
    negative = loaded_clip.encode_from_tokens_scheduled(loaded_clip.tokenize(""))
    guided = guided_model(loaded, loaded.unet)
    latent = common_ksampler(guided, 1, 2, 5.0, "euler", "normal", positive, negative,
                             {"samples": torch.zeros(1, 4, 8, 8)})
    image = loaded_vae.decode(latent["samples"])
    assert image.shape == (1, 16, 16, 3) and torch.isfinite(image).all()


def test_interrupted_training_resumes(run):
    data = shapes(run)
    vae, = run(training.TrainAutoencoder().train, data, **TINY_AE)
    run.reports.clear()
    with pytest.raises(Interrupted):
        run(training.TrainLatentDiffusion().train, data, vae, **TINY_LDM, interrupt_at=2)
    state = run.folders.output / "training" / "ldm" / "diffusion.pt"
    # step 3 ran and was saved; its report is where the interrupt surfaced
    assert [r[0] for r in run.reports if r[1] == 4] == [1, 2]
    assert state.is_file() and torch.load(state, weights_only=True)["step"] == 3
    run.reports.clear()
    run(training.TrainLatentDiffusion().train, data, vae, **TINY_LDM)
    assert [r[0] for r in run.reports if r[1] == 4] == [4]
    run.reports.clear()
    run(training.TrainLatentDiffusion().train, data, vae, **{**TINY_LDM, "resume": False})
    assert [r[0] for r in run.reports if r[1] == 4] == [1, 2, 3, 4]


def test_names_are_plain_file_names(run):
    data = shapes(run)
    with pytest.raises(UnsafePathError):
        run(training.TrainAutoencoder().train, data, **{**TINY_AE, "name": "../escape"})
