import io

import numpy as np
import pytest
import torch
from PIL import Image

from ldm.imaging import image_io


def save(image: Image.Image, path, **kwargs):
    image.save(path, **kwargs)
    return path


def test_rgba_png_gives_one_minus_alpha(tmp_path):
    pixels = np.zeros((2, 3, 4), np.uint8)
    pixels[..., 0] = 255
    pixels[..., 3] = [[0, 51, 255], [255, 255, 102]]
    path = save(Image.fromarray(pixels, "RGBA"), tmp_path / "a.png")
    images, masks = image_io.load_image(path)
    assert images.shape == (1, 2, 3, 3) and images.dtype == torch.float32
    assert torch.all(images[..., 0] == 1) and torch.all(images[..., 1:] == 0)
    assert masks.shape == (1, 2, 3)
    assert torch.allclose(masks[0], torch.tensor([[1.0, 0.8, 0.0], [0.0, 0.0, 0.6]]))


def test_opaque_image_gives_a_64x64_zero_mask(tmp_path):
    path = save(Image.new("RGB", (5, 4), (255, 0, 51)), tmp_path / "a.png")
    images, masks = image_io.load_image(path)
    assert images.shape == (1, 4, 5, 3)
    assert images[0, 0, 0].tolist() == pytest.approx([1.0, 0.0, 0.2])
    assert masks.shape == (1, 64, 64) and masks.abs().sum() == 0


def test_exif_orientation_turns_the_image_upright(tmp_path):
    picture = Image.new("RGB", (3, 2), (0, 0, 0))
    picture.putpixel((0, 0), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree clockwise turn
    path = save(picture, tmp_path / "a.png", exif=exif)
    images, _ = image_io.load_image(path)
    assert images.shape == (1, 3, 2, 3)
    assert images[0, 0, 1].tolist() == [1.0, 0.0, 0.0]  # top-left moved to top-right


def test_gif_frames_become_a_batch(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (4, 4), colour) for colour in colours]
    path = save(frames[0], tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    images, masks = image_io.load_image(path)
    assert images.shape == (3, 4, 4, 3)
    assert [images[i, 0, 0].tolist() for i in range(3)] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert masks.shape[0] == 3


def test_frames_of_another_size_are_dropped(tmp_path):
    frames = [Image.new("RGB", size, (9, 9, 9)) for size in [(4, 3), (5, 5), (4, 3)]]
    path = save(frames[0], tmp_path / "a.tiff", save_all=True, append_images=frames[1:])
    images, _ = image_io.load_image(path)
    assert images.shape == (2, 3, 4, 3)


def test_animated_png_frames_with_alpha(tmp_path):
    frames = [Image.new("RGBA", (2, 2), (255, 0, 0, alpha)) for alpha in (255, 0)]
    path = save(frames[0], tmp_path / "a.png", save_all=True, append_images=frames[1:], default_image=False)
    images, masks = image_io.load_image(path)
    assert images.shape == (2, 2, 2, 3)
    assert masks[:, 0, 0].tolist() == [0.0, 1.0]


def test_palette_transparency_becomes_the_mask(tmp_path):
    picture = Image.new("P", (2, 1))
    picture.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    picture.putpixel((1, 0), 1)
    path = save(picture, tmp_path / "a.png", transparency=0)
    images, masks = image_io.load_image(path)
    assert masks[0].tolist() == [[1.0, 0.0]]
    assert images[0, 0, 1].tolist() == [1.0, 1.0, 1.0]


def test_sixteen_bit_greyscale_keeps_its_range(tmp_path):
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / "a.png")
    images, _ = image_io.load_image(path)
    assert images[0, 0, :, 0].tolist() == pytest.approx([0.0, 32768 / 65535, 1.0])
    assert torch.equal(images[..., 0], images[..., 2])


def test_not_an_image_raises(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"not an image")
    with pytest.raises(OSError):
        image_io.load_image(path)


@pytest.mark.parametrize("channel, expected", [("red", 0.2), ("green", 0.4), ("blue", 0.6), ("alpha", 0.2)])
def test_load_mask_channels(tmp_path, channel, expected):
    path = save(Image.new("RGBA", (3, 2), (51, 102, 153, 204)), tmp_path / "a.png")
    mask = image_io.load_mask(path, channel)
    assert mask.shape == (1, 2, 3)
    assert torch.allclose(mask, torch.full((1, 2, 3), expected))


def test_load_mask_alpha_of_an_opaque_image_is_zero_at_full_size(tmp_path):
    path = save(Image.new("L", (5, 3), 128), tmp_path / "a.png")
    assert torch.equal(image_io.load_mask(path, "alpha"), torch.zeros(1, 3, 5))
    assert image_io.load_mask(path, "green")[0, 0, 0].item() == pytest.approx(128 / 255)


def test_png_bytes_truncates_like_comfyui_and_supports_channel_counts():
    image = torch.tensor([[[0.999, 0.5, 1.5], [-1.0, float("nan"), 0.00392]]])  # [1, 2, 3]
    with Image.open(io.BytesIO(image_io.png_bytes(image))) as decoded:
        assert decoded.mode == "RGB"
        assert np.asarray(decoded).tolist() == [[[254, 127, 255], [0, 0, 0]]]
    for channels, mode in [(1, "L"), (4, "RGBA")]:
        with Image.open(io.BytesIO(image_io.png_bytes(torch.rand(3, 2, channels)))) as decoded:
            assert decoded.mode == mode and decoded.size == (2, 3)


@pytest.mark.parametrize("shape", [(0, 4, 3), (4, 0, 3), (4, 4, 2), (1, 4, 4, 3)])
def test_png_bytes_refuses_unsavable_shapes(shape):
    with pytest.raises(ValueError):
        image_io.png_bytes(torch.zeros(shape))


def test_image_names():
    assert image_io.is_image_name("A.PNG") and image_io.is_image_name("x.webp")
    assert not image_io.is_image_name("notes.txt") and not image_io.is_image_name("model.safetensors")
