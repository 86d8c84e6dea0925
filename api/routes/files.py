"""Files: /upload/image, /upload/mask, /view, /view_metadata/{folder}.

Every name from a request is resolved with ``graph.folders.safe_join`` inside its folder. Uploads
are checked to be images of a bounded size, never overwrite silently, and are written atomically.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import os
import struct
from pathlib import Path

from aiohttp import web

from graph.atomic import atomic_write_bytes, create_exclusive
from graph.folders import UnsafePathError, check_relative_name, safe_join, split_annotated_name

from ..errors import error_response
from ..images import BadImageError, apply_mask_alpha, check_image, convert_for_view, open_checked
from ..state import state_of

routes = web.RouteTableDef()

#: Sent as downloads, never rendered in the page's origin.
ACTIVE_CONTENT = {".html", ".htm", ".xhtml", ".svg", ".js", ".mjs", ".css", ".xml"}
MAX_NAME_LENGTH = 200


async def _read_upload(request: web.Request) -> dict:
    """The multipart fields of an upload, with the file part bounded by the upload limit."""
    limit = state_of(request).options.max_upload_size
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    if not request.content_type.startswith("multipart/"):
        raise web.HTTPBadRequest(text="expected a multipart/form-data upload")
    fields: dict = {}
    reader = await request.multipart()
    total = 0
    async for part in reader:
        chunks = []
        while True:
            chunk = await part.read_chunk(1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=total)
            chunks.append(chunk)
        data = b"".join(chunks)
        fields[part.name] = (part.filename, data) if part.filename is not None else data.decode("utf-8", "replace")
    return fields


def _target_folder(request: web.Request, folder_type: str, subfolder: str) -> Path:
    folders = state_of(request).folders
    try:
        return safe_join(folders.folder_for(folder_type or "input"), subfolder or "")
    except UnsafePathError as exc:
        raise web.HTTPForbidden(text=str(exc))


def _clean_filename(name: str | None) -> str:
    name = os.path.basename((name or "").replace("\\", "/")).strip()
    try:
        check_relative_name(name)
    except UnsafePathError as exc:
        raise web.HTTPBadRequest(text=str(exc))
    if not name or name in (".", "..") or len(name) > MAX_NAME_LENGTH:
        raise web.HTTPBadRequest(text="invalid file name")
    return name


def _store(folder: Path, name: str, data: bytes, overwrite: bool) -> str:
    """Write ``data`` as ``name`` (or ``name (n).ext``); reuse an identical existing file."""
    digest = hashlib.sha256(data).digest()
    stem, ext = os.path.splitext(name)
    for n in range(0, 10_000):
        candidate = name if n == 0 else f"{stem} ({n}){ext}"
        path = safe_join(folder, candidate)
        if overwrite:
            atomic_write_bytes(path, data)
            return candidate
        if create_exclusive(path, data):
            return candidate
        if path.is_file() and hashlib.sha256(path.read_bytes()).digest() == digest:
            return candidate
    raise web.HTTPConflict(text="too many files with this name")


def _flag(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@routes.post("/upload/image")
async def upload_image(request: web.Request) -> web.Response:
    fields = await _read_upload(request)
    if not isinstance(fields.get("image"), tuple):
        return error_response(400, "invalid_upload", "No image file in the upload (field 'image')")
    filename, data = fields["image"]
    name = _clean_filename(filename)
    try:
        await asyncio.to_thread(check_image, data)
    except BadImageError as exc:
        return error_response(400, "invalid_image", str(exc))
    folder_type = fields.get("type") or "input"
    subfolder = fields.get("subfolder") or ""
    folder = _target_folder(request, folder_type, subfolder)
    stored = await asyncio.to_thread(_store, folder, name, data, _flag(fields.get("overwrite", "")))
    return web.json_response({"name": stored, "subfolder": subfolder, "type": folder_type})


@routes.post("/upload/mask")
async def upload_mask(request: web.Request) -> web.Response:
    fields = await _read_upload(request)
    if not isinstance(fields.get("image"), tuple):
        return error_response(400, "invalid_upload", "No mask file in the upload (field 'image')")
    try:
        ref = json.loads(fields.get("original_ref") or "")
        original_path = _existing_file(request, ref.get("type") or "input", ref.get("subfolder") or "",
                                       str(ref["filename"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return error_response(400, "invalid_upload", "original_ref must be JSON {filename, subfolder, type}")
    filename, mask_bytes = fields["image"]
    name = _clean_filename(filename)
    try:
        mask = await asyncio.to_thread(open_checked, mask_bytes)
        original = await asyncio.to_thread(open_checked, original_path.read_bytes())
    except BadImageError as exc:
        return error_response(400, "invalid_image", str(exc))
    merged = await asyncio.to_thread(apply_mask_alpha, original, mask)
    folder_type = fields.get("type") or "input"
    subfolder = fields.get("subfolder") or ""
    folder = _target_folder(request, folder_type, subfolder)
    stored = await asyncio.to_thread(_store, folder, name, merged, _flag(fields.get("overwrite", "")))
    return web.json_response({"name": stored, "subfolder": subfolder, "type": folder_type})


def _existing_file(request: web.Request, folder_type: str, subfolder: str, filename: str) -> Path:
    if not filename or "/" in filename or "\\" in filename or ".." in filename or "\x00" in filename:
        raise web.HTTPBadRequest(text="invalid filename")
    try:
        root = state_of(request).folders.folder_for(folder_type)
    except UnsafePathError as exc:
        raise web.HTTPBadRequest(text=str(exc))
    try:
        path = safe_join(root, subfolder, filename)
    except UnsafePathError as exc:
        raise web.HTTPForbidden(text=str(exc))
    if not path.is_file():
        raise web.HTTPNotFound(text="file not found")
    return path


@routes.get("/view")
async def view(request: web.Request) -> web.StreamResponse:
    query = request.query
    filename, folder_type = split_annotated_name(query.get("filename", ""), query.get("type") or "output")
    path = _existing_file(request, folder_type, query.get("subfolder", ""), filename)
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    extension = path.suffix.lower()
    if extension in ACTIVE_CONTENT:
        headers["Content-Disposition"] = f'attachment; filename="{path.name}"'
        return web.FileResponse(path, headers={**headers, "Content-Type": "application/octet-stream"})
    channel = query.get("channel", "rgba")
    preview = query.get("preview")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("image/") and (channel in ("rgb", "a") or preview):
        try:
            data, content_type = await asyncio.to_thread(convert_for_view, path.read_bytes(), channel, preview)
        except Exception as exc:
            return error_response(400, "invalid_image", f"cannot convert {path.name}: {exc}")
        return web.Response(body=data, content_type=content_type, headers=headers)
    headers["Content-Disposition"] = f'inline; filename="{path.name}"'
    return web.FileResponse(path, headers={**headers, "Content-Type": content_type})


MAX_SAFETENSORS_HEADER = 16 * 1024 * 1024


def read_safetensors_metadata(path: Path) -> dict | None:
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            return None
        (length,) = struct.unpack("<Q", head)
        if length > MAX_SAFETENSORS_HEADER or length > path.stat().st_size - 8:
            return None
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            return None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return metadata if isinstance(metadata, dict) else None


@routes.get("/view_metadata/{folder}")
async def view_metadata(request: web.Request) -> web.Response:
    folders = state_of(request).folders
    kind = request.match_info["folder"]
    filename = request.query.get("filename", "")
    if not filename.endswith(".safetensors"):
        return web.Response(status=404)
    try:
        path = folders.model_path(kind, filename)
    except KeyError:
        return web.Response(status=404)
    except UnsafePathError as exc:
        return web.Response(status=403, text=str(exc))
    except FileNotFoundError:
        return web.Response(status=404)
    metadata = await asyncio.to_thread(read_safetensors_metadata, path)
    if metadata is None:
        return web.Response(status=404)
    return web.json_response(metadata)
