"""Text chunks of PNG files: read and write ``tEXt``, ``zTXt`` and ``iTXt`` (standard library only).

ComfyUI-compatible images carry the graph that made them in text chunks: ``prompt`` holds the
JSON of the API prompt and ``workflow`` the JSON of the editor's workflow (one chunk per key of
``extra_pnginfo``). SaveImage writes them here; the API and the editor read them back to restore
a workflow from a dropped or uploaded PNG.

Chunk layouts follow the PNG specification (ISO/IEC 15948, section 11.3.4): every chunk is
``length (4, big-endian) | type (4) | data | CRC-32 of type+data (4)``. Keywords are 1-79 bytes
of Latin-1 without NUL. ``tEXt`` text is Latin-1; ``zTXt`` is Latin-1 deflated; ``iTXt`` is
UTF-8, optionally deflated, with a language tag and a translated keyword.

The reader is lenient about damage (a chunk with a wrong CRC, bad compression or oversized
text is skipped; a truncated file yields the chunks read so far) and strict about identity
(a file that does not start with the PNG signature raises :class:`PngMetadataError`).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNK_TYPES = (b"tEXt", b"zTXt", b"iTXt")

#: Largest text we decompress from one chunk; guards against deflate bombs in uploads.
MAX_TEXT_BYTES = 64 * 1024 * 1024
#: Largest chunk we read into memory at all (a text chunk bigger than this is skipped).
MAX_CHUNK_BYTES = 256 * 1024 * 1024


class PngMetadataError(ValueError):
    """Not a PNG file, or a text chunk that cannot be written as asked."""


@dataclass(frozen=True)
class TextChunk:
    keyword: str
    text: str
    chunk_type: str  # "tEXt" | "zTXt" | "iTXt"


# -- writing ---------------------------------------------------------------------------------------

def check_keyword(keyword: str) -> bytes:
    """The keyword as PNG bytes, or PngMetadataError (1-79 Latin-1 bytes, no NUL)."""
    if not isinstance(keyword, str):
        raise PngMetadataError(f"a PNG text keyword must be a string, got {type(keyword).__name__}")
    try:
        raw = keyword.encode("latin-1")
    except UnicodeEncodeError:
        raise PngMetadataError(f"PNG text keyword {keyword!r} is not Latin-1") from None
    if not 1 <= len(raw) <= 79:
        raise PngMetadataError(f"PNG text keyword must be 1-79 bytes, got {len(raw)}")
    if b"\x00" in raw:
        raise PngMetadataError("PNG text keyword contains a NUL byte")
    return raw


def make_chunk(chunk_type: bytes, data: bytes) -> bytes:
    """One encoded chunk: length, type, data, CRC."""
    if len(chunk_type) != 4:
        raise PngMetadataError(f"chunk type must be 4 bytes, got {chunk_type!r}")
    crc = zlib.crc32(chunk_type + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", crc)


def text_chunk(keyword: str, text: str) -> bytes:
    """A ``tEXt`` chunk when the text is Latin-1 (what ComfyUI writes), else an ``iTXt`` chunk."""
    raw_keyword = check_keyword(keyword)
    try:
        raw_text = text.encode("latin-1")
    except UnicodeEncodeError:
        return itxt_chunk(keyword, text)
    return make_chunk(b"tEXt", raw_keyword + b"\x00" + raw_text)


def ztxt_chunk(keyword: str, text: str) -> bytes:
    """A deflated Latin-1 ``zTXt`` chunk (compression method 0)."""
    raw_keyword = check_keyword(keyword)
    try:
        raw_text = text.encode("latin-1")
    except UnicodeEncodeError:
        raise PngMetadataError("zTXt text must be Latin-1; use an iTXt chunk") from None
    return make_chunk(b"zTXt", raw_keyword + b"\x00\x00" + zlib.compress(raw_text))


def itxt_chunk(keyword: str, text: str, *, compressed: bool = False, language: str = "",
               translated_keyword: str = "") -> bytes:
    """A UTF-8 ``iTXt`` chunk, optionally deflated."""
    raw_keyword = check_keyword(keyword)
    payload = text.encode("utf-8")
    if compressed:
        payload = zlib.compress(payload)
    header = (raw_keyword + b"\x00" + bytes([1 if compressed else 0, 0])
              + language.encode("ascii") + b"\x00" + translated_keyword.encode("utf-8") + b"\x00")
    return make_chunk(b"iTXt", header + payload)


def add_text_chunks(png: bytes, chunks: Mapping[str, str]) -> bytes:
    """``png`` with one text chunk per item, placed right after ``IHDR`` (before the image data)."""
    if not png.startswith(PNG_SIGNATURE):
        raise PngMetadataError("not a PNG file")
    ihdr_end = len(PNG_SIGNATURE) + 8 + 13 + 4  # IHDR always holds 13 bytes of data
    if png[len(PNG_SIGNATURE) + 4:len(PNG_SIGNATURE) + 8] != b"IHDR" or len(png) < ihdr_end:
        raise PngMetadataError("PNG file does not start with an IHDR chunk")
    encoded = b"".join(text_chunk(keyword, text) for keyword, text in chunks.items())
    return png[:ihdr_end] + encoded + png[ihdr_end:]


# -- reading ---------------------------------------------------------------------------------------

def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def _skip(stream: BinaryIO, size: int) -> bool:
    """Move past ``size`` bytes; False when the stream ends first."""
    if stream.seekable():
        here = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        if here + size > end:
            return False
        stream.seek(here + size)
        return True
    while size > 0:
        block = stream.read(min(size, 1 << 20))
        if not block:
            return False
        size -= len(block)
    return True


def iter_chunks(stream: BinaryIO, wanted: tuple[bytes, ...] | None = None
                ) -> Iterator[tuple[bytes, bytes | None]]:
    """``(chunk_type, data)`` for each chunk up to ``IEND``; ``data`` is None for chunks not in
    ``wanted`` (skipped without reading) and for wanted chunks whose CRC is wrong or that are
    larger than MAX_CHUNK_BYTES. Raises PngMetadataError when the signature is missing."""
    if stream.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
        raise PngMetadataError("not a PNG file")
    while True:
        header = _read_exactly(stream, 8)
        if header is None:
            return  # truncated: keep what was read
        length, chunk_type = struct.unpack(">I4s", header)
        if (wanted is not None and chunk_type not in wanted) or length > MAX_CHUNK_BYTES:
            if not _skip(stream, length + 4):
                return
            yield chunk_type, None
        else:
            body = _read_exactly(stream, length + 4)
            if body is None:
                return
            data, (crc,) = body[:length], struct.unpack(">I", body[length:])
            yield chunk_type, data if zlib.crc32(chunk_type + data) & 0xFFFFFFFF == crc else None
        if chunk_type == b"IEND":
            return


def _inflate(data: bytes) -> bytes | None:
    """Decompress at most MAX_TEXT_BYTES; None for bad or oversized data."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_TEXT_BYTES)
    except zlib.error:
        return None
    if inflater.unconsumed_tail or not inflater.eof:
        return None
    return out


