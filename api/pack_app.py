"""What packs see as ``PromptServer.instance.app`` while they load: a recorder of the routes,
static folders, middlewares, signal handlers and items a pack adds, each remembered with the pack
that added it, applied to the real application by api.app.build_app (see api.compat).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from aiohttp import web

if TYPE_CHECKING:
    from .compat import PromptServer

log = logging.getLogger(__name__)

#: Kinds of additions a pack can make.
ROUTE, MIDDLEWARE, SIGNAL, ITEM, ON_PROMPT = "route", "middleware", "signal", "item", "on_prompt"


class Addition(NamedTuple):
    pack: str | None  # the pack being imported when it was added (None: outside a pack import)
    kind: str
    value: Any  # a RouteDef/StaticDef, a middleware, (signal name, handler), (key, value), a handler


# -- what packs see as PromptServer.instance.app -------------------------------------------------------
class PackRouteTable(web.RouteTableDef):
    """``PromptServer.instance.routes``: an aiohttp route table whose entries remember their pack."""

    def __init__(self, server: PromptServer) -> None:
        super().__init__()
        self._server = server

    def route(self, method: str, path: str, **kwargs: Any):
        def register(handler):
            self.add(web.RouteDef(method, path, handler, kwargs))
            return handler

        return register

    def static(self, prefix: str, path, **kwargs: Any) -> None:
        self.add(web.StaticDef(prefix, str(path), kwargs))

    def add(self, definition: web.AbstractRouteDef) -> None:
        self._items.append(definition)
        self._server._record(ROUTE, definition)

    def discard(self, definition: web.AbstractRouteDef) -> None:
        self._items[:] = [d for d in self._items if d is not definition]


class _PendingResource:
    """What ``app.router.add_resource(path)`` returns: routes added to it go to the route table."""

    def __init__(self, table: PackRouteTable, path: str) -> None:
        self._table, self._path = table, path

    def add_route(self, method: str, handler, **kwargs: Any) -> None:
        self._table.route(method, self._path, **kwargs)(handler)


class PackRouter:
    """``PromptServer.instance.app.router``: additions go through the pack route table; anything
    else is read from the real router once the application exists."""

    def __init__(self, server: PromptServer) -> None:
        self._server = server

    def add_route(self, method: str, path: str, handler, **kwargs: Any) -> None:
        self._server.routes.route(method, path, **kwargs)(handler)

    def add_get(self, path: str, handler, **kwargs: Any) -> None:
        self.add_route("GET", path, handler, **kwargs)

    def add_post(self, path: str, handler, **kwargs: Any) -> None:
        self.add_route("POST", path, handler, **kwargs)

    def add_put(self, path: str, handler, **kwargs: Any) -> None:
        self.add_route("PUT", path, handler, **kwargs)

    def add_patch(self, path: str, handler, **kwargs: Any) -> None:
        self.add_route("PATCH", path, handler, **kwargs)

    def add_delete(self, path: str, handler, **kwargs: Any) -> None:
        self.add_route("DELETE", path, handler, **kwargs)

    def add_head(self, path: str, handler, **kwargs: Any) -> None:
        self.add_route("HEAD", path, handler, **kwargs)

    def add_view(self, path: str, handler, **kwargs: Any) -> None:
        self.add_route("*", path, handler, **kwargs)

    def add_static(self, prefix: str, path, **kwargs: Any) -> None:
        self._server.routes.static(prefix, path, **kwargs)

    def add_resource(self, path: str, **_: Any) -> _PendingResource:
        return _PendingResource(self._server.routes, path)

    def add_routes(self, definitions: Iterable) -> None:
        self._server.app.add_routes(definitions)

    def routes(self):
        app = self._server.bound_app
        return app.router.routes() if app is not None else []

    def resources(self):
        app = self._server.bound_app
        return app.router.resources() if app is not None else []

    @property
    def frozen(self) -> bool:
        """False while packs load (KJNodes checks it before adding routes)."""
        app = self._server.bound_app
        return app.router.frozen if app is not None else False

    def __getattr__(self, name: str) -> Any:
        app = self._server.bound_app if not name.startswith("_") else None
        if app is None:
            raise AttributeError(f"app.router.{name} is not available while node packs load")
        return getattr(app.router, name)


class _PackList:
    """A list a pack appends to (``app.middlewares``, ``app.on_startup``, …), recorded per pack."""

    def __init__(self, server: PromptServer, kind: str, signal: str | None = None) -> None:
        self._server, self._kind, self._signal = server, kind, signal
        self._values: list = []

    def append(self, value: Any) -> None:
        self._values.append(value)
        self._server._record(self._kind, value if self._signal is None else (self._signal, value))

    def extend(self, values: Iterable) -> None:
        for value in values:
            self.append(value)

    def insert(self, index: int, value: Any) -> None:
        """Appended all the same: a pack's middleware never runs before Weft's security checks."""
        self.append(value)

    def remove(self, value: Any) -> None:
        self._values.remove(value)

    def __iter__(self):
        return iter(list(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, value: Any) -> bool:
        return value in self._values


class PackApp:
    """``PromptServer.instance.app`` (see the module docstring). Attributes that are not additions
    are read from the real application once it exists; setting attributes on it changes nothing."""

    def __init__(self, server: PromptServer) -> None:
        self._server = server
        self.router = PackRouter(server)
        self.middlewares = _PackList(server, MIDDLEWARE)
        self.on_startup = _PackList(server, SIGNAL, "on_startup")
        self.on_shutdown = _PackList(server, SIGNAL, "on_shutdown")
        self.on_cleanup = _PackList(server, SIGNAL, "on_cleanup")
        self.on_response_prepare = _PackList(server, SIGNAL, "on_response_prepare")
        self._items: dict = {}

    def add_routes(self, definitions: Iterable) -> None:
        for definition in definitions:
            if isinstance(definition, (web.RouteDef, web.StaticDef)):
                self._server.routes.add(definition)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._items[key] = value
        self._server._record(ITEM, (key, value))

    def __getitem__(self, key: Any) -> Any:
        if key in self._items:
            return self._items[key]
        app = self._server.bound_app
        if app is None:
            raise KeyError(key)
        return app[key]

    def __contains__(self, key: Any) -> bool:
        app = self._server.bound_app
        return key in self._items or (app is not None and key in app)

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __getattr__(self, name: str) -> Any:
        app = self._server.bound_app if not name.startswith("_") else None
        if app is None:
            raise AttributeError(f"app.{name} is not available while node packs load")
        return getattr(app, name)
