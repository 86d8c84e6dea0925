"""Still PNG and OpenEXR files through PyAV's (FFmpeg's) encoders: what SaveImageAdvanced writes.

PNG holds 8- or 16-bit samples of sRGB-encoded Rec.709; the frame is tagged BT.709 primaries and
the sRGB transfer, so FFmpeg's encoder writes the ``sRGB``, ``cHRM`` and ``gAMA`` chunks (an HDR tag
would give ``cICP`` and ``cHRM`` instead). Samples are ``x · 255`` or ``x · 65535`` clipped and
truncated, as ComfyUI quantises them.

OpenEXR holds scene-linear light, half or single float, in the gamut the ``chromaticities``
header attribute names (OpenEXR has no transfer-function attribute: linear by convention). Input
colour spaces: ``sRGB`` (sRGB-encoded Rec.709: the sRGB decoding is applied), ``HDR`` (HLG-encoded
Rec.2020: the inverse HLG OETF gives scene light, BT.2100 note 5a, without the display OOTF),
``linear`` (scene-linear Rec.709, written unchanged) and ``linear ACEScg`` (scene-linear AP1 with
the ACES white, written unchanged). Values outside 0..1 are kept. Alpha is never transformed.
Extra header attributes (the colour, and ``string`` attributes such as ``prompt`` and
``workflow``) are spliced into FFmpeg's single-part scanline header, and the offset table
that follows the header is moved by the same number of bytes (OpenEXR file layout: magic,
version, attributes ``name\\0type\\0size value`` ended by a NUL, then one 64-bit absolute file
offset per chunk of scanlines).
"""

from __future__ import annotations

import struct
from fractions import Fraction

import av
import numpy as np
import torch
from av.video.reformatter import ColorPrimaries, ColorTrc

from ldm.imaging.color_spaces import hlg_to_linear, srgb_to_linear

PNG_BIT_DEPTHS = ("8-bit", "16-bit")
PNG_COLOR_SPACES = ("sRGB",)
EXR_BIT_DEPTHS = ("16-bit float", "32-bit float")
EXR_COLOR_SPACES = ("sRGB", "HDR", "linear", "linear ACEScg")

# channels → (frame pixel format of the samples we hand over, the encoder's pixel format)
_PNG_FORMATS = {("8-bit", 1): ("gray", "gray"), ("8-bit", 3): ("rgb24", "rgb24"), ("8-bit", 4): ("rgba", "rgba"),
                ("16-bit", 1): ("gray16le", "gray16be"), ("16-bit", 3): ("rgb48le", "rgb48be"),
                ("16-bit", 4): ("rgba64le", "rgba64be")}
_EXR_FORMATS = {1: ("grayf32le", "grayf32le"), 3: ("gbrpf32le", "gbrpf32le"), 4: ("gbrapf32le", "gbrapf32le")}
_EXR_PIXEL_TYPE = {"16-bit float": "half", "32-bit float": "float"}  # FFmpeg's exr "format" option

EXR_MAGIC = b"\x76\x2f\x31\x01"
# CIE 1931 (x, y) of red, green, blue and white: ITU-R BT.709, BT.2020, ACES AP1 (Academy S-2014-004).
CHROMATICITIES = {
    "Rec.709": (0.6400, 0.3300, 0.3000, 0.6000, 0.1500, 0.0600, 0.3127, 0.3290),
    "Rec.2020": (0.7080, 0.2920, 0.1700, 0.7970, 0.1310, 0.0460, 0.3127, 0.3290),
    "ACEScg": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767),
}
EXR_GAMUTS = {"sRGB": "Rec.709", "linear": "Rec.709", "HDR": "Rec.2020", "linear ACEScg": "ACEScg"}
# Scanlines per chunk for each OpenEXR compression code (none, RLE, ZIPS, ZIP, PIZ, PXR24, B44, B44A, DWAA, DWAB).
_LINES_PER_CHUNK = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32, 8: 32, 9: 256}


def _channels_last(image: torch.Tensor) -> torch.Tensor:
    return image.unsqueeze(-1) if image.ndim == 2 else image  # masks and greyscale come without a channel axis


def _unsupported_channels(file_format: str, bit_depth: str, channels: int) -> ValueError:
    return ValueError(f"No {file_format}/{bit_depth} encoder for {channels}-channel images: supported channel "
                      "counts are 1 (grayscale), 3 (RGB) and 4 (RGBA).")


def _encode_frame(codec_name: str, samples: np.ndarray, frame_format: str, encoder_format: str,
                  options: dict | None = None, tags: tuple | None = None) -> bytes:
    """One frame through an FFmpeg image encoder; for PNG and EXR its packet is the whole file."""
    codec = av.CodecContext.create(codec_name, "w")
    codec.height, codec.width = samples.shape[:2]
    codec.pix_fmt = encoder_format
    codec.time_base = Fraction(1, 1)
    if options:
        codec.options = options
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(samples), format=frame_format)
    if frame_format != encoder_format:
        frame = frame.reformat(format=encoder_format)
    if tags is not None:
        frame.color_primaries, frame.color_trc = tags
    frame.pts = 0
    packets = [*codec.encode(frame), *codec.encode(None)]
    return b"".join(bytes(packet) for packet in packets)


