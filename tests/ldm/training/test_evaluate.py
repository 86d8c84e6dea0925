from collections import Counter

import numpy as np
import pytest
import torch

from ldm.data.shapes import SHAPE_NAMES, POSITION_NAMES, render_scene
from ldm.training.evaluate import (PROMPT_COUNT, evaluate_checkpoint, evaluation_scenes, markdown_table,
                                   score_images)
from ldm.training.export import model_metadata, write_checkpoint
from ldm.training.config import TINY
from ldm.training.init import new_unet
from ldm.training.text import new_text_encoder


def test_prompt_set_is_fixed_and_balanced():
    scenes = evaluation_scenes()
    assert len(scenes) == PROMPT_COUNT >= 200
    assert scenes == evaluation_scenes()
    pairs = Counter((s.shape, s.position) for s in scenes)
    assert set(pairs) == {(shape, position) for shape in SHAPE_NAMES for position in POSITION_NAMES}
    assert set(pairs.values()) == {PROMPT_COUNT // 36}
    assert all(s.colour != s.background for s in scenes)
    assert len({s.caption() for s in scenes}) > 150


def test_scores_of_true_and_empty_images():
    scenes = evaluation_scenes(24)
    images = np.stack([render_scene(s) for s in scenes])
    assert score_images(scenes, images) == {"colour": 1.0, "shape": 1.0, "position": 1.0, "background": 1.0,
                                            "all_three": 1.0}
    blank = np.full_like(images, 0.5)
    scores = score_images(scenes, blank)
    assert scores["shape"] == scores["colour"] == scores["position"] == 0.0


def test_evaluate_a_checkpoint_end_to_end(tmp_path, tiny_vae):
    path = tmp_path / "tiny.safetensors"
    unet = new_unet(TINY.unet, seed=0)
    write_checkpoint(path, unet, new_text_encoder(TINY.text, 1), tiny_vae,
                     model_metadata(unet, title="t", description="d", resolution=16))
    results = evaluate_checkpoint(path, cfgs=(1.0, 5.0), prompts=4, steps=2, size=16, psnr_scenes=8,
                                  log=lambda *_: None)
    assert [row["cfg"] for row in results["generation"]] == [1.0, 5.0]
    assert all(0.0 <= row[k] <= 1.0 for row in results["generation"] for k in ("colour", "shape", "position"))
    assert results["reconstruction"]["count"] == 8 and np.isfinite(results["reconstruction"]["psnr"])
    table = markdown_table(results)
    assert table.splitlines()[0].startswith("| CFG | colour | shape | position")
    assert len(table.splitlines()) == 4
