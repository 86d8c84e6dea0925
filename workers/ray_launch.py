"""Workers as Ray actors (``--ray auto`` starts a local Ray instance, ``--ray ADDRESS`` joins a cluster).

Ray places and starts the worker processes (one per GPU, or ``--workers`` CPU workers); everything
else is as on one machine. Each actor runs the very worker loop of ``workers.main`` and connects
back to the head over TCP (an authenticated multiprocessing connection on a port the head opened),
so the queue, supervision, model affinity and the websocket stay on the head (graph.pool). An actor
that dies — its node lost, ``ray.kill`` — closes its connection: the crash rule applies and the
pool asks for a new actor.

What Ray must see: this repository and the same model/input/output folders at the same paths on
every node (a shared filesystem); docs/scale-out.md says what was tried here.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from multiprocessing.connection import Connection, Listener
from pathlib import Path

import ray

from workers.launch import ConnectionChannel

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
ACCEPT_TIMEOUT = 600.0  # seconds for an actor to be placed, started and connected


@ray.remote(max_restarts=0)
class RayWorker:
    """One worker process, placed by Ray."""

    def serve(self, worker_id: int, server_argv: list[str], address: tuple, authkey: bytes) -> None:
        from multiprocessing.connection import Client

        from workers.main import run_worker

        connection = Client(address, authkey=authkey)
        connection.send(("hello", worker_id))
        run_worker(worker_id, server_argv, connection)


class RayChannel(ConnectionChannel):
    """A worker actor and the connection it opened to the head."""

    def __init__(self, actor, done_ref, connection: Connection) -> None:
        super().__init__(connection, f"Ray actor {actor._actor_id.hex()[:12]}")
        self.actor = actor
        self.done_ref = done_ref

    def alive(self) -> bool:
        finished, _ = ray.wait([self.done_ref], timeout=0)
        return not finished

    def exit_reason(self) -> str:
        if self.alive():
            return "still running"
        try:
            ray.get(self.done_ref, timeout=1)
        except Exception as exc:  # ray's ActorDiedError and kin: the reason is the message
            return f"Ray actor ended: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return "Ray actor returned"

    def kill(self, grace: float = 0.0) -> None:
        if grace > 0:
            ray.wait([self.done_ref], timeout=grace)
        ray.kill(self.actor, no_restart=True)
        self.connection.close()


class _Arrivals:
    """Accepts the actors' connections on the head and hands each to the launch that waits for it
    (actors may connect in any order)."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self._waiting: dict[int, Connection] = {}
        self._arrived = threading.Condition()
        threading.Thread(target=self._accept, name="weft-ray-accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection = self.listener.accept()
                if not connection.poll(30):
                    raise EOFError("no hello")
                kind, worker_id = connection.recv()
                if kind != "hello":
                    raise EOFError(f"said {kind!r}")
            except (OSError, EOFError, ValueError) as exc:  # a stranger, or a worker that died at once
                log.warning("refused a worker connection: %s", exc)
                continue
            with self._arrived:
                old = self._waiting.pop(worker_id, None)
                if old is not None:
                    old.close()
                self._waiting[worker_id] = connection
                self._arrived.notify_all()

    def wait_for(self, worker_id: int, done_ref, timeout: float) -> Connection:
        """The connection of worker ``worker_id``; OSError when its actor ended or took too long."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while worker_id not in self._waiting:
                if time.monotonic() > deadline or ray.wait([done_ref], timeout=0)[0]:
                    raise OSError(f"worker {worker_id} did not connect")
                self._arrived.wait(1.0)
            return self._waiting.pop(worker_id)


def ray_launcher(address: str, server_argv: list[str], workers: int | None):
    """``(launch, size, close)``: how to start worker ``i`` as a Ray actor, how many workers to run
    (``workers``, or one per GPU of the cluster when it has GPUs and ``workers`` is None), and how
    to leave Ray when the server stops (a local instance ends with it)."""
    ray.init(address=None if address == "auto" else address,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}}, include_dashboard=False,
             logging_level=logging.WARNING)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    size = workers if workers else (gpus or 1)
    host = "127.0.0.1" if address == "auto" else ray.util.get_node_ip_address()
    authkey = secrets.token_bytes(32)
    arrivals = _Arrivals(Listener((host, 0), authkey=authkey))

    def launch(worker_id: int) -> RayChannel:
        options = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        actor = RayWorker.options(name=f"weft-worker-{worker_id}-{os.getpid()}", **options).remote()
        done_ref = actor.serve.remote(worker_id, server_argv, arrivals.listener.address, authkey)
        try:
            connection = arrivals.wait_for(worker_id, done_ref, ACCEPT_TIMEOUT)
        except OSError:
            ray.kill(actor, no_restart=True)
            raise
        return RayChannel(actor, done_ref, connection)

    log.info("Ray: %s, %d worker(s) (%s)", address, size, f"{gpus} GPU(s)" if gpus else "CPU")
    return launch, size, ray.shutdown
