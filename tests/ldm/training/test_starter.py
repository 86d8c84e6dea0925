"""The starter recipe's pipeline (what `make starter-model` runs), on the tiny architecture:
both stages, a second stage-2 phase, the checkpoint with its recipe, and a rerun that resumes."""

import json

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from ldm.model import load_checkpoint
from ldm.training.config import TINY
from ldm.training.starter import Recipe, build_starter

from .conftest import FAST_AUTOENCODER, FAST_DIFFUSION, fast

TINY_RECIPE = Recipe(architecture=TINY, autoencoder=FAST_AUTOENCODER, diffusion=FAST_DIFFUSION,
                     diffusion_scenes=16, partial_captions=0.1, calibration_scenes=8,
                     refine=fast(FAST_DIFFUSION, steps=2, seed=1, min_x0_weight=0.5, high_noise_fraction=0.5))


def test_build_runs_both_stages_and_the_second_phase(tmp_path):
    out, work = tmp_path / "out" / "tiny.safetensors", tmp_path / "work"
    lines = []
    build_starter(out, work, TINY_RECIPE, log=lines.append)
    assert any("second phase: 2 steps" in line for line in lines)
    assert {"autoencoder.pt", "latents.pt", "diffusion.pt", "refine.pt"} <= {p.name for p in work.iterdir()}
    recipe = json.loads(json.loads(_metadata(out)["weft.training"])["recipe"])
    assert [part["type"] for part in recipe] == ["Architecture", "AutoencoderTraining", "DiffusionTraining",
                                                 "DiffusionTraining"]
    assert recipe[3]["min_x0_weight"] == 0.5 and recipe[3]["steps"] == 2
    model, clip, vae = load_checkpoint(out)
    assert model.family == "sd1" and vae.downscale_ratio == 2

    # A rerun finds every stage done and writes the same weights and metadata (the header's key
    # order is the safetensors writer's business, so the file's bytes are not compared).
    first, first_metadata = load_file(out), _metadata(out)
    build_starter(out, work, TINY_RECIPE, log=lines.append)
    again = load_file(out)
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    assert _metadata(out) == first_metadata


def _metadata(path):
    with safe_open(path, "pt") as f:
        return f.metadata()