def png_bytes(image: torch.Tensor, bit_depth: str = "8-bit", color_space: str = "sRGB") -> bytes:
    """One image [H, W] or [H, W, 1|3|4] in 0..1 as an 8- or 16-bit PNG tagged sRGB."""
    if bit_depth not in PNG_BIT_DEPTHS:
        raise ValueError(f"PNG bit depth {bit_depth!r} is not one of {', '.join(PNG_BIT_DEPTHS)}")
    if color_space not in PNG_COLOR_SPACES:
        raise ValueError(f"PNG input color space {color_space!r}: only sRGB is available for PNG")
    image = _channels_last(image)
    formats = _PNG_FORMATS.get((bit_depth, image.shape[-1]))
    if formats is None:
        raise _unsupported_channels("png", bit_depth, image.shape[-1])
    scale, dtype = (65535.0, np.uint16) if bit_depth == "16-bit" else (255.0, np.uint8)
    values = torch.nan_to_num(image.detach().cpu().double(), nan=0.0)
    samples = (values * scale).clamp(0, scale).numpy().astype(dtype)
    if samples.shape[-1] == 1:
        samples = samples[..., 0]
    return _encode_frame("png", samples, *formats, tags=(ColorPrimaries.BT709, ColorTrc.IEC61966_2_1))


def exr_linear(image: torch.Tensor, color_space: str) -> torch.Tensor:
    """The scene-linear values an EXR of ``image`` holds (alpha, the 4th channel, unchanged)."""
    if color_space not in EXR_COLOR_SPACES:
        raise ValueError(f"EXR input color space {color_space!r} is not one of {', '.join(EXR_COLOR_SPACES)}")
    image = _channels_last(image).detach().cpu().float()
    decode = {"sRGB": srgb_to_linear, "HDR": hlg_to_linear}.get(color_space)
    if decode is None:
        return image
    if image.shape[-1] == 4:
        return torch.cat((decode(image[..., :3]), image[..., 3:]), dim=-1)
    return decode(image)


def exr_attribute(name: str, kind: str, value: bytes) -> bytes:
    """One header attribute: ``name\\0type\\0`` then the value's size (int32, little-endian) and value."""
    return name.encode("utf-8") + b"\0" + kind.encode("utf-8") + b"\0" + struct.pack("<i", len(value)) + value


def chromaticities_attribute(gamut: str) -> bytes:
    return exr_attribute("chromaticities", "chromaticities", struct.pack("<8f", *CHROMATICITIES[gamut]))


def read_exr_header(data: bytes) -> tuple[dict[str, tuple[str, bytes]], int]:
    """The header attributes ``{name: (type, value)}`` and the offset of the NUL that ends them."""
    if data[:4] != EXR_MAGIC:
        raise ValueError("not an OpenEXR file")
    if data[5] & 0x1E:  # version flags: tiled, long names, deep, multipart
        raise ValueError("only single-part scanline OpenEXR files are supported")
    attributes, position = {}, 8
    while data[position] != 0:
        name_end = data.index(b"\0", position)
        kind_end = data.index(b"\0", name_end + 1)
        (size,) = struct.unpack_from("<i", data, kind_end + 1)
        start = kind_end + 5
        attributes[data[position:name_end].decode("utf-8")] = (data[name_end + 1:kind_end].decode("utf-8"),
                                                               data[start:start + size])
        position = start + size
    return attributes, position


def add_exr_attributes(data: bytes, extra: bytes) -> bytes:
    """``data`` with the encoded attributes ``extra`` appended to its header and the chunk offsets moved."""
    if not extra:
        return data
    attributes, header_end = read_exr_header(data)
    x_min, y_min, x_max, y_max = struct.unpack("<4i", attributes["dataWindow"][1])
    compression = attributes["compression"][1][0]
    chunks = -(-(y_max - y_min + 1) // _LINES_PER_CHUNK[compression])
    table = header_end + 1
    offsets = np.frombuffer(data, dtype="<u8", count=chunks, offset=table) + np.uint64(len(extra))
    return data[:header_end] + extra + b"\0" + offsets.astype("<u8").tobytes() + data[table + 8 * chunks:]


def exr_bytes(image: torch.Tensor, bit_depth: str = "16-bit float", color_space: str = "sRGB",
              text: dict[str, str] | None = None) -> bytes:
    """One image [H, W] or [H, W, 1|3|4] as a scene-linear OpenEXR (no compression) whose
    ``chromaticities`` name its gamut, with one ``string`` attribute per ``text`` item."""
    if bit_depth not in EXR_BIT_DEPTHS:
        raise ValueError(f"EXR bit depth {bit_depth!r} is not one of {', '.join(EXR_BIT_DEPTHS)}")
    image = _channels_last(image)
    formats = _EXR_FORMATS.get(image.shape[-1])
    if formats is None:
        raise _unsupported_channels("exr", bit_depth, image.shape[-1])
    samples = exr_linear(image, color_space).numpy().astype(np.float32)
    if samples.shape[-1] == 1:
        samples = samples[..., 0]
    data = _encode_frame("exr", samples, *formats, options={"format": _EXR_PIXEL_TYPE[bit_depth]})
    extra = b"".join(exr_attribute(key, "string", value.encode("utf-8")) for key, value in (text or {}).items())
    return add_exr_attributes(data, extra + chromaticities_attribute(EXR_GAMUTS[color_space]))
