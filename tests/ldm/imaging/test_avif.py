"""AVIF through PyAV: each bit depth and colour space read back with PyAV, the nclx tags, the
animated frame count, ComfyUI's Exif item and the refusals."""

import io
import json

import av
import numpy as np
import pytest
import torch
from PIL import Image

from ldm.imaging import avif


def gradient(frames: int = 1, size: int = 32) -> torch.Tensor:
    """Smooth content: 4:2:0 subsampling (most of the loss) and AV1 at crf 18 keep it within a few codes."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    image = torch.stack([x, y, 0.5 * (x + y)], dim=-1) * 0.8 + 0.1
    return torch.stack([image * (1 - 0.2 * n) for n in range(frames)])


def decoded(data: bytes, stream: int = -1) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(data)) as container:
        return list(container.decode(container.streams.video[stream]))


@pytest.mark.parametrize("space,codes", [("sRGB", (1, 13, 1)), ("HDR", (9, 18, 9)), ("HDR PQ", (9, 16, 9))])
@pytest.mark.parametrize("bit_depth", avif.BIT_DEPTHS)
def test_still_reads_back_with_its_colour_tags(space, codes, bit_depth):
    images = gradient()
    (frame,) = decoded(avif.avif_bytes(images, bit_depth, space))
    ten_bit = bit_depth == "10-bit YUV420" or (bit_depth == "auto" and space != "sRGB")
    assert frame.format.name == ("yuv420p10le" if ten_bit else "yuv420p")
    assert (int(frame.color_primaries), int(frame.color_trc), int(frame.colorspace)) == codes
    assert int(frame.color_range) == 1  # limited ("MPEG") range
    error = np.abs(frame.to_ndarray(format="rgb48le") / 65535.0 - images[0].numpy())
    assert error.mean() < (0.008 if ten_bit else 0.015) and error.max() < (0.035 if ten_bit else 0.05)


def test_greyscale_still():
    grey = gradient()[..., :1]
    (frame,) = decoded(avif.avif_bytes(grey))
    error = np.abs(frame.to_ndarray(format="gray") / 255.0 - grey[0, ..., 0].numpy())
    assert error.mean() < 0.015 and error.max() < 0.05


def test_animated_frame_count_and_rate():
    images = gradient(3)
    data = avif.avif_bytes(images, fps=12.0, loop_count=0)
    frames = decoded(data)  # the image sequence's track
    assert len(frames) == 3
    for frame, image in zip(frames, images):
        assert np.abs(frame.to_ndarray(format="rgb24") / 255.0 - image.numpy()).mean() < 0.02
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.video[-1].average_rate == 12


def test_exif_item_carries_the_workflow_as_comfyui_writes_it():
    prompt, workflow = {"3": {"class_type": "KSampler", "inputs": {}}}, {"nodes": [], "extra": "\u00e9"}
    for images, loop in ((gradient(), None), (gradient(2), 0)):
        data = avif.avif_bytes(images, loop_count=loop, metadata={"prompt": prompt, "workflow": workflow})
        assert data[8:12] == b"avif"  # major brand, for animated files too
        payload = avif.read_exif_item(data)
        assert payload[:4] == b"\0\0\0\0"
        exif = Image.Exif()
        exif.load(b"Exif\0\0" + payload[4:])
        assert exif[0x0110] == "prompt:" + json.dumps(prompt)
        assert exif[0x010F] == "workflow:" + json.dumps(workflow)
        assert len(decoded(data)) == len(images)  # moved offsets still lead to the frames
        with Image.open(io.BytesIO(data)) as opened:  # libavif through Pillow finds the item too
            assert opened.getexif()[0x010F] == "workflow:" + json.dumps(workflow)


def test_without_metadata_there_is_no_exif_item():
    assert avif.read_exif_item(avif.avif_bytes(gradient())) is None


def test_refuses_what_comfyui_refuses():
    with pytest.raises(ValueError, match="alpha"):
        avif.avif_bytes(torch.rand(1, 16, 16, 4))
    with pytest.raises(ValueError, match="bit depth"):
        avif.avif_bytes(gradient(), "16-bit")
    with pytest.raises(ValueError, match="input color space"):
        avif.avif_bytes(gradient(), "auto", "linear")
