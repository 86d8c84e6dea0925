"""The websocket hub: who is connected, and delivery of messages to them.

Execution never waits on a socket: every connection has a bounded outbox drained by its own
task, and a client whose outbox is full (it stopped reading) is dropped. Messages may be
published from any thread through :meth:`Hub.publish_threadsafe`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

# Binary frame event types (4-byte big-endian header), as ComfyUI sends them.
PREVIEW_IMAGE = 1
UNENCODED_PREVIEW_IMAGE = 2  # never on the wire: a (format, PIL image, max size) a node hands over
TEXT = 3  # 4-byte node id length, node id, UTF-8 text (progress text of a node)
PREVIEW_IMAGE_WITH_METADATA = 4


@dataclass(eq=False)
class Client:
    sid: str
    socket: web.WebSocketResponse
    outbox: asyncio.Queue
    feature_flags: dict = field(default_factory=dict)
    wants_logs: bool = False  # subscribed to live log entries (/internal/logs/subscribe)
    writer: asyncio.Task | None = None


def preview_frame(image_bytes: bytes, image_format: str, metadata: dict | None) -> bytes:
    """A binary preview message; with metadata (type 4) when the client asked for it."""
    if metadata is None:
        kind = 1 if image_format == "JPEG" else 2
        return struct.pack(">II", PREVIEW_IMAGE, kind) + image_bytes
    meta = json.dumps({**metadata, "image_type": f"image/{image_format.lower()}"}).encode()
    return struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(meta)) + meta + image_bytes


class Hub:
    def __init__(self, outbox_size: int = 256) -> None:
        self.outbox_size = outbox_size
        self._clients: dict[str, set[Client]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    # -- connections -------------------------------------------------------------------------------
    def add(self, sid: str, socket: web.WebSocketResponse) -> Client:
        client = Client(sid, socket, asyncio.Queue(self.outbox_size))
        client.writer = asyncio.get_running_loop().create_task(self._drain(client))
        self._clients.setdefault(sid, set()).add(client)
        return client

    async def remove(self, client: Client) -> None:
        peers = self._clients.get(client.sid)
        if peers is not None:
            peers.discard(client)
            if not peers:
                del self._clients[client.sid]
        if client.writer is not None and client.writer is not asyncio.current_task():
            client.writer.cancel()

    def connected(self, sid: str) -> bool:
        return sid in self._clients

    def count(self) -> int:
        return sum(len(peers) for peers in self._clients.values())

    async def _drain(self, client: Client) -> None:
        try:
            while True:
                message = await client.outbox.get()
                if isinstance(message, bytes):
                    await client.socket.send_bytes(message)
                else:
                    await client.socket.send_str(message)
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer went away; the read loop will clean up
            await self.remove(client)

    def _targets(self, sid: str | None) -> list[Client]:
        if sid is None:
            return [c for peers in self._clients.values() for c in peers]
        return list(self._clients.get(sid, ()))

    def _enqueue(self, client: Client, message: Any) -> None:
        try:
            client.outbox.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("dropping websocket client %s: it stopped reading", client.sid)
            asyncio.get_running_loop().create_task(self._drop(client))

    async def _drop(self, client: Client) -> None:
        await self.remove(client)
        await client.socket.close(code=1008, message=b"send buffer full")

    # -- publishing (event loop thread) -------------------------------------------------------------
    def send_json(self, event: str, data: Any, sid: str | None = None) -> None:
        text = json.dumps({"type": event, "data": data}, default=str)
        for client in self._targets(sid):
            self._enqueue(client, text)

    def send_json_to(self, client: Client, event: str, data: Any) -> None:
        self._enqueue(client, json.dumps({"type": event, "data": data}, default=str))

    def send_bytes(self, event: int, payload: bytes, sid: str | None = None) -> None:
        """A binary frame: ``event`` as a 4-byte big-endian header, then ``payload``."""
        frame = struct.pack(">I", event) + bytes(payload)
        for client in self._targets(sid):
            self._enqueue(client, frame)

    def sockets(self) -> dict[str, web.WebSocketResponse]:
        """One open socket per connected client id (a snapshot)."""
        return {sid: next(iter(peers)).socket for sid, peers in self._clients.items() if peers}

    def subscribe_logs(self, sid: str, enabled: bool) -> bool:
        """Switch live log entries on or off for a client id; False when it is not connected."""
        for client in self._clients.get(sid, ()):
            client.wants_logs = enabled
        return sid in self._clients

    def send_log_entry(self, entry: dict, size: dict) -> None:
        subscribers = [c for peers in self._clients.values() for c in peers if c.wants_logs]
        if subscribers:
            text = json.dumps({"type": "logs", "data": {"entries": [entry], "size": size}})
            for client in subscribers:
                self._enqueue(client, text)

    def reads_previews(self, sid: str | None) -> bool:
        """Whether a connection of ``sid`` declared that it reads preview frames."""
        return sid is not None and any(c.feature_flags.get("supports_preview_metadata")
                                       for c in self._clients.get(sid, ()))

    def send_preview(self, image_bytes: bytes, image_format: str, metadata: dict | None, sid: str | None) -> None:
        """A preview frame to the job's client; a job queued without one shows its previews to
        the clients that declared they read them, never to the others."""
        targets = self._targets(sid)
        if sid is None:
            targets = [c for c in targets if c.feature_flags.get("supports_preview_metadata")]
        for client in targets:
            wants_meta = bool(client.feature_flags.get("supports_preview_metadata"))
            self._enqueue(client, preview_frame(image_bytes, image_format, metadata if wants_meta else None))

    # -- publishing (any thread) ----------------------------------------------------------------------
    def call_threadsafe(self, fn, *args) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)
