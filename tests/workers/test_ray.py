"""Workers as Ray actors (workers/ray_launch.py): a local Ray instance with two CPU workers runs
jobs over two checkpoints with model affinity and loses a worker mid-job without losing a job.
(How much two workers gain over one is measured in bench/throughput.py, not asserted here.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.api.conftest import REPO, ServerProcess, gate_files, gate_prompt, make_base
from tests.e2e.prompts import default_txt2img

CHECKPOINTS = ("tiny_sd1.safetensors", "tiny_sd2.safetensors")


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    base = make_base(tmp_path_factory.mktemp("ray"))  # with the test pack's Gate node
    subprocess.run([sys.executable, "-m", "ldm.tiny", str(base / "models")], cwd=REPO, check=True, capture_output=True)
    return base


def _run_jobs(server: ServerProcess, count: int, *, kill_one: bool = False, steps: int = 2,
              size: int = 64) -> list[dict]:
    """Queue ``count`` jobs while every worker waits at a gate, then open it: the dispatcher sees
    the whole queue at once. Returns the jobs' history entries."""
    gate, marker = gate_files(server.base)
    workers = len(server.get("/system_stats")[1]["workers"])
    gates = [server.post("/prompt", {"prompt": gate_prompt(gate, marker, token)})[1]["prompt_id"]
             for token in range(workers)]
    deadline = time.monotonic() + 120
    while not marker.exists() or marker.read_text().count("start") < workers:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    ids = []
    for n in range(count):
        prompt = default_txt2img(CHECKPOINTS[n % 2], seed=n, steps=steps, size=size)
        status, body = server.post("/prompt", {"prompt": prompt})
        assert status == 200, body
        ids.append(body["prompt_id"])
    gate.write_text("open")
    if kill_one:
        deadline = time.monotonic() + 120
        while not any(w["state"] == "running" for w in server.get("/system_stats")[1]["workers"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        busy = next(w for w in server.get("/system_stats")[1]["workers"] if w["state"] == "running")
        os.kill(busy["pid"], signal.SIGKILL)
    entries = [server.wait_for_history(pid, 300) for pid in ids]
    assert all(server.wait_for_history(pid, 10)["status"]["status_str"] == "success" for pid in gates)
    return entries


def _ray_server(base, workers: int) -> ServerProcess:
    return ServerProcess(base, ["--ray", "auto", "--workers", str(workers)]).start(timeout=300)


def test_two_ray_workers_place_jobs_by_model_and_survive_losing_one(tiny_base):
    two = _ray_server(tiny_base, 2)
    try:
        workers = two.get("/system_stats")[1]["workers"]
        assert len(workers) == 2 and all(w["where"].startswith("Ray actor") for w in workers)
        _run_jobs(two, 2)  # warm: each worker loads one model
        entries = _run_jobs(two, 8)
        assert all(e["status"]["status_str"] == "success" for e in entries)
        placed = [e["weft"] for e in entries]
        # The job records: a job that went to the worker holding its checkpoint says so, and each
        # checkpoint's affine jobs all went to one worker.
        by_model: dict[str, set[int]] = {}
        for n, where in enumerate(placed):
            if where["model_affinity"]:
                by_model.setdefault(CHECKPOINTS[n % 2], set()).add(where["worker"])
        assert sum(w["model_affinity"] for w in placed) >= 7, placed
        assert all(len(workers) == 1 for workers in by_model.values()) and len(by_model) == 2, by_model

        # One worker killed mid-job (jobs big enough to be caught running): it is retried, every job completes.
        entries = _run_jobs(two, 8, kill_one=True, steps=10, size=256)
        assert all(e["status"]["status_str"] == "success" for e in entries), [e["status"] for e in entries]
        assert sum(w["restarts"] for w in two.get("/system_stats")[1]["workers"]) >= 1
    finally:
        two.shutdown()  # graceful: the server ends its local Ray instance