def decode_text_chunk(chunk_type: bytes, data: bytes) -> TextChunk | None:
    """One text chunk's keyword and text; None when it is malformed."""
    keyword_raw, sep, rest = data.partition(b"\x00")
    if not sep or not 1 <= len(keyword_raw) <= 79:
        return None
    keyword = keyword_raw.decode("latin-1")
    if chunk_type == b"tEXt":
        return TextChunk(keyword, rest.decode("latin-1"), "tEXt")
    if chunk_type == b"zTXt":
        if not rest or rest[0] != 0:  # method 0 (deflate) is the only one defined
            return None
        text = _inflate(rest[1:])
        return None if text is None else TextChunk(keyword, text.decode("latin-1"), "zTXt")
    if chunk_type == b"iTXt":
        if len(rest) < 2:
            return None
        compressed, method = rest[0], rest[1]
        _language, sep1, rest = rest[2:].partition(b"\x00")
        _translated, sep2, payload = rest.partition(b"\x00")
        if not (sep1 and sep2):
            return None
        if compressed:
            if method != 0:
                return None
            inflated = _inflate(payload)
            if inflated is None:
                return None
            payload = inflated
        try:
            return TextChunk(keyword, payload.decode("utf-8"), "iTXt")
        except UnicodeDecodeError:
            return None
    return None


def read_text_chunks(stream: BinaryIO) -> list[TextChunk]:
    """Every readable text chunk, in file order."""
    out = []
    for chunk_type, data in iter_chunks(stream, TEXT_CHUNK_TYPES):
        if data is not None and chunk_type in TEXT_CHUNK_TYPES:
            chunk = decode_text_chunk(chunk_type, data)
            if chunk is not None:
                out.append(chunk)
    return out


def _open(source: bytes | bytearray | str | os.PathLike | BinaryIO):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        return open(source, "rb")
    return source


def read_text(source: bytes | str | os.PathLike | BinaryIO) -> dict[str, str]:
    """``{keyword: text}`` of a PNG (bytes, a path or a binary file). A keyword that appears
    twice keeps its last text, as Pillow's ``Image.text`` does."""
    stream = _open(source)
    try:
        return {chunk.keyword: chunk.text for chunk in read_text_chunks(stream)}
    finally:
        if stream is not source:
            stream.close()
