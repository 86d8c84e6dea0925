"""A stand-in for Weft's server, for the editor's browser tests until the real one can run them.

It serves web/ and answers the API routes the editor uses with ComfyUI's shapes (facts §1), from
fixture files and a tiny pretend executor: a queued workflow "runs" node by node, sends progress,
a preview frame and an `executed` message with a real PNG (carrying `prompt` and `workflow` text
chunks) for each image output node. Validation checks only that required socket inputs are linked,
which is enough to exercise `node_errors` in the editor.

Run: python tests/web/fake_server.py --port 8190 --base-directory /tmp/x
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import struct
import uuid
from pathlib import Path

from aiohttp import WSMsgType, web
from PIL import Image, PngImagePlugin

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
VIRTUAL = {"Reroute", "PrimitiveNode", "Note", "MarkdownNote"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}

routes = web.RouteTableDef()
STATE = web.AppKey("state", dict)


def _socket_inputs(info: dict) -> list[str]:
    required = info.get("input", {}).get("required", {})
    names = []
    for name, spec in required.items():
        kind = spec[0]
        options = spec[1] if len(spec) > 1 else {}
        if isinstance(kind, list) or (kind in WIDGET_TYPES and not options.get("forceInput")):
            continue
        names.append(name)
    return names


def _executable(workflow: dict, object_info: dict) -> tuple[list[dict], dict]:
    """The nodes that would run, and node_errors for required inputs left unlinked."""
    nodes = [n for n in workflow.get("nodes", []) if n.get("type") not in VIRTUAL and n.get("mode", 0) not in (2, 4)]
    errors = {}
    for node in nodes:
        info = object_info.get(node["type"])
        if info is None:
            errors[str(node["id"])] = {"errors": [{"type": "invalid_prompt", "message": f"Cannot execute because node {node['type']} does not exist.", "details": "", "extra_info": {}}], "dependent_outputs": [], "class_type": node["type"]}
            continue
        linked = {i["name"] for i in node.get("inputs", []) if i.get("link") is not None}
        missing = [name for name in _socket_inputs(info) if name not in linked]
        if missing:
            errors[str(node["id"])] = {
                "errors": [{"type": "required_input_missing", "message": "Required input is missing", "details": name, "extra_info": {"input_name": name}} for name in missing],
                "dependent_outputs": [], "class_type": node["type"],
            }
    return nodes, errors


def _png(color, text: dict | None = None, size=(64, 64)) -> bytes:
    image = Image.new("RGB", size, color)
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


async def _send(state, client_id, kind, data):
    for ws in state["sockets"].get(client_id, []):
        if not ws.closed:
            await ws.send_json({"type": kind, "data": data})


async def _broadcast_status(state):
    remaining = len(state["pending"]) + (1 if state["running"] else 0)
    for client in list(state["sockets"]):
        await _send(state, client, "status", {"status": {"exec_info": {"queue_remaining": remaining}}})


async def _run(state, item):
    number, prompt_id, prompt, extra, _ = item
    client = extra.get("client_id")
    workflow = extra.get("extra_pnginfo", {}).get("workflow", {})
    await _send(state, client, "execution_start", {"prompt_id": prompt_id, "timestamp": 0})
    await _send(state, client, "execution_cached", {"nodes": [], "prompt_id": prompt_id, "timestamp": 0})
    outputs = {}
    for node_id, entry in prompt.items():
        if state["interrupt"]:
            await _send(state, client, "execution_interrupted", {"prompt_id": prompt_id, "node_id": node_id, "node_type": entry["class_type"], "executed": []})
            state["history"][prompt_id] = {"prompt": list(item), "outputs": outputs, "status": {"status_str": "error", "completed": False, "messages": []}, "meta": {}}
            return
        await _send(state, client, "executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id})
        await asyncio.sleep(state["step_delay"])
        if entry["class_type"] == "KSampler":
            for step in range(1, 4):
                await _send(state, client, "progress", {"value": step, "max": 3, "prompt_id": prompt_id, "node": node_id})
                meta = json.dumps({"node_id": node_id, "prompt_id": prompt_id, "display_node_id": node_id, "image_type": "image/png"}).encode()
                frame = struct.pack(">II", 4, len(meta)) + meta + _png((40 * step, 90, 160), size=(32, 32))
                for ws in state["sockets"].get(client, []):
                    await ws.send_bytes(frame)
                await asyncio.sleep(state["step_delay"])
        if entry["class_type"] in ("SaveImage", "PreviewImage"):
            state["counter"] += 1
            name = f"fake_{state['counter']:05}_.png"
            data = _png((200, 120, 40), {"prompt": json.dumps(prompt), "workflow": json.dumps(workflow)})
            (state["base"] / "output" / name).write_bytes(data)
            ui = {"images": [{"filename": name, "subfolder": "", "type": "output"}]}
            outputs[node_id] = ui
            await _send(state, client, "executed", {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": prompt_id})
    await _send(state, client, "executing", {"node": None, "prompt_id": prompt_id})
    await _send(state, client, "execution_success", {"prompt_id": prompt_id, "timestamp": 0})
    state["history"][prompt_id] = {"prompt": list(item), "outputs": outputs, "status": {"status_str": "success", "completed": True, "messages": []}, "meta": {}}


async def _worker(app):
    state = app[STATE]
    while True:
        await state["wake"].wait()
        state["wake"].clear()
        while state["pending"]:
            state["running"] = state["pending"].pop(0)
            state["interrupt"] = False
            await _broadcast_status(state)
            try:
                await _run(state, state["running"])
            finally:
                state["running"] = None
                await _broadcast_status(state)


def _both(method, path):
    def register(handler):
        routes.route(method, path)(handler)
        routes.route(method, "/api" + path)(handler)
        return handler
    return register


@_both("GET", "/object_info")
async def object_info(request):
    return web.json_response(request.app[STATE]["object_info"])


@_both("GET", "/extensions")
async def extensions(request):
    return web.json_response([])


@_both("GET", "/prompt")
async def prompt_status(request):
    state = request.app[STATE]
    return web.json_response({"exec_info": {"queue_remaining": len(state["pending"]) + (1 if state["running"] else 0)}})


def _fake_convert(workflow, object_info):
    nodes, errors = _executable(workflow, object_info)
    return {str(n["id"]): {"class_type": n["type"], "inputs": {}, "_meta": {"title": n.get("title", n["type"])}} for n in nodes}, errors


@_both("POST", "/prompt")
async def post_prompt(request):
    state = request.app[STATE]
    body = await request.json()
    state["posted"].append(body)
    if "workflow" in body:
        prompt, errors = _fake_convert(body["workflow"], state["object_info"])
    elif "prompt" in body:
        prompt, errors = body["prompt"], {}
    else:
        return web.json_response({"error": {"type": "no_prompt", "message": "No prompt provided", "details": "", "extra_info": {}}, "node_errors": {}}, status=400)
    if errors:
        return web.json_response({"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}}, "node_errors": errors}, status=400)
    prompt_id = uuid.uuid4().hex
    state["number"] += 1
    extra = dict(body.get("extra_data", {}), client_id=body.get("client_id"))
    item = [state["number"], prompt_id, prompt, extra, [k for k, v in prompt.items() if v["class_type"] in ("SaveImage", "PreviewImage")]]
    if body.get("front"):
        state["pending"].insert(0, item)
    else:
        state["pending"].append(item)
    if not state["paused"]:
        state["wake"].set()
    await _broadcast_status(state)
    return web.json_response({"prompt_id": prompt_id, "number": state["number"], "node_errors": {}})


@_both("POST", "/workflow/convert")
async def convert(request):
    body = await request.json()
    prompt, _ = _fake_convert(body["workflow"], request.app[STATE]["object_info"])
    return web.json_response({"prompt": prompt, "warnings": []})


@_both("GET", "/queue")
async def get_queue(request):
    state = request.app[STATE]
    return web.json_response({"queue_running": [state["running"]] if state["running"] else [], "queue_pending": state["pending"]})


@_both("POST", "/queue")
async def post_queue(request):
    state = request.app[STATE]
    body = await request.json()
    if body.get("clear"):
        state["pending"].clear()
    drop = set(body.get("delete", []))
    state["pending"][:] = [i for i in state["pending"] if i[1] not in drop]
    await _broadcast_status(state)
    return web.Response(status=200)


@_both("GET", "/history")
async def get_history(request):
    state = request.app[STATE]
    items = list(state["history"].items())[-int(request.query.get("max_items", 10000)):]
    return web.json_response(dict(items))


@_both("POST", "/history")
async def post_history(request):
    state = request.app[STATE]
    body = await request.json()
    if body.get("clear"):
        state["history"].clear()
    for prompt_id in body.get("delete", []):
        state["history"].pop(prompt_id, None)
    return web.Response(status=200)


@_both("POST", "/interrupt")
async def interrupt(request):
    request.app[STATE]["interrupt"] = True
    return web.Response(status=200)


@_both("POST", "/control")
async def control(request):
    """Test hook (not part of Weft's API): pause/resume the pretend worker."""
    state = request.app[STATE]
    body = await request.json()
    state["paused"] = bool(body.get("paused"))
    for name, inputs in body.get("set_inputs", {}).items():
        state["object_info"][name]["input"]["required"].update(inputs)
    if not state["paused"]:
        state["wake"].set()
    return web.json_response({"paused": state["paused"], "posted": state["posted"]})


@_both("GET", "/view")
async def view(request):
    state = request.app[STATE]
    folder = request.query.get("type", "output")
    name = request.query.get("filename", "")
    sub = request.query.get("subfolder", "")
    if folder not in ("input", "output", "temp") or "/" in name or ".." in name or ".." in sub:
        return web.Response(status=400)
    path = state["base"] / folder / sub / name
    if not path.is_file():
        return web.Response(status=404)
    return web.FileResponse(path)


@_both("POST", "/upload/image")
async def upload(request):
    state = request.app[STATE]
    form = await request.post()
    image = form["image"]
    folder = form.get("type", "input")
    name = Path(image.filename).name
    (state["base"] / folder / name).write_bytes(image.file.read())
    return web.json_response({"name": name, "subfolder": "", "type": folder})


def _user_path(state, relative: str) -> Path | None:
    path = (state["base"] / "user" / "default" / relative).resolve()
    root = (state["base"] / "user" / "default").resolve()
    return path if root in path.parents else None


@_both("GET", "/userdata")
async def list_userdata(request):
    state = request.app[STATE]
    folder = _user_path(state, request.query.get("dir", ""))
    if folder is None or not folder.is_dir():
        return web.Response(status=404)
    return web.json_response(sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()))


