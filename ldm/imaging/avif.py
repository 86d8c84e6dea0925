"""AVIF files, still and animated, through PyAV: SVT-AV1 in 8- or 10-bit YUV 4:2:0.

Colour: ``sRGB`` is BT.709 primaries, the sRGB transfer and the BT.709 matrix; ``HDR`` is BT.2020
with the HLG transfer and ``HDR PQ`` BT.2020 with PQ (SMPTE ST 2084), both with the BT.2020
non-constant-luminance matrix; limited range. The codes (ITU-T H.273) go on the encoder and the
frames, and FFmpeg's muxer writes them into the ``colr`` box (``nclx``). Samples are ``x · 255``
(8-bit) or ``x · 65535`` (10-bit, reduced by the YUV conversion) clipped and truncated, as
ComfyUI quantises them; ``auto`` depth is 10-bit for the HDR spaces and 8-bit for sRGB. Alpha is
refused: the encoder has none.

Metadata is what ComfyUI's editor reads from an AVIF: an ``Exif`` item (ISO/IEC 23008-12) whose
IFD0 holds ``Model`` (0x0110) = ``"prompt:<json>"`` and, counting down from ``Make`` (0x010F),
``"<key>:<json>"`` for every other key, and an ``avif`` major brand. The item is added after
FFmpeg has written the file: an ``infe`` entry, an ``iloc`` entry pointing at the Exif data in
a second ``mdat`` box appended at the end, and a ``cdsc`` reference to the primary item. The
``meta`` box grows, so every file offset behind it (``iloc`` extents, the track's ``stco`` /
``co64`` chunk offsets) moves by the same number of bytes (ISO/IEC 14496-12 box layouts).
"""

from __future__ import annotations

import io
import json
import struct
from fractions import Fraction

import av
import numpy as np
import torch
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc
from PIL import Image

BIT_DEPTHS = ("auto", "8-bit YUV420", "10-bit YUV420")
COLOR_SPACES = ("sRGB", "HDR", "HDR PQ")
# space → (colour primaries, transfer characteristics, matrix coefficients), ITU-T H.273 codes
COLOR_CODES = {"sRGB": (ColorPrimaries.BT709, ColorTrc.IEC61966_2_1, 1),
               "HDR": (ColorPrimaries.BT2020, ColorTrc.ARIB_STD_B67, 9),
               "HDR PQ": (ColorPrimaries.BT2020, ColorTrc.SMPTE2084, 9)}
EXIF_MODEL, EXIF_MAKE = 0x0110, 0x010F
SVT_PRESET = "8"


def resolved_bit_depth(bit_depth: str, color_space: str) -> str:
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f"AVIF bit depth {bit_depth!r} is not one of {', '.join(BIT_DEPTHS)}")
    if color_space not in COLOR_SPACES:
        raise ValueError(f"AVIF input color space {color_space!r} is not one of {', '.join(COLOR_SPACES)}")
    if bit_depth == "auto":
        return "10-bit YUV420" if color_space != "sRGB" else "8-bit YUV420"
    return bit_depth


def _tag(target, color_space: str) -> None:
    target.color_primaries, target.color_trc, target.colorspace = COLOR_CODES[color_space]
    target.color_range = ColorRange.MPEG


def _frame(image: torch.Tensor, ten_bit: bool, color_space: str, pixel_format: str) -> av.VideoFrame:
    if image.ndim == 2:
        image = image.unsqueeze(-1)
    channels = image.shape[-1]
    if channels not in (1, 3):
        raise ValueError("AVIF saving supports 1-channel grayscale and 3-channel RGB images; the SVT-AV1 encoder "
                         f"has no alpha ({channels}-channel images given).")
    scale, dtype = (65535.0, np.uint16) if ten_bit else (255.0, np.uint8)
    values = torch.nan_to_num(image.detach().cpu().double(), nan=0.0)
    samples = (values * scale).clamp(0, scale).numpy().astype(dtype)
    if channels == 1:
        source_format, samples = ("gray16le" if ten_bit else "gray"), samples[..., 0]
    else:
        source_format = "rgb48le" if ten_bit else "rgb24"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(samples), format=source_format)
    frame = frame.reformat(format=pixel_format, dst_colorspace=COLOR_CODES[color_space][2],
                           dst_color_range=ColorRange.MPEG)
    _tag(frame, color_space)
    return frame


