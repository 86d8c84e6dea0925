"""Per-user data: /users, /settings, /userdata and /v2/userdata, under ``user/<user>/``.

Single-user (the default) everything belongs to ``default``; with ``--multi-user`` the
``Comfy-User`` header names a user created through ``POST /users``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import uuid
from pathlib import Path

from aiohttp import web

from graph.atomic import atomic_write_bytes, create_exclusive
from graph.folders import UnsafePathError, list_files, safe_join

from ..errors import http_error, read_json
from ..state import state_of

routes = web.RouteTableDef()

SETTINGS_FILE = "comfy.settings.json"
USERS_FILE = "users.json"
USER_CSS = "user.css"
#: Types user files are served with; anything else (HTML, scripts) as bytes, never run by a browser.
#: A stylesheet is served as one: ComfyUI's frontend links the user's user.css.
SAFE_CONTENT_TYPES = {".json": "application/json", ".txt": "text/plain", ".css": "text/css"}
#: What a user's folder starts with: the folders and files both front ends read on every load,
#: so that a fresh folder answers them instead of 404s. Nothing here is overwritten.
USER_FOLDERS = ("workflows", "subgraphs")
USER_FILES = {USER_CSS: b"/* Styles of your own for ComfyUI's frontend. */\n", "comfy.templates.json": b"[]",
              "workflows/.index.json": b'{"favorites": []}'}


def _users_path(request: web.Request) -> Path:
    return state_of(request).folders.user / USERS_FILE


def _load_users(request: web.Request) -> dict:
    path = _users_path(request)
    try:
        users = json.loads(path.read_text())
        return users if isinstance(users, dict) else {}
    except (FileNotFoundError, ValueError):
        return {}


def user_root(request: web.Request) -> Path:
    """The current user's folder (created on first use)."""
    state = state_of(request)
    user = "default"
    if state.options.multi_user:
        user = request.headers.get("Comfy-User", "")
        if user not in _load_users(request):
            raise web.HTTPForbidden(text=f"unknown user {user!r}")
    try:
        root = safe_join(state.folders.user, user)
    except UnsafePathError as exc:
        raise web.HTTPForbidden(text=str(exc)) from exc
    _furnish(root)
    return root


def _furnish(root: Path) -> None:
    for name in USER_FOLDERS:
        (root / name).mkdir(parents=True, exist_ok=True)
    for name, content in USER_FILES.items():
        if not (root / name).exists():
            create_exclusive(root / name, content)


def _user_file(request: web.Request, relative: str) -> Path:
    try:
        path = safe_join(user_root(request), relative)
    except UnsafePathError as exc:
        raise web.HTTPForbidden(text=str(exc)) from exc
    if path == user_root(request):
        raise web.HTTPBadRequest(text="a file path is required")
    return path


@routes.get("/user.css")
async def user_css(request: web.Request) -> web.Response:
    """The user's stylesheet for ComfyUI's frontend (its page links it); empty where there is none."""
    try:
        text = (user_root(request) / USER_CSS).read_text(encoding="utf-8")
    except (web.HTTPForbidden, OSError):
        text = ""
    return web.Response(text=text, content_type="text/css", headers={"Cache-Control": "no-cache"})


@routes.get("/users")
async def get_users(request: web.Request) -> web.Response:
    if state_of(request).options.multi_user:
        return web.json_response({"storage": "server", "users": _load_users(request)})
    return web.json_response({"storage": "server", "migrated": True})


@routes.post("/users")
async def post_users(request: web.Request) -> web.Response:
    if not state_of(request).options.multi_user:
        raise web.HTTPBadRequest(text="users can only be created with --multi-user")
    body = await read_json(request, default={})
    username = body.get("username") if isinstance(body, dict) else None
    if not isinstance(username, str) or not username.strip():
        raise web.HTTPBadRequest(text="username is required")
    users = _load_users(request)
    if username in users.values():
        raise web.HTTPBadRequest(text="duplicate username")
    user_id = re.sub(r"[^a-zA-Z0-9_-]+", "_", username.strip())[:40] + "_" + uuid.uuid4().hex
    users[user_id] = username
    atomic_write_bytes(_users_path(request), json.dumps(users, indent=2).encode())
    return web.json_response(user_id)


def _read_settings(request: web.Request) -> dict:
    try:
        settings = json.loads((user_root(request) / SETTINGS_FILE).read_text())
        return settings if isinstance(settings, dict) else {}
    except (FileNotFoundError, ValueError):
        return {}


def _write_settings(request: web.Request, settings: dict) -> None:
    atomic_write_bytes(user_root(request) / SETTINGS_FILE, json.dumps(settings, indent=4).encode())


@routes.get("/settings")
async def get_settings(request: web.Request) -> web.Response:
    return web.json_response(_read_settings(request))


