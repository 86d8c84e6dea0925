"""JSON error responses in ComfyUI's ``{"error": {type, message, details, extra_info}}`` shape."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from graph.validation import make_error


def error_response(status: int, error_type: str, message: str, details: str = "", *,
                   node_errors: dict | None = None, headers: dict | None = None) -> web.Response:
    body: dict[str, Any] = {"error": make_error(error_type, message, details)}
    if node_errors is not None:
        body["node_errors"] = node_errors
    return web.json_response(body, status=status, headers=headers)


async def read_json(request: web.Request, *, default: Any = None) -> Any:
    """The request's JSON body; an empty body gives ``default``; invalid JSON raises a 400."""
    raw = await request.read()
    if not raw.strip():
        return default
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": make_error("invalid_json", "Invalid JSON body", str(exc)),
                                                  "node_errors": {}}), content_type="application/json")
