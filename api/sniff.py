"""What a file IS, from its first bytes: the media type ``/view`` serves it with.

A file's name says nothing a browser can trust (``poly.shtml`` may be a valid PNG with a page
appended), so ``/view`` serves by content: the magic numbers below, in the order they are tried.
Only image, video, audio and plain-text types that Weft's nodes write are named; anything else
(HTML, SVG, XML, scripts, unknown binaries) gets None and is sent as a download.
"""

from __future__ import annotations

import re

#: How many leading bytes :func:`sniff` looks at.
HEAD_BYTES = 64 * 1024

#: (offset, magic bytes, media type), tried in order.
SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"v/1\x01", "image/x-exr"),
    (0, b"fLaC", "audio/flac"),
)

#: ISO base media (``....ftyp<brand>``): the major brand's media type; other brands are MP4 video.
FTYP_BRANDS = {b"avif": "image/avif", b"avis": "image/avif", b"heic": "image/heic", b"heix": "image/heic",
               b"hevc": "image/heic", b"mif1": "image/heif", b"msf1": "image/heif", b"qt  ": "video/quicktime",
               b"M4A ": "audio/mp4"}

#: Sizes of BMP's info header (BITMAPCOREHEADER … BITMAPV5HEADER), right after its 14-byte file header.
BMP_INFO_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}

#: Markup in a text file: a tag, comment, doctype or processing instruction opening.
_MARKUP = re.compile(rb"<\s*[A-Za-z!?/]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _bmp(head: bytes) -> bool:
    return head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in BMP_INFO_SIZES


def _id3(head: bytes) -> bool:
    """An ID3v2 tag (MP3): "ID3", a major version 2–4, a revision byte, flags."""
    return head[:3] == b"ID3" and len(head) >= 4 and head[3] in (2, 3, 4)


def _riff(head: bytes) -> str | None:
    kind = head[8:12]
    return {b"WEBP": "image/webp", b"WAVE": "audio/wav"}.get(kind)


def _ftyp(head: bytes) -> str | None:
    brand = head[8:12]
    if brand in FTYP_BRANDS:
        return FTYP_BRANDS[brand]
    compatible = head[16:min(len(head), 64)]
    if b"avif" in compatible:
        return "image/avif"
    return "video/mp4"


def _ebml(head: bytes) -> str:
    """Matroska's EBML header names its DocType: ``webm`` or ``matroska``."""
    return "video/webm" if b"webm" in head[:64] else "video/x-matroska"


def _ogg(head: bytes) -> str:
    return "video/ogg" if b"theora" in head[:128] else "audio/ogg"


def _mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG audio frame header at the start: sync bits, a version and a layer (not AAC's ADTS),
    a bitrate and a sample rate that are not the reserved values."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0x03, (head[1] >> 1) & 0x03
    bitrate, sample_rate = head[2] >> 4, (head[2] >> 2) & 0x03
    return version != 1 and layer != 0 and bitrate != 15 and sample_rate != 3


def _plain_text(head: bytes) -> bool:
    """UTF-8 (a character cut at the end of the head allowed), no NUL, no control bytes, no markup."""
    if not head or b"\x00" in head or _MARKUP.search(head):
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or len(head) < HEAD_BYTES:
            return False
        text = head[:exc.start].decode("utf-8")
    return _CONTROL.search(text) is None


def sniff(head: bytes) -> str | None:
    """The media type of content starting with ``head`` (up to :data:`HEAD_BYTES`), or None when
    it is nothing ``/view`` serves inline."""
    for offset, magic, media_type in SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return media_type
    if _bmp(head):
        return "image/bmp"
    if _id3(head) or _mpeg_audio_frame(head):
        return "audio/mpeg"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return _riff(head)
    if head[4:8] == b"ftyp" and len(head) >= 12:
        return _ftyp(head)
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return _ebml(head)
    if head[:4] == b"OggS":
        return _ogg(head)
    if _plain_text(head):
        return "text/plain; charset=utf-8"
    return None


def sniff_file(path) -> str | None:
    with open(path, "rb") as handle:
        return sniff(handle.read(HEAD_BYTES))
