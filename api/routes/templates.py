"""Workflow templates: ComfyUI's routes for them (``/templates/…``, ``/workflow_templates``) and
``/template_catalogue``, the list Weft's editor browses (api/templates.py finds the files)."""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path

from aiohttp import web

from graph.folders import UnsafePathError

from ..state import AppState, state_of
from ..templates import TemplateLibrary, is_index_name
from .files import ACTIVE_CONTENT

routes = web.RouteTableDef()


def library_of(state: AppState) -> TemplateLibrary:
    """The server's template library, made on first use and kept by the app state (its parse cache
    lives as long as the server)."""
    library = state.templates
    if library is None:
        library = state.templates = TemplateLibrary()
    return library


def _file_response(path: Path | None) -> web.StreamResponse:
    if path is None:
        raise web.HTTPNotFound(text="no such template file")
    headers = {"X-Content-Type-Options": "nosniff"}
    if path.suffix.lower() in ACTIVE_CONTENT:
        headers.update({"Content-Type": "application/octet-stream",
                        "Content-Disposition": f'attachment; filename="{path.name}"'})
    else:
        headers["Content-Type"] = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return web.FileResponse(path, headers=headers)


@routes.get("/templates/{path:.*}")
async def template_file(request: web.Request) -> web.StreamResponse:
    """A template file from the first folder that has it; ``index.json`` (and its translations)
    with Weft's category first, in ComfyUI's shape."""
    name = request.match_info["path"]
    library = library_of(state_of(request))
    try:
        if is_index_name(name):
            index = await asyncio.to_thread(library.index, name)
            if index is None:
                raise web.HTTPNotFound(text="no such template index")
            return web.json_response(index)
        path = await asyncio.to_thread(library.resolve, name)
        if path is None and (stand_in := await asyncio.to_thread(library.uninstalled_picture, name)):
            return web.Response(body=library.stand_in(stand_in), content_type=f"image/{stand_in.lower()}",
                                headers={"X-Weft-Stand-In": "the template media package is not installed"})
        return _file_response(path)
    except UnsafePathError as exc:
        raise web.HTTPForbidden(text=str(exc)) from exc


@routes.get("/workflow_templates")
async def pack_workflows(request: web.Request) -> web.Response:
    """``{pack: [example workflow names without .json]}`` of the loaded node packs."""
    state = state_of(request)
    return web.json_response(await asyncio.to_thread(library_of(state).pack_workflows, state.packs))


@routes.get("/workflow_templates/{pack}/{file:.*}")
async def pack_workflow_file(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    try:
        path = await asyncio.to_thread(library_of(state).pack_file, state.packs, request.match_info["pack"],
                                       request.match_info["file"])
    except UnsafePathError as exc:
        raise web.HTTPForbidden(text=str(exc)) from exc
    return _file_response(path)


@routes.get("/template_catalogue")
async def template_catalogue(request: web.Request) -> web.Response:
    """Every template with what this server lacks to run it (docs/api.md)."""
    state = state_of(request)
    catalogue = await asyncio.to_thread(library_of(state).catalogue, state.registry.names(), state.folders,
                                        list(state.packs))
    return web.json_response(catalogue)
