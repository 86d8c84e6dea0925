"""The worker: one thread that takes jobs from the store, runs them, and writes their history.

The event loop of the server never waits on it: the worker reports through ``send(event, data,
client_id)``, which the server makes thread-safe. Requests from other threads (interrupt, free)
are flags the worker reads between jobs or that the executor checks between nodes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .executor import Executor
from .jobs import Job, JobStore

log = logging.getLogger(__name__)

Send = Callable[[str, dict, "str | None"], None]

#: Events that concern only the client that submitted the job; the rest are broadcast.
BROADCAST_EVENTS = ("execution_interrupted",)


def ends_job(event: str, data: dict) -> bool:
    """The job's last message (``executing`` with no node): clients read /history when it comes,
    so it is sent only after the history entry is written, as ComfyUI orders them."""
    return event == "executing" and data.get("node") is None


class QueueStatus:
    """ComfyUI's ``status`` message, for the runners (``Worker`` here, ``graph.pool.WorkerPool``):
    ``queue_remaining`` counts a job from its submission until its history entry is written (from
    the store, so a job claimed but not yet running, or run but not yet recorded, still counts)."""

    store: JobStore
    _send: Send

    def queue_remaining(self) -> int:
        return self.store.count_unfinished()

    def status_message(self) -> dict:
        return {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}}

    def broadcast_status(self) -> None:
        self._send("status", self.status_message(), None)


def history_entry(job: Job, status: str, outputs: dict, messages: list, meta: dict) -> dict:
    return {"prompt": job.queue_item(), "outputs": outputs,
            "status": {"status_str": "success" if status == "success" else "error",
                       "completed": status == "success", "messages": messages},
            "meta": meta}


class Worker(QueueStatus):
    def __init__(self, store: JobStore, executor: Executor, send: Send,
                 on_free: Callable[[bool, bool], None] | None = None) -> None:
        self.store = store
        self.executor = executor
        self._send = send
        self._on_free = on_free
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._free_request = (False, False)
        self.current_job: Job | None = None
        self.current_node: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        for job, message in self.store.recover():
            log.error("job %s failed: %s", job.prompt_id, message)
            data: dict[str, Any] = {"prompt_id": job.prompt_id, "node_id": None, "node_type": None, "executed": [],
                    "exception_message": message, "exception_type": "WeftCrashRecovery", "traceback": [],
                    "current_inputs": {}, "current_outputs": [], "timestamp": int(time.time() * 1000)}
            self.store.finish(job.prompt_id, history_entry(job, "error", {}, [["execution_error", data]], {}))
        self._thread = threading.Thread(target=self._loop, name="weft-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.executor.interrupt.request()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- requests from other threads --------------------------------------------------------------
    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Interrupt the running job (only if it is ``prompt_id``, when given)."""
        job = self.current_job
        if job is None or (prompt_id is not None and job.prompt_id != prompt_id):
            return False
        self.executor.interrupt.request()
        return True

    def request_free(self, unload_models: bool, free_memory: bool) -> None:
        with self._lock:
            old_unload, old_free = self._free_request
            self._free_request = (old_unload or unload_models, old_free or free_memory)
        if self.current_job is None:
            self._apply_free()

    # -- the loop ----------------------------------------------------------------------------------
    def _apply_free(self) -> None:
        with self._lock:
            unload, free = self._free_request
            self._free_request = (False, False)
        if free:
            self.executor.reset_caches()
        if (unload or free) and self._on_free is not None:
            self._on_free(unload, free)

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.store.claim_next(timeout=0.5)
            if job is None:
                continue
            if self._stop.is_set():  # shutting down: leave it for the next start
                break
            self._run(job)
            self._apply_free()

    def _run(self, job: Job) -> None:
        self.current_job = job
        self.broadcast_status()

        held: list[tuple[str, dict]] = []

        def emit(event: str, data: dict) -> None:
            if event == "executing":
                self.current_node = data.get("node")
            if ends_job(event, data):
                held.append((event, data))
                return
            self._send(event, data, None if event in BROADCAST_EVENTS else job.client_id)

        started = time.monotonic()
        try:
            outcome = self.executor.execute(job.prompt_id, job.prompt, job.outputs, job.extra_data, emit=emit)
            entry = history_entry(job, outcome.status, outcome.outputs, outcome.messages, outcome.meta)
            # One line per job in the server log (and the log panels that follow it), as ComfyUI's.
            log.info("job %s: %s in %.2f s", job.prompt_id, outcome.status, time.monotonic() - started)
        except Exception as exc:  # a bug in the executor itself: the job fails, the worker lives on
            log.exception("executor failed on job %s", job.prompt_id)
            entry = history_entry(job, "error", {}, [["execution_error", {
                "prompt_id": job.prompt_id, "exception_message": str(exc),
                "exception_type": type(exc).__name__}]], {})
        self.store.finish(job.prompt_id, entry)
        for event, data in held:
            self._send(event, data, job.client_id)
        self.current_job = None
        self.current_node = None
        self.broadcast_status()

    def running(self) -> list[tuple[Job, str | None]]:
        job = self.current_job
        return [(job, self.current_node)] if job is not None else []

    def running_items(self) -> list[list]:
        return [job.queue_item() for job, _ in self.running()]

    def running_item(self) -> Any:
        job = self.current_job
        return job.queue_item() if job is not None else None

    def workers(self) -> list[dict]:
        job = self.current_job
        return [{"id": 0, "state": "running" if job else "idle", "where": "in the server process",
                 "prompt_id": job.prompt_id if job else None, "node": self.current_node}]
