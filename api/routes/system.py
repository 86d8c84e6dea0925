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

from graph.folders import list_files

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
        "devices": devices})


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
    for pack in state.packs:
        if pack.loaded and pack.web_directory and os.path.isdir(pack.web_directory):
            urls += [f"/extensions/{pack.name}/{name}" for name in list_files(Path(pack.web_directory), (".js",))]
    return web.json_response(urls)


@routes.get("/node_packs")
async def node_packs(request: web.Request) -> web.Response:
    """Each third-party pack: loaded or not, import seconds, its nodes, and why anything failed."""
    return web.json_response([pack.as_json() for pack in state_of(request).packs])


@routes.get("/internal/logs")
async def logs(request: web.Request) -> web.Response:
    buffer = state_of(request).logs
    return web.json_response("".join(f"{e['m']}\n" for e in buffer.entries()) if buffer else "")


@routes.get("/internal/logs/raw")
async def logs_raw(request: web.Request) -> web.Response:
    buffer = state_of(request).logs
    return web.json_response({"entries": buffer.entries() if buffer else [], "size": {"cols": 120, "rows": 40}})
