"""Starting local worker processes and talking to them.

A worker is ``python -m workers.main`` with the server's own flags; it gets one end of a socket
pair (``--channel-fd``), which only the two processes hold, so nothing else can talk to it. What
packs send through ``PromptServer.instance`` in a worker comes back as ``("hub", method, args)``
and is sent from the server's websocket hub (``hub_forwarder``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Hub methods a worker may call on the server's websocket hub (api.hub.Hub), and nothing else.
HUB_METHODS = frozenset({"send_json", "send_bytes", "send_preview"})
#: Server flags that concern the server alone (each with at most one value); a worker is started
#: without them.
SERVER_ONLY_FLAGS = frozenset({"--listen", "--port", "--access-token", "--enable-cors-header", "--allow-host",
                               "--front-end", "--front-end-root", "--workers", "--ray"})


def worker_argv(argv: list[str]) -> list[str]:
    """The server's command line as the workers get it: the flags about folders, nodes, models and
    memory, without the server's own."""
    out: list[str] = []
    items = list(argv)
    while items:
        item = items.pop(0)
        flag = item.split("=", 1)[0]
        if flag not in SERVER_ONLY_FLAGS:
            out.append(item)
        elif "=" not in item and items and not items[0].startswith("-"):
            items.pop(0)  # its value
    return out


class ConnectionChannel:
    """Messages to and from a worker over a multiprocessing connection (graph.pool.Channel's
    message half; subclasses say how the worker lives and ends)."""

    def __init__(self, connection: Connection, description: str) -> None:
        self.connection = connection
        self.description = description

    def send(self, message: tuple) -> None:
        self.connection.send(message)

    def poll(self, timeout: float) -> bool:
        try:
            return self.connection.poll(timeout)
        except (OSError, EOFError):
            return False

    def recv(self) -> tuple:
        return self.connection.recv()


class ProcessChannel(ConnectionChannel):
    """A local worker process and our end of its socket pair."""

    def __init__(self, process: subprocess.Popen, connection: Connection) -> None:
        super().__init__(connection, f"process {process.pid}")
        self.process = process

    def alive(self) -> bool:
        return self.process.poll() is None

    def exit_reason(self) -> str:
        code = self.process.poll()
        if code is None:
            return "still running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def kill(self, grace: float = 0.0) -> None:
        if grace > 0:
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            log.error("worker process %d did not end after SIGKILL", self.process.pid)
        self.connection.close()


def threads_per_worker(workers: int) -> int:
    """CPU threads for each of ``workers`` processes on this machine: the cores shared out, so
    that workers side by side do not fight over them (one worker keeps torch's own default)."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def local_launcher(argv: list[str], workers: int = 1):
    """``launch(worker_id)``: a new worker process on this machine, with the server's flags."""
    # The server's working directory, so relative paths among its flags mean the same; the
    # repository on the module path, so `-m workers.main` is found from there.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    if workers > 1:
        env.setdefault("OMP_NUM_THREADS", str(threads_per_worker(workers)))

    def launch(worker_id: int) -> ProcessChannel:
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "workers.main", "--worker-id", str(worker_id),
                 "--channel-fd", str(theirs.fileno()), *argv],
                # its own session: a Ctrl+C in the server's terminal is the server's to handle
                cwd=os.getcwd(), pass_fds=(theirs.fileno(),), start_new_session=True, env=env)
        finally:
            theirs.close()
        return ProcessChannel(process, Connection(ours.detach()))

    return launch


def hub_forwarder(hub):
    """What the pool calls with a worker's ``("hub", method, args)``: that hub method, on the
    server's event loop; any other method name is refused (logged)."""

    def forward(method: str, args: tuple) -> None:
        if method not in HUB_METHODS:
            log.warning("a worker asked for hub method %r; refused", method)
            return
        hub.call_threadsafe(getattr(hub, method), *args)

    return forward
