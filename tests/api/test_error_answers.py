"""Requests that used to end in aiohttp's plain 500 get a clear 4xx in ComfyUI's JSON error shape,
and an error no handler expected is a JSON 500 with its traceback in the log."""

from __future__ import annotations

import io
import socket
import uuid

import pytest
from PIL import Image

from .conftest import ServerProcess


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def multipart_upload(filename: bytes, data: bytes, **fields: str) -> tuple[bytes, dict]:
    """A multipart body whose file name is sent as raw bytes (a NUL byte included)."""
    boundary = "weft" + uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="'.encode() + filename +
                 b'"\r\nContent-Type: image/png\r\n\r\n' + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def raw_request(port: int, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (headers that are not UTF-8 included); the status and body back."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def assert_comfy_error(body, error_type: str | None = None) -> None:
    assert isinstance(body, dict) and set(body["error"]) >= {"type", "message", "details"}, body
    assert body["node_errors"] == {}
    if error_type is not None:
        assert body["error"]["type"] == error_type, body


def test_upload_onto_a_symlink_leading_outside_is_403(server, base_dir, tmp_path):
    (base_dir / "input").mkdir(exist_ok=True)
    target = tmp_path / "outside.png"
    (base_dir / "input" / "escape.png").symlink_to(target)
    body, headers = multipart_upload(b"escape.png", png_bytes(), overwrite="true")
    status, answer = server.request("POST", "/upload/image", body, headers=headers)
    assert status == 403
    assert_comfy_error(answer, "forbidden_path")
    assert not target.exists()


def test_upload_with_a_nul_in_its_name_is_400(server, base_dir):
    body, headers = multipart_upload(b"a\x00b.png", png_bytes())
    status, answer = server.request("POST", "/upload/image", body, headers=headers)
    assert status == 400
    assert_comfy_error(answer, "invalid_upload")
    assert not list(base_dir.glob("input/a*b.png"))


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    """An explicit --access-token is required on loopback too."""
    from .conftest import make_base
    proc = ServerProcess(make_base(tmp_path_factory.mktemp("weft-token")), ["--access-token", "s3cret-token"])
    proc.start_with_token()
    yield proc
    proc.stop()


def test_authorization_header_not_utf8_is_401(token_server):
    status, body = raw_request(token_server.port, b"GET /queue HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Authorization: Bearer \xff\xfe\xc3\r\nConnection: close\r\n\r\n")
    assert status == 401 and b'"unauthorized"' in body, body[:300]
    status, _ = raw_request(token_server.port, b"GET /queue HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Authorization: Bearer s3cret-token\r\nConnection: close\r\n\r\n")
    assert status == 200


@pytest.mark.parametrize("query", ["offset=99999999999999999999", "offset=-99999999999999999999",
                                   "max_items=99999999999999999999", "offset=" + "9" * 5000])
def test_huge_history_offset_is_400(server, query):
    status, body = server.get("/history?" + query)
    assert status == 400
    assert_comfy_error(body, "invalid_request")
    assert server.get("/history?offset=9223372036854775807")[0] == 200  # the largest is fine


def test_userdata_move_onto_a_folder_is_409(server, base_dir):
    assert server.request("POST", "/userdata/moved.json", b"{}")[0] == 200
    status, body = server.request("POST", "/userdata/moved.json/move/workflows")
    assert status == 409
    assert_comfy_error(body, "destination_is_directory")
    assert (base_dir / "user" / "default" / "moved.json").is_file()
    (base_dir / "user" / "default" / "workflows" / "moved.json").write_text("{}")
    assert server.request("POST", "/userdata/moved.json/move/workflows")[0] == 409  # a namesake inside


def test_unexpected_exception_is_a_json_500_with_the_traceback_logged():
    """The catch-all middleware, on an app built in-process with a handler that fails."""
    import asyncio
    import logging

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from api.app import error_middleware

    async def broken(request):
        raise KeyError("no such thing")

    async def missing(request):
        raise web.HTTPNotFound()

    async def scenario(records):
        app = web.Application(middlewares=[error_middleware])
        app.router.add_get("/broken", broken)
        app.router.add_get("/missing", missing)
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/broken")
            body = await response.json()
            assert response.status == 500 and body["error"]["type"] == "server_error", body
            assert "KeyError" in body["error"]["details"] and "no such thing" not in str(body)
            assert (await client.get("/missing")).status == 404  # aiohttp's own exceptions pass as they are
        assert any(r.exc_info and r.exc_info[0] is KeyError for r in records)

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("api.app").addHandler(handler)
    try:
        asyncio.run(scenario(records))
    finally:
        logging.getLogger("api.app").removeHandler(handler)


@pytest.mark.parametrize("workflow", [
    {"nodes": [], "links": [[1, 1, float("inf"), 2, 0, "IMAGE"]]},  # JSON's Infinity as a slot
    {"nodes": [], "links": 5},
    {"nodes": [{"id": 1, "type": "ImageInvert", "mode": 4, "inputs": []},
               {"id": 2, "type": "SaveImage", "inputs": [{"name": "images", "type": "IMAGE", "link": 1}],
                "widgets_values": ["x"]}],
     "links": [[1, 1, -1, 2, 0, "IMAGE"]]},
])
def test_a_malformed_ui_workflow_is_never_a_500(server, workflow):
    """Shapes the property tests (tests/graph/test_properties.py) found crashing the converter:
    what is left of them converts (the bad parts ignored, with warnings) or is a 400."""
    import json
    import urllib.request

    body = json.dumps({"workflow": workflow}).encode()  # allow_nan: Infinity as Python's json writes it
    request = urllib.request.Request(server.url + "/workflow/convert", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            assert "prompt" in json.loads(response.read())
    except urllib.error.HTTPError as err:
        text = err.read()
        assert err.code == 400, text[:500]
        assert json.loads(text)["error"]["type"] == "invalid_workflow"
