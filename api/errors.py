"""JSON error responses in ComfyUI's ``{"error": {type, message, details, extra_info}}`` shape."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypeVar

from aiohttp import web

from graph.validation import make_error

_HTTPError = TypeVar("_HTTPError", bound=web.HTTPException)


def error_response(status: int, error_type: str, message: str, details: str = "", *,
                   node_errors: dict | None = None, headers: dict | None = None) -> web.Response:
    body: dict[str, Any] = {"error": make_error(error_type, message, details)}
    if node_errors is not None:
        body["node_errors"] = node_errors
    return web.json_response(body, status=status, headers=headers)


def http_error(cls: type[_HTTPError], error_type: str, message: str, details: str = "",
               **kwargs: Any) -> _HTTPError:
    """An aiohttp HTTP exception (to raise) whose body is the ComfyUI-shaped JSON error."""
    return cls(text=json.dumps({"error": make_error(error_type, message, details), "node_errors": {}}),
               content_type="application/json", **kwargs)


def _bad_request(error_type: str, message: str, details: str = "") -> web.HTTPBadRequest:
    return http_error(web.HTTPBadRequest, error_type, message, details)


def server_error_response(exc: BaseException) -> web.Response:
    """The JSON 500 for an exception no handler expected (its traceback goes to the log, not out)."""
    return error_response(500, "server_error", "Internal server error", type(exc).__name__, node_errors={})


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """True when containers nest deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(current, dict):
            children = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


async def read_json(request: web.Request, *, default: Any = None, max_bytes: int = 64 * 1024 * 1024,
                    max_depth: int = 64) -> Any:
    """The request's JSON body; an empty body gives ``default``; bad JSON raises a 400 with its reason."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=request.content_length)
    raw = await request.read()
    if len(raw) > max_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=len(raw))
    if not raw.strip():
        return default
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _bad_request("invalid_json", "JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad_request("invalid_json", "Invalid JSON body", str(exc)) from None
    if json_depth_exceeds(value, max_depth):
        raise _bad_request("invalid_json", f"JSON nested deeper than {max_depth} levels")
    return value
