"""Builds the aiohttp application: route tables at /path and /api/path, the editor's static
files, and the worker started and stopped with the app's lifecycle."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from .previews import encode_preview
from .routes import files, nodes, prompt, system, userdata, ws
from .security import SecurityPolicy, security_middleware
from .state import STATE, AppState

log = logging.getLogger(__name__)

ROUTE_TABLES = (prompt.routes, nodes.routes, ws.routes, files.routes, system.routes, userdata.routes)


def _register(app: web.Application, tables) -> None:
    for table in tables:
        for route in table:
            for prefix in ("", "/api"):
                app.router.add_route(route.method, prefix + route.path, route.handler)


def _core_route_keys() -> set[tuple[str, str]]:
    return {(route.method, prefix + route.path) for table in ROUTE_TABLES for route in table
            for prefix in ("", "/api")}


def register_pack_routes(app: web.Application, table: web.RouteTableDef) -> list[str]:
    """Add the routes packs declared; one that would replace a core route is refused (returned)."""
    core = _core_route_keys() | {("GET", "/")}
    refused = []
    for route in table:
        if not isinstance(route, web.RouteDef):
            continue
        keys = [(route.method, prefix + route.path) for prefix in ("", "/api")]
        if any(k in core or (route.method == "*" and any(k[1] == c[1] for c in core)) for k in keys):
            refused.append(f"{route.method} {route.path}")
            log.warning("a node pack tried to replace the core route %s %s; refused", route.method, route.path)
            continue
        for method, path in keys:
            try:
                app.router.add_route(method, path, route.handler)
            except (RuntimeError, ValueError) as exc:
                refused.append(f"{route.method} {route.path}: {exc}")
    return refused


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


def build_app(state: AppState, policy: SecurityPolicy | None = None) -> web.Application:
    app = web.Application(client_max_size=max(state.options.max_upload_size, state.options.max_json_bytes),
                          middlewares=[security_middleware(policy or SecurityPolicy())])
    app[STATE] = state
    _register(app, ROUTE_TABLES)
    app.router.add_get("/", _index)
    for pack in state.packs:  # each pack's WEB_DIRECTORY, served read-only
        if pack.loaded and pack.web_directory and Path(pack.web_directory).is_dir():
            app.router.add_static(f"/extensions/{pack.name}", pack.web_directory, follow_symlinks=False)
    if state.options.web_root is not None and state.options.web_root.is_dir():
        app.router.add_static("/", state.options.web_root, follow_symlinks=False)
    app.on_startup.append(_start_worker)
    app.on_cleanup.append(_stop_worker)
    return app
