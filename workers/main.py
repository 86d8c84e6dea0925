"""A worker process: it runs the jobs the server hands it (graph.pool supervises it).

``python -m workers.main --worker-id N --channel-fd FD <the server's flags>``: builds its own node
runtime from the same flags as the server (folders, engine, built-in nodes, node packs), then
serves the server over the channel (the message list is in graph.pool). Its main thread runs jobs;
a reader thread takes the server's messages, so an interrupt reaches a running job at once. When
the server goes away (the channel closes) the worker ends.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import queue
import sys
import threading
import traceback
from multiprocessing.connection import Connection

# Before torch loads (server.py's module sets the same OpenMP policy for the same reason).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import server  # noqa: E402  (the flags and the builders are the server's)
from api.compat import PromptServer  # noqa: E402
from api.previews import encode_preview  # noqa: E402
from graph.cache import OutputCache  # noqa: E402
from graph.executor import Executor  # noqa: E402

log = logging.getLogger("weft.worker")


class ChannelHub:
    """The websocket hub as a worker's PromptServer sees it: every call goes to the server, whose
    hub sends it (workers.launch.hub_forwarder)."""

    def __init__(self, post) -> None:
        self._post = post

    def call_threadsafe(self, fn, *args) -> None:
        self._post(("hub", fn.__name__, list(args)))

    def send_json(self, *args) -> None:
        self._post(("hub", "send_json", list(args)))

    def send_bytes(self, *args) -> None:
        self._post(("hub", "send_bytes", list(args)))

    def send_preview(self, *args) -> None:
        self._post(("hub", "send_preview", list(args)))

    def sockets(self) -> dict:
        return {}  # the sockets live in the server


class WorkerProcess:
    def __init__(self, args: argparse.Namespace, connection: Connection) -> None:
        self.args = args
        self.connection = connection
        self._send_lock = threading.Lock()
        self.inbox: queue.Queue = queue.Queue()
        self.prompt_server = PromptServer(ChannelHub(self.post), loop=asyncio.new_event_loop(),
                                          preview_size=args.preview_size)
        PromptServer.instance = self.prompt_server  # what packs reach as server.PromptServer.instance
        self.runtime = server.build_node_runtime(args, self.prompt_server)
        cache = OutputCache(max_entries=0 if args.cache_none else args.cache_lru,
                            min_free_ram_bytes=int(args.cache_min_free_ram * 1024 ** 3))
        self.executor = Executor(self.runtime.registry, cache, services=self.runtime.services,
                                 interrupt=self.runtime.interrupt, max_expanded_nodes=args.max_prompt_nodes)

    def post(self, message: tuple) -> None:
        """Send to the server from any thread (pack threads too)."""
        with self._send_lock:
            self.connection.send(message)

    def _read(self) -> None:
        """The server's messages: an interrupt acts at once, the rest wait for the main thread."""
        while True:
            try:
                message = self.connection.recv()
            except (EOFError, OSError):
                os._exit(0)  # the server is gone: so is its worker
            if message[0] == "interrupt":
                self.executor.interrupt.request()
            else:
                self.inbox.put(message)

    def serve(self) -> None:
        engine = self.runtime.services.engine
        self.post(("ready", {"pid": os.getpid(), "compute": engine.compute.reason,
                             "memory": engine.options.mode.value}))
        threading.Thread(target=self._read, name="weft-worker-reader", daemon=True).start()
        while True:
            message = self.inbox.get()
            if message[0] == "run":
                self.run(message[1])
            elif message[0] == "free":
                _, unload, free = message
                if free:
                    self.executor.reset_caches()
                    engine.free_memory()
                elif unload:
                    engine.unload_all()
            elif message[0] == "stop":
                return

    def run(self, job: dict) -> None:
        self.executor.interrupt.clear()
        size = self.args.preview_size
        emit = self.prompt_server.observe(lambda event, data, client_id: self.post(("event", event,
                                                                                    _wire(event, data, size))))
        client_id = job.get("client_id")
        try:
            outcome = self.executor.execute(job["prompt_id"], job["prompt"], job["outputs"], job["extra_data"],
                                            emit=lambda event, data: emit(event, data, client_id))
            result = {"status": outcome.status, "outputs": outcome.outputs, "messages": outcome.messages,
                      "meta": outcome.meta}
        except BaseException as exc:  # the executor's own bug: this job fails, the worker goes on
            log.exception("the executor failed on job %s", job["prompt_id"])
            data = {"prompt_id": job["prompt_id"], "exception_message": str(exc),
                    "exception_type": type(exc).__name__, "traceback": traceback.format_exc().splitlines()}
            result = {"status": "error", "outputs": {}, "messages": [["execution_error", data]], "meta": {}}
        self.post(("done", result))


def _wire(event: str, data: dict, preview_size: int) -> dict:
    """An event as it crosses to the server: a preview's PIL image encoded (JPEG/PNG bytes)."""
    if event == "preview" and data.get("image") is not None:
        encoded = encode_preview(data["image"], preview_size)
        data = {**data, "image": (encoded[1], encoded[0]) if encoded else None}
    return data


def run_worker(worker_id: int, server_argv: list[str], connection: Connection) -> None:
    """Be worker ``worker_id`` of a server started with ``server_argv``, over ``connection``
    (also what a Ray actor calls: workers.ray_launch)."""
    args = server.parse_args(server_argv)
    level = getattr(logging, str(args.verbose).upper(), logging.INFO)
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s worker {worker_id} %(name)s: %(message)s",
                        force=True)
    sys.modules.setdefault("server", server)
    WorkerProcess(args, connection).serve()


def main(argv: list[str] | None = None) -> None:
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--worker-id", type=int, required=True)
    own.add_argument("--channel-fd", type=int, required=True)
    mine, rest = own.parse_known_args(sys.argv[1:] if argv is None else argv)
    run_worker(mine.worker_id, rest, Connection(mine.channel_fd))


if __name__ == "__main__":
    main()
