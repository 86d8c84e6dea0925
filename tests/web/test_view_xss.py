"""A stored polyglot opened from /view in Chromium runs nothing: a real PNG with a page appended,
uploaded as poly2.shtml, shows as an image; a plain page under an image's name is a download."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

pytestmark = pytest.mark.browser

MARK = "pwned-" + uuid.uuid4().hex[:8]
PAGE = (f"<html><head><title>untouched</title></head><body><script>document.title='{MARK}';"
        f"fetch('/queue?{MARK}')</script></body></html>").encode()


def _polyglot() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue() + PAGE


def _upload(page, url: str, name: str, data: bytes) -> dict:
    response = page.request.post(url + "/upload/image", multipart={
        "image": {"name": name, "mimeType": "text/html", "buffer": data}, "overwrite": "true"})
    assert response.ok, response.text()
    return response.json()


def _watch(page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url) if MARK in request.url else None)
    return seen


def test_the_page_script_would_run_if_served_as_html(context):
    """The control: the same bytes rendered as a page do run their script (so the next test can tell)."""
    page = context.new_page()
    page.set_content(PAGE.decode())
    assert page.title() == MARK


def test_uploaded_polyglot_opened_from_view_runs_nothing(context, web_server):
    page = context.new_page()
    seen = _watch(page)
    assert _upload(page, web_server["url"], "poly2.shtml", _polyglot())["name"] == "poly2.shtml"
    response = page.goto(web_server["url"] + "/view?filename=poly2.shtml&type=input")
    assert response.status == 200 and response.headers["content-type"] == "image/png"
    assert "sandbox" in response.headers["content-security-policy"]
    page.wait_for_timeout(500)
    assert page.title() != MARK and not seen
    assert page.evaluate("() => document.images.length") == 1  # Chromium's image viewer


@pytest.mark.parametrize("name", ["page.html", "page.svg", "page.png"])
def test_a_plain_page_on_disk_is_a_download(context, web_server, name):
    (web_server["base"] / "output").mkdir(exist_ok=True)
    (web_server["base"] / "output" / name).write_bytes(PAGE)
    page = context.new_page()
    seen = _watch(page)
    with page.expect_download() as download:
        try:
            page.goto(web_server["url"] + f"/view?filename={name}&type=output")
        except Exception as exc:  # noqa: BLE001 - Chromium aborts the navigation of a download
            assert "Download is starting" in str(exc) or "ERR_ABORTED" in str(exc), exc
    assert download.value.suggested_filename == name
    page.wait_for_timeout(300)
    assert page.title() != MARK and not seen
