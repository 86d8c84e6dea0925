"""Builds the aiohttp application: route tables at /path and /api/path, the editor's static
files, what node packs added through ``PromptServer.instance`` (api.compat), and the worker
started and stopped with the app's lifecycle."""

from __future__ import annotations

import asyncio
import inspect
import logging
import warnings
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .compat import PromptServer
from .csp import front_end_policy
from .errors import error_response, server_error_response
from .frontends import BRIDGE_EXTENSION, EDITOR_MOUNT, node_docs_folder
from .logs import TERMINAL_SIZE
from .pack_app import ITEM, MIDDLEWARE, ROUTE, SIGNAL, Addition
from .previews import encode_preview
from .routes import files, jobs, model_browser, nodes, pack_assets, prompt, system, templates, userdata, ws
from .security import SecurityPolicy, security_middleware
from .state import STATE, AppState

log = logging.getLogger(__name__)

ROUTE_TABLES = (prompt.routes, jobs.routes, nodes.routes, ws.routes, files.routes, system.routes, userdata.routes,
                model_browser.routes, pack_assets.routes, templates.routes)


def _register(app: web.Application, tables) -> None:
    for table in tables:
        for route in table:
            for prefix in ("", "/api"):
                app.router.add_route(route.method, prefix + route.path, route.handler)


def _core_route_keys() -> set[tuple[str, str]]:
    return {(route.method, prefix + route.path) for table in ROUTE_TABLES for route in table
            if isinstance(route, web.RouteDef) for prefix in ("", "/api")} | {("GET", "/"), ("GET", EDITOR_MOUNT + "/")}


def _add_pack_route(app: web.Application, route: web.RouteDef, core: set[tuple[str, str]]) -> tuple[str, str] | None:
    """A pack's route at /path and /api/path, unless it would replace a core route."""
    keys = [(route.method, prefix + route.path) for prefix in ("", "/api")]
    core_paths = {path for _, path in core}
    if any(k in core or (route.method == "*" and k[1] in core_paths) for k in keys):
        return f"route {route.method} {route.path}", "would replace a core route"
    for method, path in keys:
        kwargs = route.kwargs if path == route.path else {k: v for k, v in route.kwargs.items() if k != "name"}
        try:
            web.RouteDef(method, path, route.handler, kwargs).register(app.router)
        except (RuntimeError, ValueError, TypeError) as exc:
            return f"route {route.method} {path}", str(exc)
    return None


def _add_pack_static(app: web.Application, static: web.StaticDef, core: set[tuple[str, str]]) -> tuple[str, str] | None:
    """A pack's static folder, unless its prefix is, or lies above, a core route."""
    prefix = "/" + static.prefix.strip("/")
    if prefix == "/" or any(path == prefix or path.startswith(prefix + "/") for _, path in core):
        return f"static {static.prefix}", "would shadow core routes"
    try:
        app.router.add_static(prefix, static.path, **static.kwargs)
    except (RuntimeError, ValueError, TypeError) as exc:
        return f"static {static.prefix}", str(exc)
    return None


def _guarded_hook(handler, pack: str | None):
    """A pack's startup/shutdown hook whose failure is logged instead of stopping the server."""

    async def hook(*args):
        try:
            result = handler(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("a hook of node pack %s failed", pack or "(unknown)")

    return hook


def pack_addition_applier(app: web.Application):
    """How api.compat.PromptServer's recorded pack additions reach ``app``: routes beside the core
    ones (never replacing one), middlewares after Weft's security middleware, hooks guarded.
    Answers ``(what, why)`` for an addition it refuses."""
    core = _core_route_keys()

    def apply(addition: Addition) -> tuple[str, str] | None:
        kind, value = addition.kind, addition.value
        try:
            if kind == ROUTE and isinstance(value, web.RouteDef):
                return _add_pack_route(app, value, core)
            if kind == ROUTE and isinstance(value, web.StaticDef):
                return _add_pack_static(app, value, core)
            if kind == MIDDLEWARE:
                app.middlewares.append(value)  # after the error and security middlewares: they run first
            elif kind == SIGNAL:
                getattr(app, value[0]).append(_guarded_hook(value[1], addition.pack))
            elif kind == ITEM:
                with warnings.catch_warnings():  # packs use str keys, as ComfyUI lets them
                    warnings.simplefilter("ignore", web.NotAppKeyWarning)
                    app[value[0]] = value[1]
        except (RuntimeError, ValueError, TypeError) as exc:  # e.g. the application has started
            return f"{kind} {value!r}", str(exc)
        return None

    return apply


def make_sender(hub, preview_size: int):
    """The worker's ``send(event, data, client_id)``: safe to call from the worker thread."""

    def send(event: str, data: dict, client_id: str | None) -> None:
        if event == "preview":
            encoded = encode_preview(data.get("image"), preview_size)
            if encoded is None:
                return
            metadata = {k: data.get(k) for k in ("node_id", "prompt_id", "display_node_id")}
            metadata.update(parent_node_id=None, real_node_id=data.get("display_node_id"))
            hub.call_threadsafe(hub.send_preview, encoded[0], encoded[1], metadata, client_id)
        else:
            hub.call_threadsafe(hub.send_json, event, data, client_id)

    return send


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Outermost: an exception no handler expected becomes a JSON 500, its traceback logged;
    aiohttp's HTTP exceptions (404s, the 4xx handlers raise) pass as they are."""
    try:
        return await handler(request)
    except (web.HTTPException, asyncio.CancelledError, ConnectionResetError):
        raise
    except HttpProcessingError as exc:  # a malformed body read by a handler: the client's fault
        status = exc.code if 400 <= (exc.code or 0) < 500 else 400
        return error_response(status, "bad_request", "Malformed request", exc.message, node_errors={})
    except Exception as exc:
        log.exception("%s %s failed", request.method, request.path)
        return server_error_response(exc)


def _front_end_root(request: web.Request) -> Path | None:
    """The front end folder a page or static file of ``request`` comes from, or None."""
    options = request.app[STATE].options
    route = request.match_info.route
    if route.handler is _index:
        return options.web_root
    if route.handler is _editor_index:
        return options.editor_root
    resource = route.resource
    if isinstance(resource, web.StaticResource):
        directory = Path(resource.get_info()["directory"])
        for root in (options.web_root, options.editor_root):
            if root is not None and directory == root.resolve():
                return root
    return None


@web.middleware
async def front_end_csp_middleware(request: web.Request, handler):
    """The front ends' pages and files get their Content-Security-Policy (api.csp)."""
    response = await handler(request)
    root = _front_end_root(request)
    if root is not None and "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = front_end_policy(root)
    return response


def _index_of(root: Path | None) -> web.StreamResponse:
    if root is None or not (root / "index.html").is_file():
        return web.Response(text="Weft server is running; the editor is not installed.", content_type="text/plain")
    return web.FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})


