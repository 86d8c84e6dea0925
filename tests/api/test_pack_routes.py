"""What node packs add through ``server.PromptServer`` in a real server: routes (table, router,
``add_routes``, static), middlewares, on-prompt handlers and websocket messages; and none of it
from a pack whose import failed (tests/facade/packs/server_pack.py is the good pack)."""

import asyncio
import json
import shutil
import struct
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from .conftest import ServerProcess, preview_prompt

SERVER_PACK = Path(__file__).resolve().parents[1] / "facade" / "packs" / "server_pack.py"

BROKEN_PACK = """
from aiohttp import web
from server import PromptServer

@PromptServer.instance.routes.get("/broken_pack/table")
async def table(request):
    return web.json_response({"broken": True})

async def handler(request):
    return web.json_response({"broken": True})

PromptServer.instance.app.router.add_get("/broken_pack/router", handler)
PromptServer.instance.app.add_routes([web.post("/broken_pack/add_routes", handler)])
PromptServer.instance.app.router.add_static("/broken_pack/static", __import__("os").path.dirname(__file__))

@web.middleware
async def tag(request, handler):
    response = await handler(request)
    response.headers["X-Broken-Pack"] = "ran"
    return response

PromptServer.instance.app.middlewares.append(tag)

def hijack(json_data):
    json_data["prompt"] = {}
    return json_data

PromptServer.instance.add_on_prompt_handler(hijack)

raise RuntimeError("broken_pack fails after adding its routes")
"""


#: Tries to take /view from a startup hook, after its import has ended.
LATE_PACK = """
from aiohttp import web
from server import PromptServer

async def take_view(app):
    @PromptServer.instance.routes.get("/view")
    async def view(request):
        return web.Response(text="mine")

PromptServer.instance.app.on_startup.append(take_view)
NODE_CLASS_MAPPINGS = {}
"""


@pytest.fixture(scope="module")
def routes_server(base_dir):
    shutil.copy(SERVER_PACK, base_dir / "custom_nodes" / "server_pack.py")
    (base_dir / "custom_nodes" / "broken_pack.py").write_text(BROKEN_PACK)
    (base_dir / "custom_nodes" / "late_pack.py").write_text(LATE_PACK)
    proc = ServerProcess(base_dir).start()
    yield proc
    proc.stop()


def report_of(server, name):
    return next(p for p in server.get("/node_packs")[1] if p["name"] == name)


def raw_get(server, path, headers=None):
    """(status, headers, body) of a GET, errors included."""
    request = urllib.request.Request(server.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_failed_pack_serves_none_of_its_routes(routes_server):
    broken = report_of(routes_server, "broken_pack")
    assert not broken["loaded"] and "fails after adding its routes" in broken["error"]
    for path in ("/broken_pack/table", "/broken_pack/router", "/api/broken_pack/table",
                 "/broken_pack/static/broken_pack.py"):
        assert routes_server.get(path)[0] == 404, path
    assert routes_server.post("/broken_pack/add_routes")[0] in (404, 405)
    status, headers, _ = raw_get(routes_server, "/server_pack/hello")
    assert status == 200 and "X-Broken-Pack" not in headers  # its middleware is gone too


def test_loaded_pack_routes_answer(routes_server):
    assert report_of(routes_server, "server_pack")["loaded"]
    for prefix in ("", "/api"):
        status, body = routes_server.get(f"{prefix}/server_pack/hello")
        assert status == 200 and body["hello"] is True and body["remaining"] == 0, (prefix, body)
        assert routes_server.get(f"{prefix}/server_pack/router") == (200, {"via": "router"})
        assert routes_server.get(f"{prefix}/server_pack/table") == (200, {"via": "add_routes"})
    assert routes_server.get("/server_pack/static/hello.txt") == (200, b"static hello")


def test_pack_cannot_take_a_core_route_through_the_router(routes_server):
    status, body = routes_server.get("/history")
    assert status == 200 and "stolen" not in body
    rejected = report_of(routes_server, "server_pack")["rejected"]
    assert any("/history" in what for what in rejected)
    assert not any("/history" in what for what in report_of(routes_server, "broken_pack")["rejected"])


def test_pack_middleware_runs_after_the_security_checks(routes_server):
    status, headers, _ = raw_get(routes_server, "/queue")
    assert status == 200 and headers["X-Server-Pack"] == "seen"
    status, headers, _ = raw_get(routes_server, "/queue", {"Host": "evil.example"})
    assert status == 403 and "X-Server-Pack" not in headers


def test_on_prompt_handlers_rewrite_before_validation(routes_server):
    prompt = preview_prompt("please rewrite")
    status, body = routes_server.post("/prompt", {"prompt": prompt})
    assert status == 200, body  # the failing handler is skipped, the broken pack's never ran
    entry = routes_server.wait_for_history(body["prompt_id"])
    assert entry["outputs"]["2"] == {"text": ["rewritten by server_pack"]}
    assert "this on-prompt handler is broken on purpose" in str(routes_server.get("/internal/logs")[1])
    assert routes_server.get(f"/server_pack/history/{body['prompt_id']}")[1][body["prompt_id"]]["outputs"] == \
        entry["outputs"]


def test_node_messages_reach_the_websocket(routes_server):
    async def scenario():
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"{routes_server.url}/ws?clientId=pack-client")
            prompt = preview_prompt("", {"class_type": "ServerPackSend", "inputs": {"text": "hi"}})
            async with session.post(f"{routes_server.url}/prompt",
                                    json={"prompt": prompt, "client_id": "pack-client"}) as response:
                prompt_id = (await response.json())["prompt_id"]
            texts, frames = [], []
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    frames.append(message.data)
                elif message.type == aiohttp.WSMsgType.TEXT:
                    data = json.loads(message.data)
                    texts.append(data)
                    if data["type"] == "executing" and data["data"]["node"] is None:
                        break
            await ws.close()
            return prompt_id, texts, frames

    prompt_id, texts, frames = asyncio.run(asyncio.wait_for(scenario(), 60))
    [event] = [t["data"] for t in texts if t["type"] == "server_pack.event"]
    assert event == {"text": "hi", "node": "1", "prompt": prompt_id}
    kinds = {struct.unpack(">I", f[:4])[0]: f for f in frames}
    preview = kinds[1]
    assert struct.unpack(">I", preview[4:8])[0] == 1 and preview[8:10] == b"\xff\xd8"  # a JPEG
    from io import BytesIO

    from PIL import Image
    assert max(Image.open(BytesIO(preview[8:])).size) <= 32
    text = kinds[3]
    length = struct.unpack(">I", text[4:8])[0]
    assert text[8:8 + length] == b"1" and text[8 + length:] == b"working on hi"


def test_a_refused_route_is_reported_on_the_pack_that_tried_it_only(routes_server):
    """Added from a hook after the pack's import, the refused /view is still the late pack's,
    and no other pack's report names it."""
    assert any("/view" in what for what in report_of(routes_server, "late_pack")["rejected"])
    for other in ("server_pack", "broken_pack", "example_pack", "weft_test_pack"):
        assert not any("/view" in what for what in report_of(routes_server, other)["rejected"]), other
    assert routes_server.get("/view?filename=x.png")[1] != b"mine"  # the core route still answers
