import io
import json
import struct
import zlib

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from graph import png_metadata as pm


def plain_png(size=(3, 2)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def chunk_types(data: bytes) -> list[bytes]:
    return [kind for kind, _ in pm.iter_chunks(io.BytesIO(data))]


def test_added_text_chunks_are_read_back_by_us_and_by_pillow():
    prompt = json.dumps({"1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}})
    data = pm.add_text_chunks(plain_png(), {"prompt": prompt, "workflow": "{}"})
    assert pm.read_text(data) == {"prompt": prompt, "workflow": "{}"}
    with Image.open(io.BytesIO(data)) as image:
        assert image.text == {"prompt": prompt, "workflow": "{}"}
        assert image.size == (3, 2)
    assert chunk_types(data)[:3] == [b"IHDR", b"tEXt", b"tEXt"]
    assert chunk_types(data)[-1] == b"IEND"


def test_reads_the_three_chunk_kinds_pillow_writes():
    info = PngInfo()
    info.add_text("plain", "latin-1 é")
    info.add_text("zipped", "z" * 500, zip=True)
    info.add_itxt("intl", "ünïcødé ✓", lang="fr", tkey="clé")
    info.add_itxt("intl_zipped", "✓" * 300, zip=True)
    buffer = io.BytesIO()
    Image.new("L", (2, 2)).save(buffer, format="PNG", pnginfo=info)
    chunks = {c.keyword: c for c in pm.read_text_chunks(io.BytesIO(buffer.getvalue()))}
    assert chunks["plain"].text == "latin-1 é" and chunks["plain"].chunk_type == "tEXt"
    assert chunks["zipped"].text == "z" * 500 and chunks["zipped"].chunk_type == "zTXt"
    assert chunks["intl"].text == "ünïcødé ✓" and chunks["intl"].chunk_type == "iTXt"
    assert chunks["intl_zipped"].text == "✓" * 300


def test_non_latin1_text_becomes_itxt_that_pillow_reads():
    data = pm.add_text_chunks(plain_png(), {"workflow": '{"title": "猫"}'})
    assert b"iTXt" in chunk_types(data)
    assert pm.read_text(data)["workflow"] == '{"title": "猫"}'
    with Image.open(io.BytesIO(data)) as image:
        assert image.text["workflow"] == '{"title": "猫"}'


def test_explicit_ztxt_and_compressed_itxt_round_trip():
    png = plain_png()
    ihdr_end = 8 + 25
    extra = pm.ztxt_chunk("a", "x" * 1000) + pm.itxt_chunk("b", "✓ ok", compressed=True, language="en")
    data = png[:ihdr_end] + extra + png[ihdr_end:]
    assert pm.read_text(data) == {"a": "x" * 1000, "b": "✓ ok"}
    with Image.open(io.BytesIO(data)) as image:
        assert image.text == {"a": "x" * 1000, "b": "✓ ok"}


@pytest.mark.parametrize("keyword", ["", "k" * 80, "a\x00b", "猫", 5])
def test_invalid_keywords_are_refused(keyword):
    with pytest.raises(pm.PngMetadataError):
        pm.text_chunk(keyword, "text")


def test_not_a_png_raises():
    with pytest.raises(pm.PngMetadataError):
        pm.read_text(b"GIF89a....")
    with pytest.raises(pm.PngMetadataError):
        pm.add_text_chunks(b"\x89PNX", {"a": "b"})


def test_truncated_file_yields_the_complete_chunks_before_the_cut():
    data = pm.add_text_chunks(plain_png(), {"first": "1", "second": "2"})
    second_at = data.index(b"second")
    assert pm.read_text(data[:second_at + 2]) == {"first": "1"}
    assert pm.read_text(data[:10]) == {}


def test_chunk_with_wrong_crc_is_skipped():
    good = pm.text_chunk("good", "yes")
    bad = bytearray(pm.text_chunk("bad", "no"))
    bad[-1] ^= 0xFF
    png = plain_png()
    data = png[:33] + bytes(bad) + good + png[33:]
    assert pm.read_text(data) == {"good": "yes"}


def test_malformed_text_chunks_are_skipped():
    png = plain_png()
    broken = (pm.make_chunk(b"tEXt", b"no separator")
              + pm.make_chunk(b"zTXt", b"key\x00\x01" + zlib.compress(b"x"))  # unknown method
              + pm.make_chunk(b"zTXt", b"key2\x00\x00not deflate")
              + pm.make_chunk(b"iTXt", b"key3\x00\x00\x00en")  # header cut short
              + pm.make_chunk(b"iTXt", b"key4\x00\x00\x00\x00\x00\xff\xfe"))  # not UTF-8
    data = png[:33] + broken + pm.text_chunk("fine", "ok") + png[33:]
    assert pm.read_text(data) == {"fine": "ok"}


def test_oversized_compressed_text_is_skipped(monkeypatch):
    monkeypatch.setattr(pm, "MAX_TEXT_BYTES", 1000)
    png = plain_png()
    data = png[:33] + pm.ztxt_chunk("bomb", "0" * 5000) + pm.ztxt_chunk("small", "1" * 10) + png[33:]
    assert pm.read_text(data) == {"small": "1" * 10}


def test_last_duplicate_keyword_wins_like_pillow():
    png = plain_png()
    data = png[:33] + pm.text_chunk("k", "one") + pm.text_chunk("k", "two") + png[33:]
    assert pm.read_text(data) == {"k": "two"}
    with Image.open(io.BytesIO(data)) as image:
        assert image.text["k"] == "two"


def test_reads_paths_and_unseekable_streams(tmp_path):
    data = pm.add_text_chunks(plain_png(), {"prompt": "{}"})
    path = tmp_path / "a.png"
    path.write_bytes(data)
    assert pm.read_text(path) == {"prompt": "{}"}
    assert pm.read_text(str(path)) == {"prompt": "{}"}

    class Unseekable(io.RawIOBase):
        def __init__(self, payload):
            self._inner = io.BytesIO(payload)

        def readable(self):
            return True

        def seekable(self):
            return False

        def readinto(self, buffer):
            chunk = self._inner.read(len(buffer))
            buffer[:len(chunk)] = chunk
            return len(chunk)

    assert pm.read_text(io.BufferedReader(Unseekable(data))) == {"prompt": "{}"}


def test_text_after_image_data_is_found():
    png = plain_png()
    iend_at = len(png) - 12
    data = png[:iend_at] + pm.text_chunk("late", "here") + png[iend_at:]
    assert pm.read_text(data) == {"late": "here"}


def test_chunks_after_iend_are_ignored():
    data = plain_png() + pm.text_chunk("after", "end")
    assert pm.read_text(data) == {}


def test_make_chunk_layout():
    chunk = pm.make_chunk(b"tEXt", b"k\x00v")
    length, kind = struct.unpack(">I4s", chunk[:8])
    assert (length, kind, chunk[8:11]) == (3, b"tEXt", b"k\x00v")
    assert struct.unpack(">I", chunk[-4:])[0] == zlib.crc32(b"tEXtk\x00v")
    with pytest.raises(pm.PngMetadataError):
        pm.make_chunk(b"TXT", b"")