@routes.post("/settings")
async def post_settings(request: web.Request) -> web.Response:
    body = await read_json(request, default={})
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="settings must be a JSON object")
    settings = _read_settings(request)
    settings.update(body)
    _write_settings(request, settings)
    return web.Response(status=200)


@routes.get("/settings/{id}")
async def get_setting(request: web.Request) -> web.Response:
    return web.json_response(_read_settings(request).get(request.match_info["id"]))


@routes.post("/settings/{id}")
async def post_setting(request: web.Request) -> web.Response:
    value = await read_json(request, default=None)
    settings = _read_settings(request)
    settings[request.match_info["id"]] = value
    _write_settings(request, settings)
    return web.Response(status=200)


def _file_info(root: Path, path: Path) -> dict:
    stat = path.stat()
    return {"path": path.relative_to(root).as_posix(), "size": stat.st_size, "modified": stat.st_mtime,
            "created": stat.st_ctime}


@routes.get("/userdata")
async def list_userdata(request: web.Request) -> web.Response:
    directory = request.query.get("dir")
    if not directory:
        raise web.HTTPBadRequest(text="dir is required")
    folder = _user_file(request, directory)
    if not folder.is_dir():
        return web.json_response([], status=404)
    recurse = request.query.get("recurse", "").lower() in ("true", "1")
    full_info = request.query.get("full_info", "").lower() in ("true", "1")
    split = request.query.get("split", "").lower() in ("true", "1")
    names = list_files(folder, recursive=recurse)
    names = names if recurse else sorted(names)
    if full_info:
        return web.json_response([_file_info(folder, folder / n) for n in names])
    if split:
        return web.json_response([[n, *n.split("/")] for n in names])
    return web.json_response(names)


@routes.get("/v2/userdata")
async def list_userdata_v2(request: web.Request) -> web.Response:
    root = user_root(request)
    folder = _user_file(request, request.query["path"]) if request.query.get("path") else root
    if not folder.is_dir():
        return web.json_response({"error": "not a directory"}, status=404)
    entries = []
    for child in sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower())):
        if child.name.startswith(".") or child.is_symlink():
            continue
        entry: dict = {"name": child.name, "path": child.relative_to(root).as_posix(),
                 "type": "directory" if child.is_dir() else "file"}
        if child.is_file():
            stat = child.stat()
            entry.update(size=stat.st_size, modified=stat.st_mtime)
        entries.append(entry)
    return web.json_response(entries)


@routes.get("/userdata/{file}")
async def get_userdata(request: web.Request) -> web.StreamResponse:
    path = _user_file(request, request.match_info["file"])
    if not path.is_file():
        raise web.HTTPNotFound(text="file not found")
    content_type = SAFE_CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return web.FileResponse(path, headers={"X-Content-Type-Options": "nosniff", "Content-Type": content_type})


@routes.post("/userdata/{file}")
async def post_userdata(request: web.Request) -> web.Response:
    path = _user_file(request, request.match_info["file"])
    overwrite = request.query.get("overwrite", "true").lower() != "false"
    body = await request.read()
    if overwrite:
        await asyncio.to_thread(atomic_write_bytes, path, body)
    elif not await asyncio.to_thread(create_exclusive, path, body):
        raise web.HTTPConflict(text="file exists")
    root = user_root(request)
    if request.query.get("full_info", "").lower() in ("true", "1"):
        return web.json_response(_file_info(root, path))
    return web.json_response(path.relative_to(root).as_posix())


@routes.delete("/userdata/{file}")
async def delete_userdata(request: web.Request) -> web.Response:
    path = _user_file(request, request.match_info["file"])
    if not path.is_file():
        raise web.HTTPNotFound(text="file not found")
    await asyncio.to_thread(os.unlink, path)
    return web.Response(status=204)


@routes.post("/userdata/{file}/move/{dest}")
async def move_userdata(request: web.Request) -> web.Response:
    source = _user_file(request, request.match_info["file"])
    dest = _user_file(request, request.match_info["dest"])
    if not source.is_file():
        raise web.HTTPNotFound(text="file not found")
    if dest.is_dir():  # shutil.move would put the file inside it, or fail on a namesake there
        raise http_error(web.HTTPConflict, "destination_is_directory", "The destination is a folder",
                         request.match_info["dest"])
    if dest.exists() and request.query.get("overwrite", "true").lower() == "false":
        raise http_error(web.HTTPConflict, "destination_exists", "The destination exists", request.match_info["dest"])
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.move, source, dest)
    except (shutil.Error, FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise http_error(web.HTTPConflict, "move_failed", "The file cannot be moved there", str(exc)) from None
    root = user_root(request)
    if request.query.get("full_info", "").lower() in ("true", "1"):
        return web.json_response(_file_info(root, dest))
    return web.json_response(dest.relative_to(root).as_posix())
