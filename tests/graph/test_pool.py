"""graph.pool's supervision with workers faked in threads: model affinity, and a history write
that keeps failing."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time

from graph.jobs import JobStore
from graph.pool import WorkerPool, job_models


class FakeChannel:
    """A worker in a thread: each job takes ``seconds``, then succeeds with its prompt's text. With
    ``announces_end`` it says ``executing`` with no node before ``done``, as the real worker does,
    and pauses between the two (the window a client reading /history at once would fall into)."""

    def __init__(self, worker_id: int, seconds: float = 0.05, announces_end: bool = False) -> None:
        self.description = f"fake {worker_id}"
        self.to_worker: queue.Queue = queue.Queue()
        self.from_worker: queue.Queue = queue.Queue()
        self.seconds = seconds
        self.announces_end = announces_end
        self.running = True
        self.from_worker.put(("ready", {"pid": 1000 + worker_id}))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.running:
            message = self.to_worker.get()
            if message[0] == "run":
                job = message[1]
                time.sleep(self.seconds)
                self.from_worker.put(("event", "executing", {"node": "1", "prompt_id": job["prompt_id"]}))
                if self.announces_end:
                    self.from_worker.put(("event", "executing", {"node": None, "prompt_id": job["prompt_id"]}))
                    time.sleep(0.05)
                self.from_worker.put(("done", {"status": "success", "outputs": {"1": {"text": ["ok"]}},
                                               "messages": [], "meta": {}}))
            elif message[0] == "stop":
                self.running = False

    def send(self, message):
        self.to_worker.put(message)

    def poll(self, timeout):
        deadline = time.monotonic() + timeout
        while self.from_worker.empty():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def recv(self):
        return self.from_worker.get()

    def alive(self):
        return self.running

    def exit_reason(self):
        return "still running" if self.running else "stopped"

    def kill(self, grace=0.0):
        self.running = False
        self.to_worker.put(("stop",))


def _prompt(model: str, n: int) -> dict:
    return {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": model}},
            "2": {"class_type": "Note", "inputs": {"n": n}}}


def _wait_done(store: JobStore, ids: list[str], timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = {pid: store.history_entry(pid) for pid in ids}
        if all(entries.values()):
            return entries
        time.sleep(0.02)
    raise TimeoutError


def test_job_models():
    assert job_models(_prompt("a.safetensors", 1)) == {"a.safetensors"}
    assert job_models({"1": {"class_type": "X", "inputs": {"text": "hello", "n": 3}}}) == frozenset()


def test_jobs_go_to_the_worker_that_last_ran_their_model(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    pool = WorkerPool(store, lambda *a: None, lambda i: FakeChannel(i, 0.1), size=2)
    pool.start()
    try:
        # two warm-up jobs, one per model, run side by side on the two workers
        ids = []
        for n, model in enumerate(["a.safetensors", "b.safetensors"]):
            store.submit(f"warm{n}", store.next_number(), _prompt(model, n), {}, ["1"])
            ids.append(f"warm{n}")
        warm = _wait_done(store, ids)
        home = {m: warm[f"warm{n}"]["weft"]["worker"] for n, m in enumerate(["a.safetensors", "b.safetensors"])}
        assert set(home.values()) == {0, 1}
        ids = []
        for n in range(8):
            model = ["a.safetensors", "b.safetensors"][n % 2]
            store.submit(f"j{n}", store.next_number(), _prompt(model, n), {}, ["1"])
            ids.append(f"j{n}")
        entries = _wait_done(store, ids)
        for n in range(8):
            placed = entries[f"j{n}"]["weft"]
            if placed["model_affinity"]:
                assert placed["worker"] == home[["a.safetensors", "b.safetensors"][n % 2]]
        assert sum(entries[f"j{n}"]["weft"]["model_affinity"] for n in range(8)) >= 6
    finally:
        pool.stop()


def test_a_history_write_that_keeps_failing_becomes_the_jobs_error_and_the_pool_goes_on(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    real_finish, failures = store.finish, []

    def flaky_finish(prompt_id, entry):
        if prompt_id == "doomed" and len(failures) < 3:  # every attempt with the real entry fails
            failures.append(prompt_id)
            raise sqlite3.OperationalError("database or disk is full")
        return real_finish(prompt_id, entry)

    store.finish = flaky_finish
    sent = []
    pool = WorkerPool(store, lambda event, data, client: sent.append((event, data)), lambda i: FakeChannel(i), size=1)
    pool.start()
    try:
        store.submit("doomed", store.next_number(), _prompt("a.safetensors", 0), {}, ["1"], client_id="c")
        entry = _wait_done(store, ["doomed"])["doomed"]
        error = entry["status"]["messages"][0][1]
        assert error["exception_type"] == "WeftHistoryWriteFailed" and "disk is full" in error["exception_message"]
        assert len(failures) == 3 and ("execution_error", error) in [(e, d) for e, d in sent if e == "execution_error"]
        store.submit("next", store.next_number(), _prompt("a.safetensors", 1), {}, ["1"])
        assert _wait_done(store, ["next"])["next"]["status"]["status_str"] == "success"
    finally:
        pool.stop()


def test_a_jobs_end_is_announced_only_once_its_history_is_written(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    seen: list[tuple[bool, int]] = []
    pool: WorkerPool

    def send(event, data, client_id):
        if event == "executing" and data.get("node") is None:  # what clients wait for, then read /history
            seen.append((store.history_entry(data["prompt_id"]) is not None, pool.queue_remaining()))

    pool = WorkerPool(store, send, lambda i: FakeChannel(i, 0.05, announces_end=True), size=1)
    pool.start()
    try:
        store.submit("job", store.next_number(), _prompt("a.safetensors", 0), {}, ["1"])
        assert pool.queue_remaining() == 1  # counted from submission ...
        _wait_done(store, ["job"])
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == [(True, 0)]  # ... until its history entry exists, which the end message follows
    finally:
        pool.stop()
