"""About the server: /system_stats, /features, /embeddings, /models, /extensions, logs, node packs,
and /workflow/convert (UI workflow → API prompt)."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import psutil
from aiohttp import web

from graph.folders import UnsafePathError, list_files

from ..errors import error_response, read_json
from ..frontends import BRIDGE_EXTENSION
from ..logs import TERMINAL_SIZE
from ..openapi import describe
from ..state import state_of
from .ws import SERVER_FEATURES

routes = web.RouteTableDef()

WEFT_VERSION = "0.1.0"


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


@routes.get("/system_stats")
async def system_stats(request: web.Request) -> web.Response:
    state = state_of(request)
    memory = psutil.virtual_memory()
    engine = getattr(state.services, "engine", None)
    devices = engine.device_stats() if engine is not None and hasattr(engine, "device_stats") else [
        {"name": "cpu", "type": "cpu", "index": None, "vram_total": memory.total, "vram_free": memory.available,
         "torch_vram_total": 0, "torch_vram_free": 0}]
    return web.json_response({
        "system": {"os": sys.platform, "ram_total": memory.total, "ram_free": memory.available,
                   "comfyui_version": WEFT_VERSION, "weft_version": WEFT_VERSION,
                   "required_frontend_version": "", "installed_templates_version": "",
                   "required_templates_version": "", "python_version": sys.version,
                   "pytorch_version": _package_version("torch"), "embedded_python": False,
                   "argv": sys.argv, "platform": platform.platform()},
        "devices": devices, "workers": state.worker.workers()})


@routes.get("/features")
async def features(request: web.Request) -> web.Response:
    return web.json_response({**SERVER_FEATURES, "max_upload_size": state_of(request).options.max_upload_size})


@routes.get("/embeddings")
async def embeddings(request: web.Request) -> web.Response:
    names = await asyncio.to_thread(state_of(request).folders.list_models, "embeddings")
    return web.json_response([os.path.splitext(n)[0] for n in names])


@routes.get("/models")
async def model_kinds(request: web.Request) -> web.Response:
    return web.json_response(sorted(state_of(request).folders.models))


@routes.get("/models/{folder}")
async def models_of(request: web.Request) -> web.Response:
    folders = state_of(request).folders
    kind = request.match_info["folder"]
    try:
        names = await asyncio.to_thread(folders.list_models, kind)
    except KeyError:
        return web.Response(status=404, text=f"unknown model folder {kind!r}")
    return web.json_response(names)


@routes.get("/extensions")
async def extensions(request: web.Request) -> web.Response:
    state = state_of(request)
    urls = []
    web_root = state.options.web_root
    if web_root is not None and (web_root / "extensions").is_dir():
        urls += [f"/extensions/{name}" for name in list_files(web_root / "extensions", (".js",))]
    front_end, editor_root = state.options.front_end, state.options.editor_root
    if front_end is not None and not front_end.is_weft and editor_root is not None:
        bridge = editor_root / BRIDGE_EXTENSION
        if bridge.is_dir():
            urls += [f"/extensions/weft/{name}" for name in list_files(bridge, (".js",))]
    for pack in state.packs:
        if pack.loaded and pack.web_directory and os.path.isdir(pack.web_directory):
            urls += [f"/extensions/{pack.name}/{name}" for name in list_files(Path(pack.web_directory), (".js",))]
    return web.json_response(urls)


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """An OpenAPI 3.1 description of the routes under /api/ (api/openapi.py)."""
    return web.json_response(describe(request.app, WEFT_VERSION))


@routes.get("/node_packs")
async def node_packs(request: web.Request) -> web.Response:
    """Each third-party pack: loaded or not, import seconds, its nodes, and why anything failed."""
    return web.json_response([pack.as_json() for pack in state_of(request).packs])


@routes.get("/internal/folder_paths")
async def folder_paths(request: web.Request) -> web.Response:
    """Every folder kind with its roots (the model kinds, and input/output/temp/user)."""
    folders = state_of(request).folders
    answer = {kind: [str(root) for root in roots] for kind, roots in sorted(folders.models.items())}
    answer.update(input=[str(folders.input)], output=[str(folders.output)], temp=[str(folders.temp)],
                  user=[str(folders.user)])
    return web.json_response(answer)


def _newest_first(folder: Path) -> list[str]:
    try:
        entries = [e for e in os.scandir(folder) if e.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []
    return [e.name for e in sorted(entries, key=lambda e: e.stat().st_mtime, reverse=True)]


@routes.get("/internal/files/{folder_type}")
async def folder_files(request: web.Request) -> web.Response:
    """The files directly in input/, output/ or temp/, newest first (LoadImageOutput's list)."""
    try:
        folder = state_of(request).folders.folder_for(request.match_info["folder_type"])
    except UnsafePathError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    return web.json_response(await asyncio.to_thread(_newest_first, folder))


@routes.get("/internal/logs")
async def logs(request: web.Request) -> web.Response:
    buffer = state_of(request).logs
    return web.json_response("".join(f"{e['m']}\n" for e in buffer.entries()) if buffer else "")


@routes.get("/internal/logs/raw")
async def logs_raw(request: web.Request) -> web.Response:
    buffer = state_of(request).logs
    return web.json_response({"entries": buffer.entries() if buffer else [], "size": TERMINAL_SIZE})


@routes.patch("/internal/logs/subscribe")
async def logs_subscribe(request: web.Request) -> web.Response:
    """``{"clientId", "enabled"}``: live ``logs`` messages on that client's websocket, or no more."""
    body = await read_json(request, default={})
    if not isinstance(body, dict) or not isinstance(body.get("clientId"), str):
        return error_response(400, "invalid_request", "clientId (a string) is required")
    state_of(request).hub.subscribe_logs(body["clientId"], bool(body.get("enabled")))
    return web.Response(status=200)