@_both("GET", "/userdata/{file}")
async def get_userdata(request):
    path = _user_path(request.app[STATE], request.match_info["file"])
    if path is None or not path.is_file():
        return web.Response(status=404)
    return web.FileResponse(path)


@_both("POST", "/userdata/{file}")
async def post_userdata(request):
    path = _user_path(request.app[STATE], request.match_info["file"])
    if path is None:
        return web.Response(status=400)
    if path.exists() and request.query.get("overwrite", "true") == "false":
        return web.Response(status=409)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(await request.read())
    return web.json_response(request.match_info["file"])


@_both("DELETE", "/userdata/{file}")
async def delete_userdata(request):
    path = _user_path(request.app[STATE], request.match_info["file"])
    if path is None or not path.is_file():
        return web.Response(status=404)
    path.unlink()
    return web.Response(status=204)


@routes.get("/ws")
async def websocket(request):
    state = request.app[STATE]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    client = request.query.get("clientId") or uuid.uuid4().hex
    state["sockets"].setdefault(client, []).append(ws)
    remaining = len(state["pending"]) + (1 if state["running"] else 0)
    await ws.send_json({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": remaining}}, "sid": client}})
    async for message in ws:
        if message.type == WSMsgType.TEXT and json.loads(message.data).get("type") == "feature_flags":
            await ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
    state["sockets"][client].remove(ws)
    return ws


@routes.get("/")
async def index(request):
    return web.FileResponse(ROOT / "web" / "index.html")


def build_app(base: Path) -> web.Application:
    for folder in ("input", "output", "temp", "user/default/workflows"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    (base / "input" / "example.png").write_bytes(_png((30, 160, 90)))
    app = web.Application(client_max_size=50 * 1024 * 1024)
    app[STATE] = {
        "base": base, "object_info": json.loads((FIXTURES / "object_info.json").read_text()),
        "pending": [], "running": None, "history": {}, "sockets": {}, "number": 0, "counter": 0,
        "interrupt": False, "paused": False, "posted": [], "step_delay": 0.05, "wake": asyncio.Event(),
    }
    app.add_routes(routes)
    app.router.add_static("/", ROOT / "web")

    async def start_worker(app):
        app["worker"] = asyncio.create_task(_worker(app))

    async def stop_worker(app):
        app["worker"].cancel()

    app.on_startup.append(start_worker)
    app.on_cleanup.append(stop_worker)
    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8190)
    parser.add_argument("--base-directory", type=Path, required=True)
    args = parser.parse_args()
    web.run_app(build_app(args.base_directory), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