def encode(images: torch.Tensor, target, bit_depth: str = "auto", color_space: str = "sRGB", crf: int = 18,
           fps: float = 1.0, loop_count: int | None = None) -> None:
    """Writes ``images`` [N, H, W, C] to ``target`` (a path or a seekable binary file): one still
    image, or an image sequence when ``loop_count`` is given (0 loops forever)."""
    ten_bit = resolved_bit_depth(bit_depth, color_space) == "10-bit YUV420"
    pixel_format = "yuv420p10le" if ten_bit else "yuv420p"
    options = {"loop": str(loop_count)} if loop_count is not None else {}
    target = target if hasattr(target, "write") else str(target)
    with av.open(target, mode="w", format="avif", options=options) as container:
        stream = container.add_stream("libsvtav1", rate=Fraction(round(fps * 1000), 1000))
        stream.height, stream.width = images.shape[1], images.shape[2]
        stream.pix_fmt = pixel_format
        stream.options = {"crf": str(crf), "preset": SVT_PRESET}
        _tag(stream.codec_context, color_space)
        for image in images:
            for packet in stream.encode(_frame(image, ten_bit, color_space, pixel_format)):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def avif_bytes(images: torch.Tensor, bit_depth: str = "auto", color_space: str = "sRGB", crf: int = 18,
               fps: float = 1.0, loop_count: int | None = None, metadata: dict | None = None) -> bytes:
    """:func:`encode` into memory, with ComfyUI's Exif item when ``metadata`` (``{key: value}``,
    values JSON-encoded) is not empty."""
    buffer = io.BytesIO()
    encode(images, buffer, bit_depth, color_space, crf, fps, loop_count)
    data = buffer.getvalue()
    return add_exif_item(data, exif_payload(metadata)) if metadata else data


# -- metadata ----------------------------------------------------------------------------------------

def exif_payload(metadata: dict) -> bytes:
    """An AVIF Exif item: a 4-byte offset to the TIFF header (0), then the TIFF-structured Exif."""
    exif = Image.Exif()
    if "prompt" in metadata:
        exif[EXIF_MODEL] = "prompt:" + json.dumps(metadata["prompt"])
    tag = EXIF_MAKE
    for key, value in metadata.items():
        if key != "prompt":
            exif[tag] = f"{key}:{json.dumps(value)}"
            tag -= 1
    tiff = exif.tobytes()
    if tiff.startswith(b"Exif\0\0"):
        tiff = tiff[6:]
    return b"\0\0\0\0" + tiff


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int, int]]:
    """The boxes in ``data[start:end]``: ``(type, offset, header size, total size)``."""
    end = len(data) if end is None else end
    found, position = [], start
    while position < end:
        if position + 8 > end:
            raise ValueError("truncated box header")
        size, kind = struct.unpack_from(">I4s", data, position)
        header = 8
        if size == 1:
            (size,), header = struct.unpack_from(">Q", data, position + 8), 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            raise ValueError(f"box {kind!r} overruns its container")
        found.append((kind, position, header, size))
        position += size
    return found


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def _read_uint(data, position: int, size: int) -> int:
    return int.from_bytes(data[position:position + size], "big") if size else 0


