"""The layout probe: the variance left once attributes are known, the position read-out, and a
few real probe steps on the tiny architecture."""

import math

import pytest

import torch

from ldm.data.shapes import POSITION_NAMES, Scene, grid_centre
from ldm.training.config import TINY
from ldm.training.layout_probe import (attribute_variance, held_out_scenes, position_accuracy,
                                       position_probe, run_layout_probe)


def _scenes_and_latents(per_position: int = 10, side: int = 8):
    """Red squares on blue, each position ``per_position`` times; a latent is a bright 2 x 2
    block in the position's cell, plus a little noise."""
    generator = torch.Generator().manual_seed(0)
    scenes, latents = [], []
    for repeat in range(per_position):
        for position in POSITION_NAMES:
            scenes.append(Scene(shape="square", colour="red", position=position, background="blue",
                                centre=grid_centre(position)))
            latent = 0.1 * torch.randn((4, side, side), generator=generator)
            index = POSITION_NAMES.index(position)
            row, column = 1 + 3 * (index // 3), 1 + 3 * (index % 3)
            latent[:, row:row + 2, column:column + 2] += 3.0
            latents.append(latent)
    return scenes, torch.stack(latents)


def test_attribute_variance_falls_as_attributes_are_known():
    scenes, latents = _scenes_and_latents()
    total = attribute_variance(latents, scenes, [])
    colours = attribute_variance(latents, scenes, ["colour", "background"])
    positions = attribute_variance(latents, scenes, ["colour", "background", "position"])
    assert math.isclose(total, colours, rel_tol=1e-6)  # every scene has the same colours
    assert positions < 0.02 < total
    assert math.isclose(positions, 0.01, rel_tol=0.2)  # what is left is the 0.1-std noise


def test_position_read_out_is_right_for_the_truth_and_chance_for_a_constant():
    scenes, latents = _scenes_and_latents()
    held_out = held_out_scenes(scenes, per_position=2)
    assert len(held_out) == 18 and {scenes[i].position for i in held_out} == set(POSITION_NAMES)
    probe = position_probe(latents, scenes, held_out, TINY.text.width)
    truth_templates = probe.templates[torch.arange(len(held_out)), probe.truth]
    assert position_accuracy(lambda noise, ids: truth_templates, probe) == 1.0
    # Right layouts for the wrong captions: nothing right.
    assert position_accuracy(lambda noise, ids: truth_templates.roll(2, 0), probe) == 0.0
    # A prediction that ignores the caption lands every probe on the same position: 1 in 9.
    mean = latents.mean(0).expand_as(truth_templates)
    assert math.isclose(position_accuracy(lambda noise, ids: mean, probe), 1 / 9, rel_tol=1e-6)


def test_probe_trains_and_reads_on_the_tiny_architecture():
    scenes, latents = _scenes_and_latents(per_position=4)
    seen = []
    readings = run_layout_probe(latents, scenes, TINY, steps=3, batch_size=4, every=2,
                                precision="fp32", probes_per_position=1,
                                report=seen.append)
    assert [r.step for r in readings] == [2, 3] and seen == readings
    assert all(math.isfinite(r.loss) and 0.0 <= r.accuracy <= 1.0 for r in readings)


def test_a_probe_without_templates_for_its_colours_says_so():
    scenes, latents = _scenes_and_latents(per_position=2)
    scenes[-1] = Scene(shape="square", colour="green", position=scenes[-1].position, background="white")
    with pytest.raises(ValueError, match="green on white"):
        position_probe(latents, scenes, [len(scenes) - 1], TINY.text.width)
