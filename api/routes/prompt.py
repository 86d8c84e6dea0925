"""Jobs: /prompt, /queue, /history, /interrupt, /free."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid

from aiohttp import web

from graph.context import call_with_services
from graph.jobs import DuplicateJobError, QueueFullError, display_number
from graph.validation import validate_prompt
from graph.workflow import WorkflowError, is_ui_workflow, workflow_to_prompt

from ..compat import PROMPT_SERVER
from ..errors import error_response, http_error, read_json
from ..previews import resolve_preview_method
from ..state import state_of

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/prompt")
async def get_prompt(request: web.Request) -> web.Response:
    return web.json_response({"exec_info": {"queue_remaining": state_of(request).worker.queue_remaining()}})


def _queue_full(limit: int) -> web.Response:
    return error_response(429, "queue_full", f"The queue holds {limit} jobs; try again later", node_errors={},
                          headers={"Retry-After": "5"})


def _queue_number(body: dict, state) -> float:
    if "number" in body:
        number = float(body["number"])
        if not math.isfinite(number):
            raise ValueError("number must be finite")
        return number
    return state.store.next_number(front=bool(body.get("front")))


@routes.post("/prompt")
async def post_prompt(request: web.Request) -> web.Response:
    state = state_of(request)
    options = state.options
    if state.store.count_pending() >= options.max_queue_size:  # cheap early answer; submit() decides
        return _queue_full(options.max_queue_size)
    body = await read_json(request, default={}, max_bytes=options.max_json_bytes, max_depth=options.max_json_depth)
    if not isinstance(body, dict):
        return error_response(400, "invalid_prompt", "The request body must be a JSON object", node_errors={})
    prompt = body.get("prompt")
    workflow_warnings: list[str] = []
    if prompt is None and body.get("workflow") is not None:
        # Weft goes further than ComfyUI: a UI workflow file can be queued as it was saved.
        converted = await _convert_workflow(state, body["workflow"])
        if isinstance(converted, web.Response):
            return converted
        prompt, workflow_warnings = converted
        extra_data = body.get("extra_data")
        extra_data = extra_data if isinstance(extra_data, dict) else {}
        pnginfo = extra_data.get("extra_pnginfo")
        pnginfo = pnginfo if isinstance(pnginfo, dict) else {}
        body["extra_data"] = {**extra_data, "extra_pnginfo": {"workflow": body["workflow"], **pnginfo}}
        body["prompt"] = prompt
    body = await _on_prompt_handlers(request, body)
    prompt = body.get("prompt")
    if prompt is None:
        return error_response(400, "no_prompt", "No prompt provided", "No prompt provided", node_errors={})
    if isinstance(prompt, dict) and len(prompt) > options.max_prompt_nodes:
        return error_response(413, "prompt_too_large", f"The prompt has {len(prompt)} nodes; at most "
                              f"{options.max_prompt_nodes} are accepted", node_errors={})
    extra_data = body.get("extra_data") or {}
    client_id = body.get("client_id")
    prompt_id = body.get("prompt_id") or str(uuid.uuid4())
    targets = body.get("partial_execution_targets")
    if not isinstance(extra_data, dict) or not isinstance(prompt_id, str) or (
            client_id is not None and not isinstance(client_id, str)) or (
            targets is not None and not isinstance(targets, list)):
        return error_response(400, "invalid_prompt", "extra_data must be an object; prompt_id and client_id strings; "
                              "partial_execution_targets a list", node_errors={})
    try:
        number = _queue_number(body, state)
    except (TypeError, ValueError) as exc:
        return error_response(400, "invalid_prompt", "Invalid queue number", str(exc), node_errors={})

    result = await asyncio.to_thread(call_with_services, state.services, validate_prompt, prompt, state.registry,
                                     targets)
    if not result.ok:
        return error_response(400, result.error["type"], result.error["message"], result.error["details"],
                              node_errors=result.node_errors)
    extra_data = {**extra_data, "create_time": int(time.time() * 1000), "preview_method": resolve_preview_method(
        extra_data.get("preview_method"), options.preview_method, state.hub.reads_previews(client_id))}
    if client_id is not None:
        extra_data["client_id"] = client_id
    try:
        await asyncio.to_thread(state.store.submit, prompt_id, number, result.prompt, extra_data, result.outputs,
                                client_id, options.max_queue_size)
    except QueueFullError:
        return _queue_full(options.max_queue_size)
    except DuplicateJobError:
        return error_response(409, "duplicate_prompt_id", "A job with this prompt_id already exists", prompt_id)
    state.worker.broadcast_status()
    response = {"prompt_id": prompt_id, "number": display_number(number), "node_errors": result.node_errors}
    if workflow_warnings:
        response["warnings"] = workflow_warnings
    return web.json_response(response)


async def _on_prompt_handlers(request: web.Request, body: dict) -> dict:
    """The body as node packs' on-prompt handlers rewrite it (``PromptServer.add_on_prompt_handler``),
    in turn, before validation; run in a thread, since a handler may be slow."""
    server = request.app.get(PROMPT_SERVER)
    if server is None or not server.on_prompt_handlers:
        return body
    return await asyncio.to_thread(server.trigger_on_prompt, body)


async def _convert_workflow(state, workflow) -> tuple[dict, list[str]] | web.Response:
    if not is_ui_workflow(workflow):
        return error_response(400, "invalid_workflow", "workflow is not a UI workflow (nodes and links)",
                              node_errors={})
    object_info = await asyncio.to_thread(call_with_services, state.services, state.registry.object_info)
    try:
        return await asyncio.to_thread(workflow_to_prompt, workflow, object_info,
                                       max_nodes=state.options.max_prompt_nodes)
    except WorkflowError as exc:
        return error_response(400, "invalid_workflow", "The workflow cannot be converted", str(exc), node_errors={})
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        # A field of the wrong shape deep in a hand-made file (tests/graph/test_properties.py
        # lists the known ones): the client's mistake, not the server's.
        log.info("a malformed UI workflow was refused: %r", exc)
        return error_response(400, "invalid_workflow", "The workflow is malformed",
                              f"{type(exc).__name__}: {exc}", node_errors={})


@routes.post("/workflow/convert")
async def convert_workflow(request: web.Request) -> web.Response:
    """UI workflow -> API prompt, the one conversion scripts and the editor share."""
    state = state_of(request)
    body = await read_json(request, default={}, max_bytes=state.options.max_json_bytes,
                           max_depth=state.options.max_json_depth)
    workflow = body.get("workflow") if isinstance(body, dict) else None
    converted = await _convert_workflow(state, workflow)
    if isinstance(converted, web.Response):
        return converted
    prompt, warnings = converted
    return web.json_response({"prompt": prompt, "warnings": warnings})


@routes.get("/queue")
async def get_queue(request: web.Request) -> web.Response:
    state = state_of(request)
    pending = await asyncio.to_thread(state.store.pending)
    return web.json_response({"queue_running": state.worker.running_items(),
                              "queue_pending": [job.queue_item() for job in pending]})


@routes.post("/queue")
async def post_queue(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await read_json(request, default={})
    if not isinstance(body, dict):
        return error_response(400, "invalid_request", "The request body must be a JSON object")
    if body.get("clear"):
        await asyncio.to_thread(state.store.clear_pending)
    if isinstance(body.get("delete"), list):
        await asyncio.to_thread(state.store.delete_pending, [str(i) for i in body["delete"]])
    state.worker.broadcast_status()
    return web.Response(status=200)


#: The largest paging value the history takes: SQLite's INTEGER is 64-bit.
MAX_PAGING_VALUE = 2**63 - 1


def _int_param(request: web.Request, name: str) -> int | None:
    """A /history paging parameter: an integer within SQLite's range, or a 400."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise http_error(web.HTTPBadRequest, "invalid_request", f"{name} must be an integer", raw[:100]) from None
    if abs(value) > MAX_PAGING_VALUE:
        raise http_error(web.HTTPBadRequest, "invalid_request", f"{name} is out of range",
                         f"at most {MAX_PAGING_VALUE}")
    return value


