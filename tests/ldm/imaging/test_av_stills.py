"""PNG and OpenEXR through PyAV: each bit depth read back (PNG with Pillow, EXR with PyAV), the
colour tags, the EXR header attributes and the refusals."""

import io
import struct
import zlib

import av
import numpy as np
import pytest
import torch
from PIL import Image

from ldm.imaging import av_stills
from ldm.imaging.color_spaces import hlg_to_linear, srgb_to_linear


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    found, position = [], 8
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[position + 8 + length:position + 12 + length])[0]
        found.append((kind, body))
        position += 12 + length
    return found


def exr_pixels(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        if "f16" not in frame.format.name:
            return frame.to_ndarray()
        # PyAV has no arrays of half floats (and swscale would clip them to 0..1): read the planes
        planes = [np.frombuffer(bytes(plane), "<f2").reshape(frame.height, plane.line_size // 2)[:, :frame.width]
                  for plane in frame.planes]
        if len(planes) == 1:
            return planes[0].astype(np.float32)
        order = [2, 0, 1, 3][:len(planes)]  # G, B, R(, A) planes to R, G, B(, A)
        return np.stack([planes[index] for index in order], axis=-1).astype(np.float32)


@pytest.mark.parametrize("channels,mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_8bit_png_reads_back_exactly(channels, mode):
    image = torch.rand(3, 5, channels)
    with Image.open(io.BytesIO(av_stills.png_bytes(image, "8-bit"))) as saved:
        assert saved.mode == mode
        expected = (image.double() * 255).clamp(0, 255).numpy().astype(np.uint8)
        np.testing.assert_array_equal(np.asarray(saved), expected[..., 0] if channels == 1 else expected)


def test_16bit_png_reads_back_exactly():
    grey = torch.rand(3, 4)  # a mask-shaped image without a channel axis
    data = av_stills.png_bytes(grey, "16-bit")
    assert data[24:26] == bytes([16, 0])  # IHDR: bit depth 16, greyscale
    with Image.open(io.BytesIO(data)) as saved:
        assert saved.mode == "I;16"
        np.testing.assert_array_equal(np.asarray(saved), (grey.double() * 65535).numpy().astype(np.uint16))
    rgb = torch.rand(3, 4, 3)
    data = av_stills.png_bytes(rgb, "16-bit")
    assert data[24:26] == bytes([16, 2])
    with Image.open(io.BytesIO(data)) as saved:  # Pillow reads 16-bit RGB as its high bytes
        np.testing.assert_array_equal(np.asarray(saved), (rgb.double() * 65535).numpy().astype(np.uint16) >> 8)
    idat = b"".join(body for kind, body in png_chunks(data) if kind == b"IDAT")
    np.testing.assert_array_equal(unfiltered(zlib.decompress(idat), 3, 4 * 3 * 2, 6).view(">u2").reshape(3, 4, 3),
                                  (rgb.double() * 65535).numpy().astype(np.uint16))


def unfiltered(raw: bytes, height: int, row_bytes: int, pixel_bytes: int) -> np.ndarray:
    """PNG scanlines with their filters undone (PNG specification, section 9)."""
    rows, previous = [], bytearray(row_bytes)
    for y in range(height):
        kind, line = raw[y * (row_bytes + 1)], bytearray(raw[y * (row_bytes + 1) + 1:(y + 1) * (row_bytes + 1)])
        for i in range(row_bytes):
            a = line[i - pixel_bytes] if i >= pixel_bytes else 0
            b, c = previous[i], previous[i - pixel_bytes] if i >= pixel_bytes else 0
            if kind == 4:
                p = a + b - c
                predictor = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
            else:
                predictor = (0, a, b, (a + b) // 2, 0)[kind]
            line[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(line))
        previous = line
    return np.frombuffer(b"".join(rows), np.uint8).reshape(height, row_bytes)


def test_png_is_tagged_srgb():
    kinds = dict(png_chunks(av_stills.png_bytes(torch.rand(2, 2, 3))))
    assert kinds[b"sRGB"] == b"\x01"  # FFmpeg's rendering intent for sRGB
    assert struct.unpack(">I", kinds[b"gAMA"]) == (45455,)  # 1/2.2 · 100000
    white_and_primaries = struct.unpack(">8I", kinds[b"cHRM"])
    assert white_and_primaries == (31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)
    assert b"cICP" not in kinds and b"iCCP" not in kinds


def test_png_refuses_what_comfyui_refuses():
    with pytest.raises(ValueError, match="bit depth"):
        av_stills.png_bytes(torch.rand(2, 2, 3), "32-bit float")
    with pytest.raises(ValueError, match="only sRGB"):
        av_stills.png_bytes(torch.rand(2, 2, 3), "8-bit", "HDR")
    with pytest.raises(ValueError, match="2-channel"):
        av_stills.png_bytes(torch.rand(2, 2, 2), "16-bit")


# FFmpeg truncates floats to half precision: within one unit of the last place
@pytest.mark.parametrize("bit_depth,tolerance", [("32-bit float", 0.0), ("16-bit float", 2.0 ** -10)])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_exr_reads_back_within_its_precision(bit_depth, tolerance, channels):
    image = torch.rand(4, 5, channels) * 4 - 1  # scene-linear values outside 0..1 survive
    read = exr_pixels(av_stills.exr_bytes(image, bit_depth, "linear"))
    expected = image.numpy()[..., 0] if channels == 1 else image.numpy()
    assert read.shape == expected.shape and read.dtype == np.float32
    np.testing.assert_allclose(read, expected, rtol=tolerance, atol=1e-7)


def test_exr_linearises_by_input_color_space():
    image = torch.rand(3, 4, 4)
    for space, decode in (("sRGB", srgb_to_linear), ("HDR", hlg_to_linear), ("linear", None),
                          ("linear ACEScg", None)):
        read = exr_pixels(av_stills.exr_bytes(image, "32-bit float", space))
        rgb = image[..., :3] if decode is None else decode(image[..., :3])
        np.testing.assert_allclose(read[..., :3], rgb.numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(read[..., 3], image[..., 3].numpy())  # alpha untouched


@pytest.mark.parametrize("space,primaries", [
    ("sRGB", (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)),
    ("linear", (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)),
    ("HDR", (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290)),
    ("linear ACEScg", (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767))])
def test_exr_chromaticities_and_text_attributes(space, primaries):
    data = av_stills.exr_bytes(torch.rand(17, 3, 3), "16-bit float", space,
                               {"prompt": '{"1": {}}', "workflow": '{"nodes": ["é"]}'})
    attributes, _ = av_stills.read_exr_header(data)
    kind, value = attributes["chromaticities"]
    assert kind == "chromaticities"
    np.testing.assert_allclose(struct.unpack("<8f", value), primaries, rtol=1e-6)
    assert attributes["prompt"] == ("string", b'{"1": {}}')
    assert attributes["workflow"][1].decode("utf-8") == '{"nodes": ["\u00e9"]}'
    assert exr_pixels(data).shape == (17, 3, 3)  # the moved offset table still finds every scanline


def test_exr_refuses_what_comfyui_refuses():
    with pytest.raises(ValueError, match="bit depth"):
        av_stills.exr_bytes(torch.rand(2, 2, 3), "8-bit")
    with pytest.raises(ValueError, match="input color space"):
        av_stills.exr_bytes(torch.rand(2, 2, 3), "32-bit float", "HDR PQ")
    with pytest.raises(ValueError, match="2-channel"):
        av_stills.exr_bytes(torch.rand(2, 2, 2))
