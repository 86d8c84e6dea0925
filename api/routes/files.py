"""Files: /upload/image, /upload/mask, /view, /view_metadata/{folder}.

Every name from a request is resolved with ``graph.folders.safe_join`` inside its folder. Uploads
are checked to be images of a bounded size, never overwrite silently, and are written atomically.
``/view`` serves a file by what its bytes are (``api.sniff``), never by its name: images, video,
audio and plain text inline with their real type, anything else as a download; every answer
carries ``nosniff`` and a Content-Security-Policy under which nothing runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import struct
import urllib.parse
from pathlib import Path

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from graph.atomic import atomic_write_bytes, create_exclusive
from graph.folders import UnsafePathError, check_relative_name, safe_join, split_annotated_name

from ..errors import error_response, http_error
from ..images import BadImageError, apply_mask_alpha, check_image, open_checked
from ..sniff import sniff_file
from ..state import state_of

routes = web.RouteTableDef()

#: Extensions never rendered in the page's origin (the templates' files; /view goes by content).
ACTIVE_CONTENT = {".html", ".htm", ".xhtml", ".svg", ".js", ".mjs", ".css", ".xml"}
MAX_NAME_LENGTH = 200
#: /view's policy: an image or a medium may show; no script, plugin, form or frame, even if a
#: browser took the answer for a page (``sandbox`` also gives it an opaque origin).
VIEW_CSP = "default-src 'none'; img-src 'self' data: blob:; media-src 'self'; style-src 'unsafe-inline'; sandbox"
INLINE_TYPES = ("image/", "video/", "audio/", "text/plain")


async def _read_upload(request: web.Request) -> dict:
    """The multipart fields of an upload, with the file part bounded by the upload limit."""
    limit = state_of(request).options.max_upload_size
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    if not request.content_type.startswith("multipart/"):
        raise http_error(web.HTTPBadRequest, "invalid_upload", "Expected a multipart/form-data upload")
    fields: dict = {}
    total = 0
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):  # a multipart inside a form field
                raise http_error(web.HTTPBadRequest, "invalid_upload", "Malformed multipart upload",
                                 "a nested multipart part")
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
    except (HttpProcessingError, ValueError) as exc:  # a malformed part header (a NUL in a name, …)
        raise http_error(web.HTTPBadRequest, "invalid_upload", "Malformed multipart upload",
                         str(exc).strip()) from None
    return fields


def _target_folder(request: web.Request, folder_type: str, subfolder: str) -> Path:
    folders = state_of(request).folders
    try:
        return safe_join(folders.folder_for(folder_type or "input"), subfolder or "")
    except UnsafePathError as exc:
        raise http_error(web.HTTPForbidden, "forbidden_path", "The upload's folder is not allowed", str(exc)) from exc


def _clean_filename(name: str | None) -> str:
    name = os.path.basename((name or "").replace("\\", "/")).strip()
    try:
        check_relative_name(name)
    except UnsafePathError as exc:
        raise http_error(web.HTTPBadRequest, "invalid_filename", "Invalid file name", str(exc)) from exc
    if not name or name in (".", "..") or len(name) > MAX_NAME_LENGTH:
        raise http_error(web.HTTPBadRequest, "invalid_filename", "Invalid file name",
                         f"a name of 1 to {MAX_NAME_LENGTH} characters is required")
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
    raise http_error(web.HTTPConflict, "name_taken", "Too many files with this name")


async def _store_upload(request: web.Request, fields: dict, name: str, data: bytes) -> web.Response:
    """Store ``data`` in the upload's folder; a name that resolves outside it (a symlink) is 403."""
    folder_type = fields.get("type") or "input"
    subfolder = fields.get("subfolder") or ""
    folder = _target_folder(request, folder_type, subfolder)
    try:
        stored = await asyncio.to_thread(_store, folder, name, data, _flag(fields.get("overwrite", "")))
    except UnsafePathError as exc:
        return error_response(403, "forbidden_path", "The upload's name leads outside its folder", str(exc),
                              node_errors={})
    return web.json_response({"name": stored, "subfolder": subfolder, "type": folder_type})


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
    return await _store_upload(request, fields, name, data)


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
    return await _store_upload(request, fields, name, merged)


def _existing_file(request: web.Request, folder_type: str, subfolder: str, filename: str) -> Path:
    if not filename or "/" in filename or "\\" in filename or ".." in filename or "\x00" in filename:
        raise http_error(web.HTTPBadRequest, "invalid_filename", "Invalid file name")
    try:
        root = state_of(request).folders.folder_for(folder_type)
    except UnsafePathError as exc:
        raise http_error(web.HTTPBadRequest, "invalid_folder_type", "Unknown folder type", str(exc)) from exc
    try:
        path = safe_join(root, subfolder, filename)
    except UnsafePathError as exc:
        raise http_error(web.HTTPForbidden, "forbidden_path", "The path leads outside its folder", str(exc)) from exc
    if not path.is_file():
        raise http_error(web.HTTPNotFound, "file_not_found", "File not found", filename)
    return path


def _disposition(kind: str, name: str) -> str:
    """``inline``/``attachment`` with the file's name, quoted so that no name can break the header."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"


@routes.get("/view")
async def view(request: web.Request) -> web.StreamResponse:
    query = request.query
    filename, folder_type = split_annotated_name(query.get("filename", ""), query.get("type") or "output")
    path = _existing_file(request, folder_type, query.get("subfolder", ""), filename)
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache", "Content-Security-Policy": VIEW_CSP}
    media_type = await asyncio.to_thread(sniff_file, path)
    if media_type is None or not media_type.startswith(INLINE_TYPES):
        return web.FileResponse(path, headers={**headers, "Content-Type": "application/octet-stream",
                                               "Content-Disposition": _disposition("attachment", path.name)})
    channel = query.get("channel", "rgba")
    preview = query.get("preview")
    if media_type.startswith("image/") and (channel in ("rgb", "a") or preview):
        try:
            data, content_type = await state_of(request).view_conversions.convert(path, channel, preview)
        except Exception as exc:
            return error_response(400, "invalid_image", f"cannot convert {path.name}: {exc}")
        return web.Response(body=data, content_type=content_type, headers=headers)
    return web.FileResponse(path, headers={**headers, "Content-Type": media_type,
                                           "Content-Disposition": _disposition("inline", path.name)})


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