@routes.get("/history")
async def get_history(request: web.Request) -> web.Response:
    store = state_of(request).store
    max_items = _int_param(request, "max_items")
    offset = _int_param(request, "offset")
    if offset is not None and offset >= 0:
        history = await asyncio.to_thread(store.history, max_items, offset)
    elif max_items is not None:
        history = await asyncio.to_thread(store.history_tail, max(0, max_items))
    else:
        history = await asyncio.to_thread(store.history)
    return web.json_response(history)


@routes.get("/history/{prompt_id}")
async def get_history_entry(request: web.Request) -> web.Response:
    prompt_id = request.match_info["prompt_id"]
    entry = await asyncio.to_thread(state_of(request).store.history_entry, prompt_id)
    return web.json_response({prompt_id: entry} if entry is not None else {})


@routes.post("/history")
async def post_history(request: web.Request) -> web.Response:
    store = state_of(request).store
    body = await read_json(request, default={})
    if not isinstance(body, dict):
        return error_response(400, "invalid_request", "The request body must be a JSON object")
    if body.get("clear"):
        await asyncio.to_thread(store.clear_history)
    if isinstance(body.get("delete"), list):
        await asyncio.to_thread(store.delete_history, [str(i) for i in body["delete"]])
    return web.Response(status=200)


@routes.post("/interrupt")
async def post_interrupt(request: web.Request) -> web.Response:
    body = await read_json(request, default={})
    prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
    state_of(request).worker.interrupt(str(prompt_id) if prompt_id is not None else None)
    return web.Response(status=200)


@routes.post("/free")
async def post_free(request: web.Request) -> web.Response:
    body = await read_json(request, default={})
    if not isinstance(body, dict):
        return error_response(400, "invalid_request", "The request body must be a JSON object")
    state_of(request).worker.request_free(bool(body.get("unload_models")), bool(body.get("free_memory")))
    return web.Response(status=200)
