"""/view serves files by what they are: a polyglot (a real PNG with a page appended) under any
active-content name is an image, never a page; anything that is not a medium Weft makes is a
download; every answer carries nosniff and a CSP. Previews of huge images are converted off the
event loop, so the server keeps answering meanwhile."""

from __future__ import annotations

import io
import threading
import time
import urllib.request
import uuid

import pytest
from PIL import Image

from api.sniff import sniff

from .test_files import png_bytes, upload

VIEW_CSP = "default-src 'none'; img-src 'self' data: blob:; media-src 'self'; style-src 'unsafe-inline'; sandbox"
PAGE = b"<html><body><script>document.title='pwned';fetch('/queue')</script></body></html>"
ACTIVE_NAMES = ["poly.shtml", "poly.html", "poly.svg", "poly.xhtml", "poly.htm"]


def polyglot() -> bytes:
    return png_bytes((4, 4), (200, 10, 10, 255)) + PAGE


def fetch(server, path: str):
    with urllib.request.urlopen(server.url + path, timeout=60) as response:
        return response.status, response.headers, response.read()


def assert_safe_headers(headers) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == VIEW_CSP
    assert "html" not in headers.get_content_type() and "xml" not in headers.get_content_type()


def test_uploaded_polyglot_is_served_as_an_image(server, base_dir):
    status, body = upload(server, polyglot(), filename="poly2.shtml")
    assert status == 200 and body["name"] == "poly2.shtml"
    status, headers, data = fetch(server, "/view?filename=poly2.shtml&type=input")
    assert status == 200 and data.startswith(b"\x89PNG")
    assert_safe_headers(headers)
    assert headers.get_content_type() == "image/png"


def test_upload_still_refuses_what_is_not_an_image(server, base_dir):
    status, body = upload(server, PAGE, filename="page.png")
    assert status == 400 and body["error"]["type"] == "invalid_image"
    assert not (base_dir / "input" / "page.png").exists()


@pytest.mark.parametrize("folder", ["output", "temp"])
@pytest.mark.parametrize("name", ACTIVE_NAMES)
def test_files_on_disk_are_served_by_content(server, base_dir, folder, name):
    (base_dir / folder).mkdir(exist_ok=True)
    (base_dir / folder / name).write_bytes(polyglot())
    status, headers, data = fetch(server, f"/view?filename={name}&type={folder}")
    assert status == 200 and headers.get_content_type() == "image/png"
    assert_safe_headers(headers)
    page = f"page-{uuid.uuid4().hex[:6]}-{name}"
    (base_dir / folder / page).write_bytes(PAGE)
    status, headers, data = fetch(server, f"/view?filename={page}&type={folder}")
    assert status == 200 and headers.get_content_type() == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment")
    assert_safe_headers(headers)


def test_a_png_name_does_not_make_a_page_an_image(server, base_dir):
    (base_dir / "output").mkdir(exist_ok=True)
    (base_dir / "output" / "lies.png").write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>')
    status, headers, _ = fetch(server, "/view?filename=lies.png")
    assert headers.get_content_type() == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment")


def test_text_and_media_are_served_inline_with_their_type(server, base_dir):
    (base_dir / "output").mkdir(exist_ok=True)
    (base_dir / "output" / "notes.html").write_text("a prompt: cat, 4k\n")
    status, headers, _ = fetch(server, "/view?filename=notes.html")
    assert headers.get_content_type() == "text/plain" and headers["Content-Disposition"].startswith("inline")
    assert_safe_headers(headers)
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="WEBP")
    (base_dir / "output" / "anim.bin").write_bytes(buffer.getvalue())
    status, headers, _ = fetch(server, "/view?filename=anim.bin")
    assert headers.get_content_type() == "image/webp"


@pytest.mark.parametrize("head, media_type", [
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "image/png"), (b"\xff\xd8\xff\xe0", "image/jpeg"), (b"GIF89a", "image/gif"),
    (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"), (b"BM" + b"\0" * 12 + b"\x28\0\0\0", "image/bmp"),
    (b"II*\0", "image/tiff"), (b"\0\0\0\x1cftypavif", "image/avif"), (b"\0\0\0\x18ftypheic", "image/heic"),
    (b"v/1\x01", "image/x-exr"), (b"\0\0\0\x20ftypisom", "video/mp4"), (b"\0\0\0\x14ftypqt  ", "video/quicktime"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm"), (b"OggS\0\x02", "audio/ogg"),
    (b"ID3\x04\0", "audio/mpeg"), (b"\xff\xfb\x90\x64", "audio/mpeg"), (b"RIFF\0\0\0\0WAVEfmt ", "audio/wav"),
    (b"fLaC", "audio/flac"), (b"a cat, 4k\n", "text/plain; charset=utf-8"),
    (b"<!DOCTYPE html>", None), (b"<svg>", None), (b"text <script>", None), (b"PK\x03\x04", None),
    (b"\0binary", None), (b"BM<html>", None), (b"\xff\xfe<\0h\0", None),
])
def test_sniff_table(head, media_type):
    assert sniff(head) == media_type


def test_big_previews_leave_the_server_responsive(server, base_dir):
    """Twelve parallel webp previews of a 64-megapixel image; /queue answers within a second."""
    (base_dir / "input").mkdir(exist_ok=True)
    Image.new("RGB", (8000, 8000), (40, 90, 160)).save(base_dir / "input" / "huge.png")
    results: list = []

    def preview():
        try:
            status, headers, data = fetch(server, "/view?filename=huge.png&type=input&preview=webp;90")
            results.append((status, headers.get_content_type(), data[8:12]))
        except Exception as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=preview) for _ in range(12)]
    for thread in threads:
        thread.start()
    latencies = []
    while any(t.is_alive() for t in threads):
        start = time.monotonic()
        assert server.get("/queue")[0] == 200
        latencies.append(time.monotonic() - start)
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert results == [(200, "image/webp", b"WEBP")] * 12, results
    print(f"/queue under 12 previews: {len(latencies)} calls, max {max(latencies):.3f}s")
    assert latencies and max(latencies) < 1.0, latencies
    start = time.monotonic()
    assert fetch(server, "/view?filename=huge.png&type=input&preview=webp;90")[0] == 200
    assert time.monotonic() - start < 1.0  # the cached conversion
