"""Connections that never finish a request cannot take the server's sockets.

aiohttp holds a connection that has not sent its request headers for as long as the client likes,
and before any check of ours runs (the token is read from those headers). Thousands of such
connections exhaust the process's file descriptors and nobody else gets in. Here every connection
must finish its first request's headers within ``header_timeout`` seconds, and at most
``max_waiting_per_client`` connections of one address (``max_waiting`` in all) may be waiting for
them: past that, the client's oldest waiting connection is closed to admit the new one, so a
client that sends its request at once always gets through. Refusals are logged at most once per
``LOG_EVERY`` seconds, so a flood cannot fill the disk with log lines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web, web_protocol, web_server

log = logging.getLogger(__name__)

LOG_EVERY = 10.0


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    max_waiting_per_client: int = 64
    max_waiting: int = 512


class _Waiting:
    """Connections that have not sent a complete request yet, oldest first, per address."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.by_client: dict[str, OrderedDict] = {}
        self.total = 0
        self.closed = 0
        self._last_log = 0.0

    def add(self, client: str, handler: GuardedRequestHandler) -> None:
        queue = self.by_client.setdefault(client, OrderedDict())
        queue[id(handler)] = handler
        self.total += 1
        while len(queue) > self.limits.max_waiting_per_client:
            self._evict(queue)
        while self.total > self.limits.max_waiting:
            self._evict(max(self.by_client.values(), key=len))

    def discard(self, client: str, handler: GuardedRequestHandler) -> None:
        queue = self.by_client.get(client)
        if queue is not None and queue.pop(id(handler), None) is not None:
            self.total -= 1
            if not queue:
                del self.by_client[client]

    def _evict(self, queue: OrderedDict) -> None:
        for key, handler in list(queue.items()):
            if handler.started_request():  # no longer waiting: forget it
                queue.pop(key)
                self.total -= 1
                continue
            queue.pop(key)
            self.total -= 1
            handler.close_waiting("too many connections waiting to send a request")
            return

    def note_closed(self, why: str) -> None:
        self.closed += 1
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY:
            log.warning("closed %d connection(s) that sent no request (%s)", self.closed, why)
            self.closed, self._last_log = 0, now


class GuardedRequestHandler(web_protocol.RequestHandler):
    """aiohttp's request handler, with a deadline for the first request's headers."""

    __slots__ = ("_waiting", "_client", "_deadline")

    def __init__(self, manager, *, waiting: _Waiting, **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self._waiting = waiting
        self._client = ""
        self._deadline: asyncio.TimerHandle | None = None

    def started_request(self) -> bool:
        return self._request_count > 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._client = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        self._deadline = asyncio.get_running_loop().call_later(self._waiting.limits.header_timeout, self._expire)
        self._waiting.add(self._client, self)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.started_request():
            self._forget()

    def _forget(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
            self._waiting.discard(self._client, self)

    def _expire(self) -> None:
        self._deadline = None
        if not self.started_request():
            self._waiting.discard(self._client, self)
            self.close_waiting(f"no request headers within {self._waiting.limits.header_timeout:g} s")

    def close_waiting(self, why: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
            self._waiting.note_closed(why)


class GuardedServer(web_server.Server):
    def __init__(self, *args, limits: ConnectionLimits, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._waiting = _Waiting(limits)

    def __call__(self) -> GuardedRequestHandler:
        return GuardedRequestHandler(self, waiting=self._waiting, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """``web.AppRunner`` whose connections follow :class:`ConnectionLimits`."""

    def __init__(self, app: web.Application, *, limits: ConnectionLimits, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits

    async def _make_server(self) -> web_server.Server:
        plain = await super()._make_server()
        # The same request handler and settings as aiohttp's, in the guarded server.
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation, loop=plain._loop,
                             limits=self._limits, **plain._kwargs)


def raise_file_limit() -> None:
    """Let the process hold as many sockets as the system allows it (the soft limit up to the hard
    one): 1024, a common default, is too few for a server under load."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))
    except (ImportError, ValueError, OSError) as exc:  # not on this platform, or not allowed
        log.info("the open-file limit stays as it is: %s", exc)


def serve(app: web.Application, hosts: list[str], port: int, loop: asyncio.AbstractEventLoop,
          limits: ConnectionLimits) -> None:
    """Serve ``app`` until SIGINT/SIGTERM (what ``web.run_app`` does, with guarded connections)."""
    runner = GuardedRunner(app, limits=limits, handle_signals=True)
    asyncio.set_event_loop(loop)

    async def start() -> None:
        await runner.setup()
        for host in hosts:
            await web.TCPSite(runner, host, port).start()

    try:
        loop.run_until_complete(start())
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        loop.run_until_complete(runner.cleanup())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
