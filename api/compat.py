"""ComfyUI's server object as node packs use it: ``server.PromptServer.instance``.

Packs do ``from server import PromptServer`` (server.py re-exports this module's names) and, at
import time, add HTTP routes (``PromptServer.instance.routes.get(...)``, ``.app.router.add_get``,
``.app.add_routes``, ``.app.router.add_static``), middlewares (``.app.middlewares.append``) and
prompt handlers (``add_on_prompt_handler``); while a node runs they send websocket messages
(``send_sync``). What Weft makes of each:

- Packs are imported before the aiohttp application exists, so ``.app`` is a ``PackApp`` (api.pack_app)
  that records what a pack adds; api.app.build_app applies it once the core routes are in place,
  then binds the real application (later additions are applied at once). A route that would
  replace a core route is refused and reported on the pack; pack middlewares always run after
  Weft's security middleware; a failing startup/shutdown hook of a pack is logged, not raised.
- Every addition remembers the pack being imported (:meth:`PromptServer.begin_pack` /
  :meth:`PromptServer.end_pack`, called by the pack loader); when a pack fails to import, what
  it added is taken back, so a broken pack serves nothing.
- ``send_sync`` may be called from any thread; messages reach the websocket hub through its event
  loop. Binary events (``BinaryEventTypes``) are encoded here: a node's preview image tuple
  becomes a preview frame, progress text a text frame.
- ``prompt_queue`` is a ``PromptQueue`` (api.prompt_queue) over Weft's job store and worker.
"""

from __future__ import annotations

import contextlib
import io
import logging
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from graph.context import current_context

from . import hub as frames
from .pack_app import ITEM, MIDDLEWARE, ON_PROMPT, ROUTE, SIGNAL, Addition, PackApp, PackRouteTable
from .prompt_queue import PromptQueue

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger(__name__)


class BinaryEventTypes:
    """Types of binary websocket frames (the 4-byte header), with ComfyUI's values."""

    PREVIEW_IMAGE = frames.PREVIEW_IMAGE
    UNENCODED_PREVIEW_IMAGE = frames.UNENCODED_PREVIEW_IMAGE
    TEXT = frames.TEXT
    PREVIEW_IMAGE_WITH_METADATA = frames.PREVIEW_IMAGE_WITH_METADATA


#: ``app[PROMPT_SERVER]``: the PromptServer bound to an application (read by /prompt).
PROMPT_SERVER: web.AppKey[PromptServer] = web.AppKey("weft_prompt_server")


