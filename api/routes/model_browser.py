"""The model library of ComfyUI's frontend: /experiment/models (folders), /experiment/models/{folder}
(their files with the root each lies in) and a model's preview picture, beside the model file."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from graph.folders import UnsafePathError, list_files, safe_join

from ..state import state_of

routes = web.RouteTableDef()

#: Picture files a model may have beside it (``<stem><suffix>``), as model managers write them.
PREVIEW_SUFFIXES = (".webp", ".preview.webp", ".png", ".preview.png", ".jpg", ".preview.jpg", ".jpeg")


@routes.get("/experiment/models")
async def model_folders(request: web.Request) -> web.Response:
    folders = state_of(request).folders
    return web.json_response([{"name": kind, "folders": [str(root) for root in roots]}
                              for kind, roots in sorted(folders.models.items())])


def _files_of(folders, kind: str) -> list[dict]:
    extensions = tuple(sorted(folders.extensions_of(kind)))
    seen: set[str] = set()
    files = []
    for index, root in enumerate(folders.model_roots(kind)):
        for name in list_files(root, extensions):
            if name in seen:
                continue  # an earlier root wins, as when the model is loaded
            seen.add(name)
            stat = (root / name).stat()
            files.append({"name": name, "pathIndex": index, "modified": stat.st_mtime, "size": stat.st_size})
    return files


@routes.get("/experiment/models/{folder}")
async def model_files(request: web.Request) -> web.Response:
    folders = state_of(request).folders
    try:
        return web.json_response(await asyncio.to_thread(_files_of, folders, request.match_info["folder"]))
    except KeyError:
        raise web.HTTPNotFound(text=f"unknown model folder {request.match_info['folder']!r}") from None


@routes.get("/experiment/models/preview/{folder}/{path_index}/{filename:.*}")
async def model_preview(request: web.Request) -> web.StreamResponse:
    folders = state_of(request).folders
    try:
        roots = folders.model_roots(request.match_info["folder"])
        root = roots[int(request.match_info["path_index"])]
        safe_join(root, request.match_info["filename"])
    except (KeyError, IndexError, ValueError, UnsafePathError):
        raise web.HTTPNotFound(text="no such model") from None
    stem = os.path.splitext(request.match_info["filename"])[0]
    for suffix in PREVIEW_SUFFIXES:
        picture = safe_join(root, stem + suffix)  # a picture linked from elsewhere stays out
        if picture.is_file():
            return web.FileResponse(picture, headers={"Cache-Control": "max-age=86400"})
    raise web.HTTPNotFound(text="this model has no preview picture")