class _ItemLocations:
    """A parsed ``iloc`` box (versions 0-2) that can move file offsets and take one more item."""

    def __init__(self, box: bytes):
        self.version, self.flags = box[8], int.from_bytes(box[9:12], "big")
        self.offset_size, self.length_size = box[12] >> 4, box[12] & 15
        self.base_size = box[13] >> 4
        self.index_size = box[13] & 15 if self.version in (1, 2) else 0
        id_size = 2 if self.version < 2 else 4
        count = _read_uint(box, 14, id_size)
        position, self.items = 14 + id_size, []
        for _ in range(count):
            item_id = _read_uint(box, position, id_size)
            position += id_size
            method = _read_uint(box, position, 2) & 15 if self.version in (1, 2) else 0
            position += 2 if self.version in (1, 2) else 0
            reference = _read_uint(box, position, 2)
            base = _read_uint(box, position + 2, self.base_size)
            extents_count = _read_uint(box, position + 2 + self.base_size, 2)
            position += 4 + self.base_size
            extents = []
            for _ in range(extents_count):
                index = _read_uint(box, position, self.index_size)
                position += self.index_size
                offset = _read_uint(box, position, self.offset_size)
                length = _read_uint(box, position + self.offset_size, self.length_size)
                position += self.offset_size + self.length_size
                extents.append([index, offset, length])
            self.items.append([item_id, method, reference, base, extents])
        self.id_size = id_size

    def shift(self, delta: int) -> None:
        """Moves the file offsets (construction method 0, the file itself) by ``delta``."""
        for item in self.items:
            if item[1] != 0 or item[2] != 0:
                continue
            if self.base_size:
                item[3] += delta
            else:
                for extent in item[4]:
                    extent[1] += delta

    def add(self, item_id: int, offset: int, length: int) -> None:
        self.items.append([item_id, 0, 0, 0, [[0, offset, length]]])

    def encode(self) -> bytes:
        if self.offset_size == 0 or self.length_size == 0:
            raise ValueError("AVIF iloc without offset or length fields")
        out = bytearray(bytes([self.offset_size << 4 | self.length_size, self.base_size << 4 | self.index_size]))
        out += len(self.items).to_bytes(self.id_size, "big")
        for item_id, method, reference, base, extents in self.items:
            out += item_id.to_bytes(self.id_size, "big")
            if self.version in (1, 2):
                out += method.to_bytes(2, "big")
            out += reference.to_bytes(2, "big") + base.to_bytes(self.base_size, "big")
            out += len(extents).to_bytes(2, "big")
            for index, offset, length in extents:
                out += index.to_bytes(self.index_size, "big") if self.index_size else b""
                out += offset.to_bytes(self.offset_size, "big") + length.to_bytes(self.length_size, "big")
        return _full_box(b"iloc", self.version, self.flags, bytes(out))


def _new_meta(meta: bytes, shift: int, exif_offset: int, exif_length: int) -> bytes:
    """``meta`` with an Exif item at ``exif_offset`` and the file offsets moved by ``shift``."""
    children = {kind: meta[position:position + size] for kind, position, _, size in boxes(meta, 12)}
    for needed in (b"pitm", b"iloc", b"iinf"):
        if needed not in children:
            raise ValueError(f"AVIF meta box has no {needed.decode()} box")
    pitm = children[b"pitm"]
    primary = _read_uint(pitm, 12, 2 if pitm[8] == 0 else 4)
    locations = _ItemLocations(children[b"iloc"])
    locations.shift(shift)
    exif_id = max((item[0] for item in locations.items), default=0) + 1
    if exif_id > 0xFFFF:
        raise ValueError("AVIF has too many items for an Exif item")
    locations.add(exif_id, exif_offset, exif_length)

    iinf = children[b"iinf"]
    count_size = 2 if iinf[8] == 0 else 4
    entries = iinf[12 + count_size:]
    infe = _full_box(b"infe", 2, 0, struct.pack(">HH4s", exif_id, 0, b"Exif") + b"\0")
    new_iinf = _full_box(b"iinf", iinf[8], 0, (_read_uint(iinf, 12, count_size) + 1).to_bytes(count_size, "big")
                         + entries + infe)
    cdsc = _box(b"cdsc", struct.pack(">HHH", exif_id, 1, primary))
    if b"iref" in children:
        iref = children[b"iref"]
        if iref[8] != 0:
            raise ValueError("AVIF iref with 32-bit item ids is not supported")
        new_iref = _full_box(b"iref", 0, 0, iref[12:] + cdsc)
    else:
        new_iref = _full_box(b"iref", 0, 0, cdsc)

    replaced = {b"iloc": locations.encode(), b"iinf": new_iinf, b"iref": new_iref}
    body = b"".join(replaced.get(kind, meta[position:position + size]) for kind, position, _, size in boxes(meta, 12))
    if b"iref" not in children:
        body += new_iref
    return _box(b"meta", meta[8:12] + body)