async def _index(request: web.Request) -> web.StreamResponse:
    return _index_of(request.app[STATE].options.web_root)


async def _editor_index(request: web.Request) -> web.StreamResponse:
    return _index_of(request.app[STATE].options.editor_root)


async def _to_editor(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(EDITOR_MOUNT + "/")


async def _start_worker(app: web.Application) -> None:
    state = app[STATE]
    state.hub.bind_loop(asyncio.get_running_loop())
    if state.logs is not None:  # live entries to the clients that subscribed
        state.logs.listener = lambda entry: state.hub.call_threadsafe(state.hub.send_log_entry, entry, TERMINAL_SIZE)
    state.worker.start()


async def _stop_worker(app: web.Application) -> None:
    state = app[STATE]
    await asyncio.to_thread(state.worker.stop)
    state.store.close()


def _mount_editor(app: web.Application, state: AppState) -> None:
    """Weft's editor at /weft/ whatever takes /, and, beside another front end, Weft's bridge
    extension for it at /extensions/weft/ (listed by /extensions)."""
    options = state.options
    if options.editor_root is None or not options.editor_root.is_dir():
        return
    app.router.add_get(EDITOR_MOUNT, _to_editor)
    app.router.add_get(EDITOR_MOUNT + "/", _editor_index)
    app.router.add_static(EDITOR_MOUNT, options.editor_root, follow_symlinks=False)
    bridge = options.editor_root / BRIDGE_EXTENSION
    if options.front_end is not None and not options.front_end.is_weft and bridge.is_dir():
        app.router.add_static("/extensions/weft", bridge, follow_symlinks=False)


def _mount_node_docs(app: web.Application) -> None:
    docs = node_docs_folder()
    if docs is not None:  # node help pages of ComfyUI's frontend: /docs/<Node>/<lang>.md
        app.router.add_static("/docs", docs, follow_symlinks=False)


def build_app(state: AppState, policy: SecurityPolicy | None = None,
              prompt_server: PromptServer | None = None) -> web.Application:
    """The application; with ``prompt_server`` (``PromptServer.instance``), what node packs added
    through it is applied after the core routes, and it is bound to this application."""
    app = web.Application(client_max_size=max(state.options.max_upload_size, state.options.max_json_bytes),
                          middlewares=[error_middleware, security_middleware(policy or SecurityPolicy()),
                                       front_end_csp_middleware])
    app[STATE] = state
    _register(app, ROUTE_TABLES)
    app.router.add_get("/", _index)
    _mount_editor(app, state)
    _mount_node_docs(app)
    for pack in state.packs:  # each pack's WEB_DIRECTORY, served read-only
        if pack.loaded and pack.web_directory and Path(pack.web_directory).is_dir():
            app.router.add_static(f"/extensions/{pack.name}", pack.web_directory, follow_symlinks=False)
    if state.options.web_root is not None and state.options.web_root.is_dir():
        app.router.add_static("/", state.options.web_root, follow_symlinks=False)
    if prompt_server is not None:
        prompt_server.attach(app, state, pack_addition_applier(app))
    app.on_startup.append(_start_worker)
    app.on_cleanup.append(_stop_worker)
    return app
