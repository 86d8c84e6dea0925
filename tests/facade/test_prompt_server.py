"""``server.PromptServer`` in process (api.compat): what packs add is recorded per pack and taken
back when the pack fails, applied to the real application behind the core routes and the
security middleware; messages and their binary frames; on-prompt handlers; the prompt queue
over Weft's job store. tests/api/test_pack_routes.py runs the same through a server process."""

from __future__ import annotations

import asyncio
import io
import logging
import struct

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from api.app import build_app
from api.compat import BinaryEventTypes, PromptServer
from api.hub import Hub
from api.state import AppState, ServerOptions
from graph.context import ExecutionContext, InterruptFlag, use_context
from graph.executor import Executor
from graph.folders import FolderPaths
from graph.jobs import JobStore
from graph.registry import NodeRegistry
from graph.worker import Worker
from nodes import register_builtin_nodes
from nodes.custom import PackReport


async def ok(request):
    return web.json_response({"path": request.path})


class FakeHub:
    """Records what reaches the hub, and from which thread-safe entry."""

    def __init__(self):
        self.calls = []

    def call_threadsafe(self, fn, *args):
        fn(*args)

    def send_json(self, event, data, sid=None):
        self.calls.append(("json", event, data, sid))

    def send_preview(self, image_bytes, image_format, metadata, sid):
        self.calls.append(("preview", image_bytes, image_format, metadata, sid))

    def send_bytes(self, event, payload, sid=None):
        self.calls.append(("bytes", event, payload, sid))

    def sockets(self):
        return {}


def studio_state(tmp_path, packs=()) -> AppState:
    folders = FolderPaths.under(tmp_path)
    folders.ensure()
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    store = JobStore(tmp_path / "jobs.sqlite3")
    executor = Executor(registry)
    hub = Hub()
    worker = Worker(store, executor, lambda *a: None)
    return AppState(registry=registry, store=store, executor=executor, worker=worker, hub=hub, folders=folders,
                    options=ServerOptions(web_root=None), packs=list(packs))


