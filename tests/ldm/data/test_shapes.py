import numpy as np
import torch
import pytest

from ldm.data.shapes import (COLOUR_NAMES, POSITION_NAMES, SHAPE_NAMES, Scene, ShapesDataset,
                             render_scene, shape_coverage)


def test_same_seed_same_scenes_in_any_order():
    a = ShapesDataset(seed=3, length=20)
    b = ShapesDataset(seed=3, length=20)
    forward = [a.image(i) for i in range(20)]
    backward = [b.image(i) for i in reversed(range(20))][::-1]
    for x, y in zip(forward, backward):
        assert np.array_equal(x.numpy(), y.numpy())
    assert [a.caption(i) for i in range(20)] == [b.caption(i) for i in range(20)]


def test_other_seed_other_scenes():
    a, b = ShapesDataset(seed=0, length=8), ShapesDataset(seed=1, length=8)
    assert [a.scene(i) for i in range(8)] != [b.scene(i) for i in range(8)]


def test_scene_vocabulary_and_caption():
    dataset = ShapesDataset(seed=0, length=200)
    for index in range(200):
        scene = dataset.scene(index)
        assert scene.shape in SHAPE_NAMES and scene.position in POSITION_NAMES
        assert scene.colour in COLOUR_NAMES and scene.background in COLOUR_NAMES
        assert scene.colour != scene.background
        assert dataset.caption(index) == scene.caption()
    scene = Scene("circle", "red", "top left", "blue")
    assert scene.caption() == "a red circle at the top left on a blue background"
    assert Scene("square", "white", "center", "black").caption() == \
        "a white square in the center on a black background"
    assert scene.caption(with_position=False, with_background=False) == "a red circle"


def test_partial_captions_leave_the_scenes_alone():
    full = ShapesDataset(seed=5, length=300)
    partial = ShapesDataset(seed=5, length=300, partial_captions=0.5)
    assert all(full.scene(i) == partial.scene(i) for i in range(300))
    captions = [partial.caption(i) for i in range(300)]
    assert any("background" not in c for c in captions)
    assert any(" at the " not in c and " on the " not in c and " in the " not in c for c in captions)
    for index, caption in enumerate(captions):
        scene = partial.scene(index)
        assert caption.startswith(f"a {scene.colour} {scene.shape}")


def test_image_format_and_size():
    image = ShapesDataset(seed=0, length=2, size=16).image(1)
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    with pytest.raises(IndexError):
        ShapesDataset(seed=0, length=2).image(2)


def test_rendered_shape_fills_its_box():
    # each shape touches all four sides of its box and has its known area there
    areas = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5, "cross": 5.0 / 9.0}
    for shape, area in areas.items():
        coverage = shape_coverage(shape, (32.0, 32.0), 16.0, 64)
        assert coverage.sum() / 32.0 ** 2 == pytest.approx(area, abs=0.01)
        rows, cols = np.nonzero(coverage > 0)
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (16, 47, 16, 47) or shape != "square"


def test_scene_colours():
    scene = Scene("square", "red", "center", "blue", centre=(32.0, 32.0), half_size=8.0)
    image = render_scene(scene)
    assert np.allclose(image[32, 32], np.array([215, 40, 40]) / 255.0)
    assert np.allclose(image[2, 2], np.array([40, 85, 210]) / 255.0)