# -- the server object -----------------------------------------------------------------------------
def _encode_image(image_data, default_size: int) -> tuple[bytes, str] | None:
    """``(format, PIL image, max size)`` → (bytes, "JPEG" | "PNG"); None if it is not an image."""
    if not isinstance(image_data, (tuple, list)) or len(image_data) != 3 or not hasattr(image_data[1], "save"):
        return None
    image_format, image, max_size = image_data
    image_format = "PNG" if str(image_format).upper() == "PNG" else "JPEG"
    size = int(max_size) if max_size else default_size
    if max(image.size) > size:
        image = image.copy()
        image.thumbnail((size, size))
    buffer = io.BytesIO()
    if image_format == "PNG":
        image.save(buffer, format="PNG", compress_level=1)
    else:
        image.convert("RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue(), image_format


def _running_node_metadata() -> dict | None:
    context = current_context()
    if context is None or not context.node_id:
        return None
    return {"node_id": context.node_id, "prompt_id": context.prompt_id, "display_node_id": context.display_node_id,
            "parent_node_id": None, "real_node_id": context.display_node_id}


class PromptServer:
    """``server.PromptServer``; ``PromptServer.instance`` is the one server.py builds."""

    instance: PromptServer | None = None

    def __init__(self, hub=None, *, loop=None, preview_size: int = 512, web_root=None) -> None:
        self.hub = hub  # api.hub.Hub (or an object with its call_threadsafe/send_* methods); None: drop
        self.loop = loop
        self.preview_size = preview_size
        self.web_root = str(web_root) if web_root is not None else None
        self.supports = ["custom_nodes_from_web"]
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self.last_prompt_id: str | None = None
        self.number = 0
        self.on_prompt_handlers: list[Callable[[dict], dict]] = []
        self.state: AppState | None = None  # once the application is built
        self.bound_app: web.Application | None = None
        self.refused: dict[str | None, dict[str, str]] = {}  # pack -> {addition: why it was refused}
        self._additions: list[Addition] = []
        self._pack: str | None = None
        self._pack_folders: dict[str, Path] = {}  # pack -> its file or folder, to know a caller
        self._apply: Callable[[Addition], tuple[str, str] | None] | None = None
        self.routes = PackRouteTable(self)
        self.app = PackApp(self)
        self.prompt_queue = PromptQueue(self)

    # -- packs: what each one added, taken back when its import fails ------------------------------
    def begin_pack(self, name: str, path: str | None = None) -> None:
        self._pack = name
        if path is not None:
            self._pack_folders[name] = Path(path).resolve()

    def end_pack(self, name: str, loaded: bool) -> None:
        """End the import of pack ``name``; when it failed, drop what it added."""
        self._pack = None
        if loaded:
            return
        dropped = [a for a in self._additions if a.pack == name]
        self._additions = [a for a in self._additions if a.pack != name]
        for addition in dropped:
            with contextlib.suppress(ValueError):  # the pack may have removed it itself
                if addition.kind == ROUTE:
                    self.routes.discard(addition.value)
                elif addition.kind == ON_PROMPT:
                    self.on_prompt_handlers.remove(addition.value)
                elif addition.kind == MIDDLEWARE:
                    self.app.middlewares.remove(addition.value)
                elif addition.kind == SIGNAL:
                    getattr(self.app, addition.value[0]).remove(addition.value[1])
                elif addition.kind == ITEM:
                    self.app._items.pop(addition.value[0], None)

    def additions(self) -> list[Addition]:
        return list(self._additions)

    def _pack_of_caller(self) -> str | None:
        """The pack whose code is making a call, read from the call stack: what a pack adds after
        its import (a hook, a thread, an import that outlived its timeout) is still its own."""
        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            source = Path(frame.f_code.co_filename)
            for name, folder in self._pack_folders.items():
                if source == folder or folder in source.parents:
                    return name
            frame = frame.f_back
        return None

    def _record(self, kind: str, value: Any) -> None:
        addition = Addition(self._pack or self._pack_of_caller(), kind, value)
        self._additions.append(addition)
        if self._apply is not None:
            self._refuse(addition, self._apply(addition))

    def _refuse(self, addition: Addition, refusal: tuple[str, str] | None) -> None:
        """Note a refused addition on the report of the pack that made it (``rejected``); one that
        no pack's code made is logged, and put on no pack's report."""
        if refusal is None:
            return
        what, why = refusal
        self.refused.setdefault(addition.pack, {})[what] = why
        log.warning("node pack %s: %s refused: %s", addition.pack or "(none: not a pack's code)", what, why)
        for report in (self.state.packs if self.state is not None else ()):
            if addition.pack is not None and report.name == addition.pack:
                report.rejected[what] = why

    def attach(self, app: web.Application, state, apply: Callable[[Addition], tuple[str, str] | None]) -> None:
        """Bind the real application: ``apply`` each recorded addition (it answers ``(what, why)``
        when it refuses one), and every later one as it comes."""
        self.bound_app = app
        self.state = state
        app[PROMPT_SERVER] = self
        if state is not None and self.web_root is None and state.options.web_root is not None:
            self.web_root = str(state.options.web_root)
        self._apply = apply
        for addition in self._additions:
            self._refuse(addition, apply(addition))

    # -- prompts -----------------------------------------------------------------------------------
    def add_on_prompt_handler(self, handler: Callable[[dict], dict]) -> None:
        """``handler(json_data) -> json_data`` runs on every POST /prompt body before validation."""
        self.on_prompt_handlers.append(handler)
        self._record(ON_PROMPT, handler)

    def trigger_on_prompt(self, json_data: dict) -> dict:
        """Run the on-prompt handlers in turn; one that raises or returns no dict is logged and skipped."""
        for handler in list(self.on_prompt_handlers):
            try:
                result = handler(json_data)
            except Exception:
                log.exception("an on-prompt handler (%s) failed; skipped", getattr(handler, "__qualname__", handler))
                continue
            if isinstance(result, dict):
                json_data = result
            else:
                log.warning("an on-prompt handler (%s) returned %s, not the request; skipped",
                            getattr(handler, "__qualname__", handler), type(result).__name__)
        return json_data

    def observe(self, send: Callable[[str, Any, str | None], None]) -> Callable[[str, Any, str | None], None]:
        """Wrap the worker's ``send`` so that ``client_id``, ``last_prompt_id`` and ``last_node_id``
        follow the running job, as ComfyUI's executor sets them."""

        def observed(event: str, data: Any, client_id: str | None) -> None:
            if event == "execution_start":
                self.client_id = client_id
                self.last_prompt_id = data.get("prompt_id")
            elif event == "executing":
                self.last_node_id = data.get("node")
            send(event, data, client_id)

        return observed

    # -- the queue ---------------------------------------------------------------------------------
    def get_queue_info(self) -> dict:
        return {"exec_info": {"queue_remaining": self.prompt_queue.get_tasks_remaining()}}

    def queue_updated(self) -> None:
        if self.state is not None:
            self.state.worker.broadcast_status()

    @property
    def sockets(self) -> dict:
        return self.hub.sockets() if self.hub is not None else {}

    # -- messages ----------------------------------------------------------------------------------
    def _post(self, fn_name: str, *args: Any) -> None:
        if self.hub is not None:
            self.hub.call_threadsafe(getattr(self.hub, fn_name), *args)

    def send_sync(self, event, data: Any, sid: str | None = None) -> None:
        """Send a websocket message from any thread (ComfyUI's ``send_sync``).

        A text ``event`` sends ``{"type": event, "data": data}``. Binary events:
        ``UNENCODED_PREVIEW_IMAGE`` (or ``PREVIEW_IMAGE``) with ``(format, PIL image, max size)``;
        ``PREVIEW_IMAGE_WITH_METADATA`` with ``((format, image, max size), metadata)``; any event
        number with ``bytes`` sends those bytes after the 4-byte event header."""
        if event in (BinaryEventTypes.UNENCODED_PREVIEW_IMAGE, BinaryEventTypes.PREVIEW_IMAGE) and \
                not isinstance(data, (bytes, bytearray)):
            self._send_image(data, _running_node_metadata(), sid)
        elif event == BinaryEventTypes.PREVIEW_IMAGE_WITH_METADATA and isinstance(data, (tuple, list)) \
                and len(data) == 2:
            image_data, metadata = data
            self._send_image(image_data, dict(metadata or {}) or _running_node_metadata(), sid)
        elif isinstance(data, (bytes, bytearray)) and isinstance(event, int):
            self._post("send_bytes", event, bytes(data), sid)
        else:
            self._post("send_json", event, data, sid)

    def _send_image(self, image_data, metadata: dict | None, sid: str | None) -> None:
        encoded = _encode_image(image_data, self.preview_size)
        if encoded is None:
            log.warning("send_sync: a preview must be (format, PIL image, max size); dropped")
            return
        self._post("send_preview", encoded[0], encoded[1], metadata, sid)

    def send_progress_text(self, text: str | bytes, node_id: str, sid: str | None = None) -> None:
        """Text shown on a node while it runs: a TEXT frame (node id length, node id, UTF-8 text)."""
        body = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        node = str(node_id).encode("utf-8")
        self.send_sync(BinaryEventTypes.TEXT, struct.pack(">I", len(node)) + node + body, sid)

    async def send(self, event, data: Any, sid: str | None = None) -> None:
        self.send_sync(event, data, sid)

    async def send_json(self, event: str, data: Any, sid: str | None = None) -> None:
        self._post("send_json", event, data, sid)

    async def send_bytes(self, event: int, data: bytes, sid: str | None = None) -> None:
        self._post("send_bytes", event, bytes(data), sid)

    async def send_image(self, image_data, sid: str | None = None) -> None:
        self._send_image(image_data, None, sid)

    async def send_image_with_metadata(self, image_data, metadata: dict | None = None, sid: str | None = None) -> None:
        self._send_image(image_data, metadata, sid)

    @staticmethod
    def encode_bytes(event: int, data: bytes) -> bytes:
        return struct.pack(">I", event) + bytes(data)