def preview_prompt(text: str) -> dict:
    return {"1": {"class_type": "PrimitiveString", "inputs": {"value": text}},
            "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}


def add_everything(ps: PromptServer, tag: str) -> None:
    """Every kind of addition a pack makes at import."""

    @ps.routes.get(f"/{tag}/table")
    async def table(request):
        return web.json_response({"pack": tag})

    ps.app.router.add_get(f"/{tag}/router", ok)
    ps.app.router.add_resource(f"/{tag}/resource").add_route("GET", ok)
    ps.app.add_routes([web.post(f"/{tag}/posted", ok)])
    ps.app.router.add_static(f"/{tag}/static", ".")

    @web.middleware
    async def middleware(request, handler):
        response = await handler(request)
        response.headers[f"X-{tag}"] = "1"
        return response

    ps.app.middlewares.insert(0, middleware)  # a pack asking to go first still goes after security
    ps.app.on_startup.append(lambda app: None)
    ps.app[f"{tag}.key"] = tag
    ps.add_on_prompt_handler(lambda data: data)


def test_failed_pack_additions_are_taken_back():
    ps = PromptServer(FakeHub())
    ps.begin_pack("good")
    add_everything(ps, "good")
    ps.end_pack("good", True)
    kept = ps.additions()
    ps.begin_pack("bad")
    add_everything(ps, "bad")
    assert len(ps.additions()) == 2 * len(kept)
    ps.end_pack("bad", False)
    assert ps.additions() == kept and all(a.pack == "good" for a in kept)
    assert [getattr(r, "prefix", r.path) for r in ps.routes] == [
        "/good/table", "/good/router", "/good/resource", "/good/posted", "/good/static"]
    assert len(ps.app.middlewares) == 1 and len(ps.app.on_startup) == 1 and len(ps.on_prompt_handlers) == 1
    assert ps.app["good.key"] == "good" and "bad.key" not in ps.app


def test_additions_reach_the_app_behind_core_routes_and_security(tmp_path, caplog):
    reports = [PackReport(name="good", path="good.py", loaded=True), PackReport(name="thief", path="thief.py")]
    state = studio_state(tmp_path, reports)
    ps = PromptServer(FakeHub())
    ps.begin_pack("good")
    add_everything(ps, "good")

    async def failing_startup(app):
        raise RuntimeError("a pack's startup hook fails")

    ps.app.on_startup.append(failing_startup)
    ps.end_pack("good", True)
    ps.begin_pack("thief")
    ps.app.router.add_post("/prompt", ok)
    ps.app.router.add_static("/api", ".")
    ps.end_pack("thief", True)
    app = build_app(state, prompt_server=ps)
    assert ps.bound_app is app and ps.app.router.routes()  # reads reach the real application now
    assert set(reports[1].rejected) == {"route POST /prompt", "static /api"} and not reports[0].rejected
    assert app["good.key"] == "good" and ps.app["good.key"] == "good"

    async def scenario():
        async with TestClient(TestServer(app)) as client:
            table = await client.get("/api/good/table")
            resource = await client.get("/good/resource")
            evil = await client.get("/good/router", headers={"Host": "evil.example"})
            prompt = await client.post("/prompt", json={"prompt": preview_prompt("x")})
            return (table.status, await table.json(), table.headers.get("X-good"), resource.status,
                    evil.status, evil.headers.get("X-good"), prompt.status)

    with caplog.at_level(logging.ERROR):
        table_status, table_body, tagged, resource_status, evil_status, evil_tag, prompt_status = \
            asyncio.run(scenario())
    assert (table_status, table_body, tagged, resource_status) == (200, {"pack": "good"}, "1", 200)
    assert evil_status == 403 and evil_tag is None  # security answered before the pack's middleware
    assert prompt_status == 200  # the core /prompt, not the thief's
    assert "a pack's startup hook fails" in caplog.text
    state.store.close()


def test_send_sync_json_and_binary_events():
    hub = FakeHub()
    ps = PromptServer(hub, preview_size=64)
    ps.send_sync("my_pack.event", {"a": 1}, "sid1")
    ps.send_sync(BinaryEventTypes.UNENCODED_PREVIEW_IMAGE, ("JPEG", Image.new("RGB", (200, 100)), 50), "sid1")
    ps.send_sync(BinaryEventTypes.PREVIEW_IMAGE, ("PNG", Image.new("RGBA", (20, 10)), None))
    context = ExecutionContext("p1", "7", "3", None, InterruptFlag())
    with use_context(context):
        ps.send_sync(BinaryEventTypes.PREVIEW_IMAGE_WITH_METADATA,
                     (("JPEG", Image.new("RGB", (8, 8)), 8), {"node_id": "7", "prompt_id": "p1"}))
        ps.send_sync(BinaryEventTypes.UNENCODED_PREVIEW_IMAGE, ("JPEG", Image.new("RGB", (8, 8)), 8))
    ps.send_sync(9, b"raw", "sid2")
    ps.send_progress_text("halfway", "7", "sid1")
    ps.send_sync(BinaryEventTypes.UNENCODED_PREVIEW_IMAGE, "not an image")  # dropped with a warning
    json_call, jpeg, png, with_meta, in_node, raw, text = hub.calls
    assert json_call == ("json", "my_pack.event", {"a": 1}, "sid1")
    assert jpeg[2] == "JPEG" and Image.open(io.BytesIO(jpeg[1])).size == (50, 25) and jpeg[3:] == (None, "sid1")
    assert png[2] == "PNG" and Image.open(io.BytesIO(png[1])).size == (20, 10)
    assert with_meta[3] == {"node_id": "7", "prompt_id": "p1"}
    assert in_node[3]["node_id"] == "7" and in_node[3]["display_node_id"] == "3"
    assert raw == ("bytes", 9, b"raw", "sid2")
    assert text[:2] == ("bytes", BinaryEventTypes.TEXT) and text[3] == "sid1"
    length = struct.unpack(">I", text[2][:4])[0]
    assert text[2][4:4 + length] == b"7" and text[2][4 + length:] == b"halfway"
    asyncio.run(ps.send("later", {"b": 2}))
    asyncio.run(ps.send_json("later", {"b": 3}, "s"))
    assert hub.calls[-2:] == [("json", "later", {"b": 2}, None), ("json", "later", {"b": 3}, "s")]


def test_binary_event_types_have_comfyui_values():
    import server
    assert (server.BinaryEventTypes.PREVIEW_IMAGE, server.BinaryEventTypes.UNENCODED_PREVIEW_IMAGE,
            server.BinaryEventTypes.TEXT, server.BinaryEventTypes.PREVIEW_IMAGE_WITH_METADATA) == (1, 2, 3, 4)
    assert server.PromptServer is PromptServer


def test_on_prompt_handlers_chain_and_failures_are_skipped(caplog):
    ps = PromptServer()

    def add_marker(data):
        data["marks"] = data.get("marks", []) + ["first"]
        return data

    def raises(data):
        raise ValueError("handler bug")

    def forgets_to_return(data):
        data["marks"].append("second")

    ps.add_on_prompt_handler(add_marker)
    ps.add_on_prompt_handler(raises)
    ps.add_on_prompt_handler(forgets_to_return)
    ps.add_on_prompt_handler(lambda data: {**data, "replaced": True})
    with caplog.at_level(logging.WARNING):
        result = ps.trigger_on_prompt({"prompt": {}})
    assert result == {"prompt": {}, "marks": ["first", "second"], "replaced": True}
    assert "handler bug" in caplog.text and "returned NoneType" in caplog.text


def test_worker_events_set_client_and_node_ids():
    sent = []
    ps = PromptServer()
    send = ps.observe(lambda *message: sent.append(message))
    send("execution_start", {"prompt_id": "p9"}, "client-a")
    send("executing", {"node": "4", "prompt_id": "p9"}, "client-a")
    assert (ps.client_id, ps.last_prompt_id, ps.last_node_id) == ("client-a", "p9", "4")
    send("executing", {"node": None, "prompt_id": "p9"}, "client-a")
    assert ps.last_node_id is None and len(sent) == 3


def test_prompt_queue_over_the_job_store(tmp_path):
    state = studio_state(tmp_path)
    ps = PromptServer(FakeHub())
    queue = ps.prompt_queue
    assert queue.get_tasks_remaining() == 0 and queue.get_current_queue() == ([], [])
    with pytest.raises(RuntimeError):
        queue.put((0, "early", preview_prompt("x"), {}, ["2"]))
    build_app(state, prompt_server=ps)
    queue.put((ps.number, "a", preview_prompt("a"), {"client_id": "c"}, ["2"]))
    queue.put((ps.number, "b", preview_prompt("b"), {}, ["2"]))
    queue.put((-1, "first", preview_prompt("c"), {}, []))
    with pytest.raises(ValueError):
        queue.put((0, "bad", {"1": {"class_type": "PreviewAny", "inputs": {}}}, {}, ["1"]))
    running, pending = queue.get_current_queue()
    assert running == [] and [item[1] for item in pending] == ["first", "a", "b"]
    assert queue.get_tasks_remaining() == 3 and pending[1][3] == {"client_id": "c"}
    assert queue.delete_queue_item(lambda item: item[1] == "b") and queue.get_tasks_remaining() == 2
    queue.wipe_queue()
    assert queue.get_tasks_remaining() == 0
    state.store.submit("done", 1.0, preview_prompt("d"), {}, ["2"])
    job = state.store.claim_next(timeout=0)
    state.store.finish(job.prompt_id, {"outputs": {"2": {"text": ["d"]}}})
    assert queue.get_history("done") == {"done": {"outputs": {"2": {"text": ["d"]}}}}
    assert list(queue.get_history(max_items=5)) == ["done"]
    assert queue.get_history(map_function=lambda entry: entry["outputs"]) == {"done": {"2": {"text": ["d"]}}}
    queue.delete_history_item("done")
    assert queue.get_history() == {}
    queue.set_flag("custom", 1)
    assert queue.get_flags() == {"custom": 1} and queue.get_flags() == {}
    state.store.close()
