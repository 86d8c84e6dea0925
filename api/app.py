"""Builds the aiohttp application: route tables at /path and /api/path, the editor's static
files, and the worker started and stopped with the app's lifecycle."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .previews import encode_preview
from .routes import nodes, prompt, ws
from .state import STATE, AppState

log = logging.getLogger(__name__)

ROUTE_TABLES = (prompt.routes, nodes.routes, ws.routes)


def _register(app: web.Application, tables) -> None:
    for table in tables:
        for route in table:
            for prefix in ("", "/api"):
                app.router.add_route(route.method, prefix + route.path, route.handler)


def make_sender(hub, preview_size: int):
    """The worker's ``send(event, data, client_id)``: safe to call from the worker thread."""

    def send(event: str, data: dict, client_id: str | None) -> None:
        if event == "preview":
            encoded = encode_preview(data.get("image"), preview_size)
            if encoded is None:
                return
            metadata = {k: data.get(k) for k in ("node_id", "prompt_id", "display_node_id")}
            metadata.update(parent_node_id=None, real_node_id=data.get("display_node_id"))
            hub.call_threadsafe(hub.send_preview, encoded[0], encoded[1], metadata, client_id)
        else:
            hub.call_threadsafe(hub.send_json, event, data, client_id)

    return send


async def _index(request: web.Request) -> web.StreamResponse:
    root = request.app[STATE].options.web_root
    if root is None or not (root / "index.html").is_file():
        return web.Response(text="Weft server is running; the editor is not installed.", content_type="text/plain")
    return web.FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})


async def _start_worker(app: web.Application) -> None:
    state = app[STATE]
    state.hub.bind_loop(asyncio.get_running_loop())
    state.worker.start()


async def _stop_worker(app: web.Application) -> None:
    state = app[STATE]
    await asyncio.to_thread(state.worker.stop)
    state.store.close()


def build_app(state: AppState) -> web.Application:
    app = web.Application(client_max_size=state.options.max_upload_size)
    app[STATE] = state
    _register(app, ROUTE_TABLES)
    app.router.add_get("/", _index)
    if state.options.web_root is not None and state.options.web_root.is_dir():
        app.router.add_static("/", state.options.web_root, follow_symlinks=False)
    app.on_startup.append(_start_worker)
    app.on_cleanup.append(_stop_worker)
    return app
