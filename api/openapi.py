"""An OpenAPI 3.1 description of Weft's HTTP API, read off the application's router.

Every route registered under ``/api/`` is listed (the core tables and what node packs added), with
its path parameters; the query parameters and request bodies of the core routes come from the
tables below (what docs/api.md describes). Client authors can generate code from it, and the test
suite fuzzes a live server with it (tests/api/test_openapi_fuzz.py: no input may give a 5xx).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN_TEXT = {"type": "string", "enum": ["true", "false"]}
JSON_OBJECT = {"type": "object"}

#: Query parameters of the core routes (path without the /api prefix).
QUERY: dict[tuple[str, str], dict[str, dict]] = {
    ("GET", "/view"): {"filename": STRING, "type": {"type": "string", "enum": ["input", "output", "temp"]},
                       "subfolder": STRING, "preview": STRING, "channel": {"type": "string",
                                                                           "enum": ["rgba", "rgb", "a"]}},
    ("GET", "/view_metadata/{folder}"): {"filename": STRING},
    ("GET", "/history"): {"max_items": INTEGER, "offset": INTEGER},
    ("GET", "/jobs"): {"status": STRING, "limit": INTEGER, "offset": INTEGER, "sort_by": STRING,
                       "sort_order": {"type": "string", "enum": ["asc", "desc"]}, "workflow_id": STRING},
    ("GET", "/userdata"): {"dir": STRING, "recurse": BOOLEAN_TEXT, "full_info": BOOLEAN_TEXT,
                           "split": BOOLEAN_TEXT},
    ("GET", "/v2/userdata"): {"path": STRING},
    ("POST", "/userdata/{file}"): {"overwrite": BOOLEAN_TEXT, "full_info": BOOLEAN_TEXT},
    ("POST", "/userdata/{file}/move/{dest}"): {"overwrite": BOOLEAN_TEXT, "full_info": BOOLEAN_TEXT},
}

#: Request bodies of the core routes: a JSON object (its fields in docs/api.md), or raw bytes.
BODIES: dict[tuple[str, str], dict] = {
    ("POST", "/prompt"): {"application/json": {"schema": {"type": "object", "properties": {
        "prompt": JSON_OBJECT, "client_id": STRING, "prompt_id": STRING, "extra_data": JSON_OBJECT,
        "front": {"type": "boolean"}, "number": {"type": "number"},
        "partial_execution_targets": {"type": "array", "items": STRING}}}}},
    ("POST", "/workflow/convert"): {"application/json": {"schema": JSON_OBJECT}},
    ("POST", "/queue"): {"application/json": {"schema": {"type": "object", "properties": {
        "clear": {"type": "boolean"}, "delete": {"type": "array", "items": STRING}}}}},
    ("POST", "/history"): {"application/json": {"schema": {"type": "object", "properties": {
        "clear": {"type": "boolean"}, "delete": {"type": "array", "items": STRING}}}}},
    ("POST", "/interrupt"): {"application/json": {"schema": {"type": "object", "properties": {
        "prompt_id": STRING}}}},
    ("POST", "/free"): {"application/json": {"schema": {"type": "object", "properties": {
        "unload_models": {"type": "boolean"}, "free_memory": {"type": "boolean"}}}}},
    ("POST", "/settings"): {"application/json": {"schema": JSON_OBJECT}},
    ("POST", "/settings/{id}"): {"application/json": {"schema": {}}},
    ("POST", "/users"): {"application/json": {"schema": {"type": "object", "properties": {"username": STRING}}}},
    ("POST", "/userdata/{file}"): {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    ("PATCH", "/internal/logs/subscribe"): {"application/json": {"schema": {"type": "object", "properties": {
        "clientId": STRING, "enabled": {"type": "boolean"}}}}},
    ("POST", "/upload/image"): {"multipart/form-data": {"schema": {"type": "object", "properties": {
        "image": {"type": "string", "format": "binary"}, "type": STRING, "subfolder": STRING,
        "overwrite": STRING}}}},
}

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _operation(method: str, path: str) -> dict[str, Any]:
    core = path.removeprefix("/api")
    parameters = [{"name": name, "in": "path", "required": True, "schema": STRING}
                  for name in _PARAM.findall(path)]
    parameters += [{"name": name, "in": "query", "required": False, "schema": schema}
                   for name, schema in QUERY.get((method, core), {}).items()]
    operation: dict[str, Any] = {"operationId": f"{method.lower()} {core}", "parameters": parameters,
                                 "responses": {"default": {"description": "see docs/api.md"}}}
    if (method, core) in BODIES:
        operation["requestBody"] = {"required": False, "content": BODIES[(method, core)]}
    return operation


def describe(app: web.Application, version: str) -> dict:
    """The OpenAPI document of ``app``'s routes under /api/."""
    paths: dict[str, dict] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if not path or not path.startswith("/api/") or route.method in ("HEAD", "*"):
            continue
        templated = _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)
        paths.setdefault(templated, {})[route.method.lower()] = _operation(route.method, templated)
    return {"openapi": "3.1.0",
            "info": {"title": "Weft", "version": version,
                     "description": "Weft's HTTP API: ComfyUI's routes and Weft's own (docs/api.md)."},
            "paths": dict(sorted(paths.items()))}
