import numpy as np
import torch

from ldm.data.shape_reading import read_scene
from ldm.data.shapes import Scene, ShapesDataset, render_scene
from ldm.imaging.operations import blur


def test_reads_rendered_scenes():
    dataset = ShapesDataset(seed=11, length=120)
    for index in range(120):
        scene = dataset.scene(index)
        reading = read_scene(render_scene(scene))
        assert (reading.shape, reading.colour, reading.position, reading.background) == \
            (scene.shape, scene.colour, scene.position, scene.background), index


def test_reads_blurred_noisy_scenes():
    # generated images are softer and noisier than the renders; the reading must survive that
    dataset = ShapesDataset(seed=12, length=60)
    generator = torch.Generator().manual_seed(0)
    right = 0
    for index in range(60):
        scene = dataset.scene(index)
        image = torch.from_numpy(render_scene(scene))[None]
        image = blur(image, 2, 1.0) + 0.03 * torch.randn(image.shape, generator=generator)
        reading = read_scene(image[0].clamp(0, 1).numpy())
        right += (reading.shape, reading.colour, reading.position) == \
            (scene.shape, scene.colour, scene.position)
    assert right >= 57


def test_blank_image_has_no_shape():
    reading = read_scene(np.full((64, 64, 3), 0.5, dtype=np.float32))
    assert reading.shape is None and reading.colour is None and reading.position is None


def test_largest_blob_wins_over_specks():
    image = render_scene(Scene("triangle", "yellow", "bottom right", "black", centre=(48.0, 44.0),
                               half_size=10.0))
    image[5, 5] = image[5, 60] = (1.0, 1.0, 1.0)
    reading = read_scene(image)
    assert (reading.shape, reading.colour, reading.position) == ("triangle", "yellow", "bottom right")
