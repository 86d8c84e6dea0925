"""graph.worker (jobs in a thread of the server, ``--workers 0``): a job's end is announced only once
its history entry is written, and it counts in queue_remaining until then."""

from __future__ import annotations

import time

from graph.cache import OutputCache
from graph.executor import Executor
from graph.jobs import JobStore
from graph.validation import validate_prompt
from graph.worker import Worker


def test_the_end_message_follows_the_history_entry(registry, tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    seen: list[tuple[bool, int]] = []
    worker: Worker

    def send(event, data, client_id):
        if event == "executing" and data.get("node") is None:
            seen.append((store.history_entry(data["prompt_id"]) is not None, worker.queue_remaining()))

    worker = Worker(store, Executor(registry, OutputCache(max_entries=10)), send)
    prompt = {"1": {"class_type": "Number", "inputs": {"value": 3}},
              "2": {"class_type": "Sink", "inputs": {"value": ["1", 0]}}}
    checked = validate_prompt(prompt, registry)
    assert checked.ok
    store.submit("job", store.next_number(), checked.prompt, {}, checked.outputs)
    assert worker.queue_remaining() == 1
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == [(True, 0)]
    finally:
        worker.stop()
