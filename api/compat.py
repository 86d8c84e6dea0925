"""The part of ComfyUI's server object that node packs use: ``PromptServer.instance.routes`` to
add HTTP routes, and ``send_sync`` to push websocket messages.

Packs do ``from server import PromptServer``; server.py re-exports this class. Routes a pack adds
are registered after the core routes and may not replace one (see api.app.register_pack_routes).
"""

from __future__ import annotations

from typing import Any, Callable

from aiohttp import web


class PromptServer:
    instance: "PromptServer | None" = None

    def __init__(self, send: Callable[[str, Any, str | None], None]) -> None:
        self.routes = web.RouteTableDef()
        self._send = send
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self.supports = ["custom_nodes_from_web"]

    def send_sync(self, event: str, data: Any, sid: str | None = None) -> None:
        self._send(event, data, sid)

    def add_on_prompt_handler(self, handler) -> None:  # accepted for compatibility; Weft does not rewrite prompts
        pass