def _shift_chunk_offsets(moov: bytes, delta: int) -> bytes:
    """``moov`` with every ``stco`` / ``co64`` chunk offset moved by ``delta``."""
    out = bytearray(moov)

    def walk(start: int, end: int) -> None:
        for kind, position, header, size in boxes(out, start, end):
            if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"):
                walk(position + header, position + size)
            elif kind in (b"stco", b"co64"):
                width = 4 if kind == b"stco" else 8
                code = ">I" if width == 4 else ">Q"
                (count,) = struct.unpack_from(">I", out, position + header + 4)
                for entry in range(count):
                    where = position + header + 8 + entry * width
                    struct.pack_into(code, out, where, struct.unpack_from(code, out, where)[0] + delta)

    walk(0, len(out))
    return bytes(out)


def add_exif_item(data: bytes, payload: bytes) -> bytes:
    """An AVIF file (``ftyp``, ``meta``, optionally ``moov``, ``mdat``, as FFmpeg writes it) with
    ``payload`` as an Exif item describing the primary image; the major brand becomes ``avif``."""
    top = boxes(data)
    kinds = [kind for kind, *_ in top]
    if kinds[:2] != [b"ftyp", b"meta"] or b"mdat" not in kinds:
        raise ValueError(f"unexpected AVIF layout {kinds}")
    meta_kind, meta_position, _, meta_size = top[1]
    meta = data[meta_position:meta_position + meta_size]
    # the item's offset depends on the new meta's size, which does not depend on the offset's value
    grown = len(_new_meta(meta, 0, 0, len(payload))) - meta_size
    exif_offset = len(data) + grown + 8
    new_meta = _new_meta(meta, grown, exif_offset, len(payload))
    if exif_offset > 0xFFFFFFFF:
        raise ValueError("AVIF too large for a 32-bit Exif item offset")
    out = bytearray()
    for kind, position, header, size in top:
        box = data[position:position + size]
        if kind == b"ftyp":
            box = bytearray(box)
            if box[8:12] == b"avis" and b"avif" in bytes(box[16:]):
                box[8:12] = b"avif"  # ComfyUI's metadata reader recognises the avif major brand
            box = bytes(box)
        elif kind == b"meta":
            box = new_meta
        elif kind == b"moov":
            box = _shift_chunk_offsets(box, grown)
        out += box
    out += _box(b"mdat", payload)
    return bytes(out)


def read_exif_item(data: bytes) -> bytes | None:
    """The Exif item's data (offset field included) of an AVIF, or None."""
    top = {kind: (position, size) for kind, position, _, size in boxes(data)}
    position, size = top[b"meta"]
    meta = data[position:position + size]
    children = {kind: meta[p:p + s] for kind, p, _, s in boxes(meta, 12)}
    iinf = children[b"iinf"]
    count_size = 2 if iinf[8] == 0 else 4
    exif_id = None
    for kind, p, header, s in boxes(iinf, 12 + count_size):
        entry = iinf[p:p + s]
        if kind == b"infe" and entry[8] >= 2 and entry[16:20] == b"Exif":
            exif_id = struct.unpack_from(">H", entry, 12)[0]
    if exif_id is None:
        return None
    for item_id, method, _, base, extents in _ItemLocations(children[b"iloc"]).items:
        if item_id == exif_id:
            return b"".join(data[base + offset:base + offset + length] for _, offset, length in extents)
    return None
