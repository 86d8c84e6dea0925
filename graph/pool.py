"""Jobs run in worker processes that the server supervises.

The server process keeps HTTP, the websocket, validation and the durable queue; a worker process
(started by a *launcher*: a local subprocess, or a Ray actor) owns the executor, the models and the
memory manager. Nothing a node does can stop the server: a worker that dies — a crash, the kernel's
OOM killer, ``os._exit`` in a node — is started again, and its job is retried once and then failed
(the job store's crash rule). A job that runs past ``job_timeout``, or does not stop within
``interrupt_grace`` seconds of an interrupt, is stopped by ending its worker.

One thread per worker runs that worker's life: start it, wait for its job, relay its messages, and
notice its end. A dispatcher thread hands each pending job to an idle worker, preferring one that
ran the job's model files last (model affinity), else the one that has run the fewest jobs.

Messages between the server and a worker are tuples (see ``worker.py`` for the worker's side):
server → worker ``("run", job)``, ``("interrupt",)``, ``("free", unload, free)``, ``("stop",)``;
worker → server ``("ready", info)``, ``("event", name, data)``, ``("hub", method, args)``,
``("done", outcome)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .jobs import MAX_ATTEMPTS, Job, JobStore
from .worker import BROADCAST_EVENTS, QueueStatus, Send, ends_job, history_entry

log = logging.getLogger(__name__)

#: Input values that name a model file (what model affinity matches on).
MODEL_FILE_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft")
START_TIMEOUT = 600.0  # seconds a worker may take to start (it imports torch and every node pack)
FINISH_ATTEMPTS = 3  # writes of a job's history entry before it is recorded as a job error instead
LOOK_AHEAD = 8  # pending jobs the dispatcher considers for model affinity
MAX_SKIPS = 4  # times the head of the queue may be passed over for a job whose models are loaded


class WorkerLost(Exception):
    """The worker's channel closed or its process ended."""


class Channel(Protocol):
    """One worker's link: messages both ways, and its process."""

    description: str

    def send(self, message: tuple) -> None: ...

    def poll(self, timeout: float) -> bool: ...

    def recv(self) -> tuple: ...

    def alive(self) -> bool: ...

    def exit_reason(self) -> str: ...

    def kill(self, grace: float = 0.0) -> None:
        """End the worker: wait up to ``grace`` seconds for it to end by itself, then force it."""


Launcher = Callable[[int], Channel]


def job_models(prompt: dict) -> frozenset[str]:
    """The model files a prompt names (inputs whose value is a model file name)."""
    names = set()
    for node in prompt.values():
        for value in (node.get("inputs") or {}).values() if isinstance(node, dict) else ():
            if isinstance(value, str) and value.lower().endswith(MODEL_FILE_EXTENSIONS):
                names.add(value)
    return frozenset(names)


def choose_placement(window: list[Job], idle: list[WorkerSlot], skipped: dict[str, int]):
    """Which of the first pending jobs goes to which idle worker (model affinity).

    A job goes to an idle worker that last ran its model files; when none does, the head of the
    queue goes to the idle worker with the most of them, then the least used. A job further back
    may go first to an idle worker that has its models (sparing a model load), but the head of
    the queue is passed over at most ``MAX_SKIPS`` times, so the queue order still holds."""
    head = window[0]
    if skipped.get(head.prompt_id, 0) < MAX_SKIPS:
        for job in window:
            wanted = job_models(job.prompt)
            matching = [s for s in idle if s.models & wanted]
            if matching:
                if job is not head:
                    skipped[head.prompt_id] = skipped.get(head.prompt_id, 0) + 1
                return job, max(matching, key=lambda s: (len(s.models & wanted), -s.jobs_run, -s.id))
    skipped.pop(head.prompt_id, None)
    wanted = job_models(head.prompt)
    return head, max(idle, key=lambda s: (len(s.models & wanted), -s.jobs_run, -s.id))


@dataclass
class WorkerSlot:
    """One worker as the server sees it."""

    id: int
    state: str = "starting"  # starting | idle | running | stopped
    channel: Channel | None = None
    pid: int | None = None
    job: Job | None = None
    node: str | None = None
    started: float = 0.0  # when the running job started (monotonic)
    interrupted_at: float | None = None
    restarts: int = 0
    jobs_run: int = 0
    models: frozenset[str] = frozenset()  # model files of the last job it ran
    pending_free: tuple[bool, bool] = (False, False)
    assigned: Job | None = None
    held_events: list = field(default_factory=list)  # the running job's last message, sent after its history
    affinity: bool = False
    info: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"id": self.id, "state": self.state, "pid": self.pid,
                "prompt_id": self.job.prompt_id if self.job else None, "node": self.node,
                "restarts": self.restarts, "jobs_run": self.jobs_run, "models": sorted(self.models),
                "where": self.channel.description if self.channel else None, **self.info}


class WorkerPool(QueueStatus):
    """The server's workers (the interface of graph.worker.Worker, which runs jobs in-process)."""

    def __init__(self, store: JobStore, send: Send, launcher: Launcher, *, size: int = 1,
                 job_timeout: float | None = None, interrupt_grace: float = 10.0,
                 hub_call: Callable[[str, tuple], None] | None = None,
                 on_stop: Callable[[], None] | None = None) -> None:
        self.store = store
        self._send = send
        self._launch = launcher
        self.job_timeout = job_timeout
        self.interrupt_grace = interrupt_grace
        self._hub_call = hub_call
        self._on_stop = on_stop  # e.g. leave the Ray cluster
        self.slots = [WorkerSlot(i) for i in range(max(1, size))]
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        for job, message in self.store.recover():
            log.error("job %s failed: %s", job.prompt_id, message)
            self._record(job, _crash_entry(job, message, "WeftCrashRecovery"))
        for slot in self.slots:
            self._spawn(self._serve, slot, name=f"weft-worker-{slot.id}")
        self._spawn(self._dispatch, name="weft-dispatcher")

    def _spawn(self, target, *args, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        for slot in self.slots:
            if slot.channel is not None:
                try:
                    slot.channel.send(("interrupt",))
                    slot.channel.send(("stop",))
                except OSError:
                    pass
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        for slot in self.slots:
            if slot.channel is not None and slot.channel.alive():
                slot.channel.kill()
            slot.state = "stopped"
        if self._on_stop is not None:
            self._on_stop()

    # -- requests from other threads --------------------------------------------------------------
    @property
    def current_job(self) -> Job | None:
        """The first running job (one worker's view, for code written for a single worker)."""
        running = self.running()
        return running[0][0] if running else None

    @property
    def current_node(self) -> str | None:
        running = self.running()
        return running[0][1] if running else None

    def running(self) -> list[tuple[Job, str | None]]:
        return [(slot.job, slot.node) for slot in self.slots if slot.job is not None]

    def running_items(self) -> list[list]:
        return [job.queue_item() for job, _ in self.running()]

    def running_item(self) -> Any:
        items = self.running_items()
        return items[0] if items else None

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Ask the running job (only ``prompt_id``, when given) to stop; a worker whose job has not
        stopped ``interrupt_grace`` seconds later is ended."""
        hit = False
        for slot in self.slots:
            job = slot.job
            if job is None or (prompt_id is not None and job.prompt_id != prompt_id):
                continue
            hit = True
            slot.interrupted_at = slot.interrupted_at or time.monotonic()
            self._tell(slot, ("interrupt",))
        return hit

    def request_free(self, unload_models: bool, free_memory: bool) -> None:
        """Unload models / drop cached results in every worker (a busy one after its job)."""
        for slot in self.slots:
            unload, free = slot.pending_free
            slot.pending_free = (unload or unload_models, free or free_memory)
            if slot.state == "idle":
                self._apply_free(slot)

    def workers(self) -> list[dict]:
        return [slot.as_json() for slot in self.slots]

    # -- dispatch ------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        skipped: dict[str, int] = {}  # how often the head of the queue was passed over
        while not self._stop.is_set():
            with self._changed:
                idle = [s for s in self.slots if s.state == "idle" and s.assigned is None]
                if not idle:
                    self._changed.wait(0.5)
                    continue
            window = self.store.pending(LOOK_AHEAD)
            if not window:
                self.store.wait_for_change(0.5)
                continue
            job, slot = choose_placement(window, idle, skipped)
            claimed = self.store.claim(job.prompt_id)
            if claimed is None:
                continue  # deleted or taken meanwhile
            with self._changed:
                slot.affinity = bool(slot.models & job_models(claimed.prompt))
                slot.assigned = claimed
                self._changed.notify_all()

    # -- one worker's life -----------------------------------------------------------------------------
    def _serve(self, slot: WorkerSlot) -> None:
        failures = 0
        while not self._stop.is_set():
            if slot.channel is None or not slot.channel.alive():
                if not self._start_worker(slot):
                    failures += 1
                    self._stop.wait(min(30.0, 2.0 ** failures))
                    continue
                failures = 0
            with self._changed:
                if slot.assigned is None:
                    self._changed.wait(0.2)
                job, slot.assigned = slot.assigned, None
            if job is not None:
                self._run(slot, job)
            elif slot.channel is not None and not slot.channel.alive():
                log.error("worker %d ended while idle (%s); starting it again", slot.id, slot.channel.exit_reason())
                slot.restarts += 1

    def _start_worker(self, slot: WorkerSlot) -> bool:
        slot.state = "starting"
        if slot.channel is not None:  # the one that ended: reap its process, close its connection
            slot.channel.kill()
            slot.channel = None
        try:
            slot.channel = self._launch(slot.id)
            deadline = time.monotonic() + START_TIMEOUT
            while not slot.channel.poll(0.2):
                if not slot.channel.alive() or time.monotonic() > deadline or self._stop.is_set():
                    raise WorkerLost(slot.channel.exit_reason())
            kind, info = slot.channel.recv()[:2]
            if kind != "ready":
                raise WorkerLost(f"said {kind!r} instead of ready")
        except (WorkerLost, OSError, EOFError) as exc:
            log.error("worker %d did not start: %s", slot.id, exc)
            if slot.channel is not None:
                slot.channel.kill()
            slot.channel = None
            slot.state = "stopped"
            return False
        slot.info = dict(info or {})
        slot.pid = slot.info.get("pid")
        slot.models = frozenset()
        self._apply_free(slot)
        with self._changed:
            slot.state = "idle"
            self._changed.notify_all()
        log.info("worker %d ready (%s)", slot.id, slot.channel.description)
        return True

    def _tell(self, slot: WorkerSlot, message: tuple) -> None:
        try:
            if slot.channel is not None:
                slot.channel.send(message)
        except OSError:
            pass  # it is gone: its thread notices and applies the crash rule

    def _apply_free(self, slot: WorkerSlot) -> None:
        unload, free = slot.pending_free
        if unload or free:
            slot.pending_free = (False, False)
            self._tell(slot, ("free", unload, free))

    def _emit(self, job: Job, event: str, data: dict) -> None:
        self._send(event, data, None if event in BROADCAST_EVENTS else job.client_id)

    def _run(self, slot: WorkerSlot, job: Job) -> None:
        slot.state, slot.job, slot.node = "running", job, None
        slot.started, slot.interrupted_at = time.monotonic(), None
        self.broadcast_status()
        assert slot.channel is not None  # a job goes only to a slot whose worker is ready
        entry: dict | None
        try:
            slot.channel.send(("run", {"prompt_id": job.prompt_id, "prompt": job.prompt, "outputs": job.outputs,
                                       "extra_data": job.extra_data, "client_id": job.client_id}))
            entry = self._follow(slot, job)
        except (WorkerLost, OSError, EOFError):
            slot.channel.kill(grace=2.0)  # a worker on its way out ends by itself: keep its own exit reason
            reason = slot.channel.exit_reason()
            log.error("worker %d ended while running job %s: %s", slot.id, job.prompt_id, reason)
            slot.restarts += 1
            slot.held_events = []  # what the lost worker said last is superseded by the crash rule
            entry = self._after_crash(slot, job, reason)
        except _Stopped as stopped:
            slot.channel.kill()
            slot.restarts += 1
            entry = stopped.entry
        if entry is not None:
            entry["weft"] = {"worker": slot.id, "model_affinity": slot.affinity}
            self._record(job, entry)
        for event, data in slot.held_events:  # the job's last message, once /history has it
            self._emit(job, event, data)
        slot.held_events = []
        if entry is not None:
            # One line per job in the server log (and the log panels that follow it), as ComfyUI's.
            log.info("job %s: %s in %.2f s (worker %d)", job.prompt_id, entry["status"]["status_str"],
                     time.monotonic() - slot.started, slot.id)
            if entry["status"]["status_str"] == "success":  # a job without model files leaves them loaded
                slot.models = job_models(job.prompt) or slot.models
        slot.jobs_run += 1
        slot.job = slot.node = None
        with self._changed:
            slot.state = "idle" if slot.channel is not None and slot.channel.alive() else "starting"
            self._changed.notify_all()
        self._apply_free(slot)
        self.broadcast_status()

    def _follow(self, slot: WorkerSlot, job: Job) -> dict:
        """Relay the worker's messages until its job is done; raise when it must be stopped."""
        assert slot.channel is not None  # as in _run
        while True:
            if slot.channel.poll(0.1):
                message = slot.channel.recv()
                kind = message[0]
                if kind == "event":
                    if message[1] == "executing":
                        slot.node = message[2].get("node")
                    if ends_job(message[1], message[2]):
                        slot.held_events.append((message[1], message[2]))
                    else:
                        self._emit(job, message[1], message[2])
                elif kind == "hub" and self._hub_call is not None:
                    self._hub_call(message[1], tuple(message[2]))
                elif kind == "done":
                    outcome = message[1]
                    return history_entry(job, outcome["status"], outcome["outputs"], outcome["messages"],
                                         outcome["meta"])
                continue
            if not slot.channel.alive():
                raise WorkerLost(slot.channel.exit_reason())
            now = time.monotonic()
            if self.job_timeout is not None and now - slot.started > self.job_timeout:
                log.error("job %s ran past --job-timeout (%g s); ending worker %d", job.prompt_id, self.job_timeout,
                          slot.id)
                raise _Stopped(self._stopped_entry(job, slot, "WeftJobTimeout",
                                                   f"The job ran longer than the job timeout ({self.job_timeout:g} s) "
                                                   "and was stopped by ending its worker process."))
            if slot.interrupted_at is not None and now - slot.interrupted_at > self.interrupt_grace:
                log.warning("job %s did not stop %g s after an interrupt; ending worker %d", job.prompt_id,
                            self.interrupt_grace, slot.id)
                raise _Stopped(self._interrupted_entry(job, slot))

    # -- entries for jobs that did not end by themselves --------------------------------------------
    @staticmethod
    def _hold_job_end(slot: WorkerSlot, job: Job) -> None:
        """The job's last message, sent by ``_run`` once its history entry is written."""
        slot.held_events = [("executing", {"node": None, "display_node": None, "prompt_id": job.prompt_id})]

    def _stopped_entry(self, job: Job, slot: WorkerSlot, kind: str, message: str) -> dict:
        data = _error_data(job, message, kind, slot.node)
        self._emit(job, "execution_error", data)
        self._hold_job_end(slot, job)
        return history_entry(job, "error", {}, [["execution_error", data]], {})

    def _interrupted_entry(self, job: Job, slot: WorkerSlot) -> dict:
        data: dict[str, Any] = {"prompt_id": job.prompt_id, "node_id": slot.node,
                                "node_type": _class_of(job, slot.node), "executed": [], "timestamp": _now_ms()}
        self._emit(job, "execution_interrupted", data)
        self._hold_job_end(slot, job)
        return history_entry(job, "interrupted", {}, [["execution_interrupted", data]], {})

    def _after_crash(self, slot: WorkerSlot, job: Job, reason: str) -> dict | None:
        """The crash rule: back in the queue once; failed the second time. None when requeued."""
        if job.attempts < MAX_ATTEMPTS:
            self.store.release(job.prompt_id)
            return None
        message = (f"The worker process ended while running this job ({reason}), {job.attempts} times; "
                   "it was not retried again.")
        entry = _crash_entry(job, message, "WeftWorkerLost")
        self._emit(job, "execution_error", entry["status"]["messages"][0][1])
        self._hold_job_end(slot, job)
        return entry

    def _record(self, job: Job, entry: dict) -> None:
        """Write the history entry, retrying; if that keeps failing, record the failure as the job's
        error instead; if even that fails, the job stays running in the store (recovered at the
        next start) and the worker goes on."""
        error: Exception | None = None
        for attempt in range(FINISH_ATTEMPTS):
            try:
                self.store.finish(job.prompt_id, entry)
                return
            except Exception as exc:  # sqlite3 errors, a full disk
                error = exc
                log.warning("writing job %s to the history failed (attempt %d): %s", job.prompt_id, attempt + 1, exc)
                self._stop.wait(0.2 * 2 ** attempt)
        message = f"The job ran, but its result could not be written to the job database: {error}"
        data = _error_data(job, message, "WeftHistoryWriteFailed", None)
        try:
            self.store.finish(job.prompt_id, history_entry(job, "error", {}, [["execution_error", data]], {}))
        except Exception:
            log.exception("job %s: not even its error could be written; it is recovered at the next start",
                          job.prompt_id)
        self._emit(job, "execution_error", data)


class _Stopped(Exception):
    def __init__(self, entry: dict) -> None:
        super().__init__("stopped")
        self.entry = entry


def _now_ms() -> int:
    return int(time.time() * 1000)


def _class_of(job: Job, node_id: str | None) -> str | None:
    node = job.prompt.get(node_id) if node_id is not None else None
    return node.get("class_type") if isinstance(node, dict) else None


def _error_data(job: Job, message: str, kind: str, node_id: str | None) -> dict:
    return {"prompt_id": job.prompt_id, "node_id": node_id, "node_type": _class_of(job, node_id), "executed": [],
            "exception_message": message, "exception_type": kind, "traceback": [], "current_inputs": {},
            "current_outputs": [], "timestamp": _now_ms()}


def _crash_entry(job: Job, message: str, kind: str) -> dict:
    return history_entry(job, "error", {}, [["execution_error", _error_data(job, message, kind, None)]], {})
