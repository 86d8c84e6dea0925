"""Jobs run in supervised worker processes (graph.pool, workers/): nothing a node does stops the
server, and every other job keeps its place."""

from __future__ import annotations

import os
import signal
import time

import pytest
from PIL import Image

from .conftest import ServerProcess, gate_files, gate_prompt, make_base, preview_prompt

UNRULY_PACK = '''
import os, sys, time

class Unruly:
    """Misbehaves in the way its input names."""
    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"how": ("STRING", {}), "seconds": ("FLOAT", {"default": 60.0})}}

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        return float("nan")

    def run(self, how, seconds):
        if how == "exit":
            sys.exit(3)
        if how == "keyboard":
            raise KeyboardInterrupt
        if how == "os_exit":
            os._exit(7)
        if how == "spin":  # never checks for interrupts
            end = time.time() + seconds
            while time.time() < end:
                pass
        return (how,)

class UnrulyCheck:
    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"how": ("STRING", {})}}

    @classmethod
    def VALIDATE_INPUTS(cls, how):
        if how == "exit":
            sys.exit(1)
        raise KeyboardInterrupt

    def run(self, how):
        return (how,)

NODE_CLASS_MAPPINGS = {"Unruly": Unruly, "UnrulyCheck": UnrulyCheck}
'''


def unruly(how: str, seconds: float = 60.0) -> dict:
    return preview_prompt("", {"class_type": "Unruly", "inputs": {"how": how, "seconds": seconds}})


def _error_of(entry: dict) -> dict:
    return next(m[1] for m in entry["status"]["messages"] if m[0] in ("execution_error", "execution_interrupted"))


def _worker(server) -> dict:
    return server.get("/system_stats")[1]["workers"][0]


@pytest.fixture
def unruly_server(fresh_base_dir):
    (fresh_base_dir / "custom_nodes" / "unruly.py").write_text(UNRULY_PACK)
    proc = ServerProcess(fresh_base_dir, ["--interrupt-grace", "2", "--job-timeout", "20"]).start()
    yield proc
    proc.stop()


def _run(server, prompt: dict, timeout: float = 90) -> dict:
    status, body = server.post("/prompt", {"prompt": prompt})
    assert status == 200, body
    return server.wait_for_history(body["prompt_id"], timeout)


@pytest.mark.parametrize("how, kind", [("exit", "SystemExit"), ("keyboard", "KeyboardInterrupt")])
def test_system_exit_and_keyboard_interrupt_in_a_node_fail_only_their_job(unruly_server, how, kind):
    entry = _run(unruly_server, unruly(how))
    assert entry["status"]["status_str"] == "error" and _error_of(entry)["exception_type"].endswith(kind)
    assert _run(unruly_server, preview_prompt("after"))["outputs"] == {"2": {"text": ["after"]}}
    assert _worker(unruly_server)["restarts"] == 0  # caught in the worker: it never ended


def test_a_worker_that_exits_is_restarted_and_its_job_retried_once_then_failed(unruly_server):
    entry = _run(unruly_server, unruly("os_exit"))
    error = _error_of(entry)
    assert error["exception_type"] == "WeftWorkerLost" and "exit code 7" in error["exception_message"]
    assert entry["prompt"][3].get("client_id") is None and _worker(unruly_server)["restarts"] == 2  # run twice
    assert _run(unruly_server, preview_prompt("next"))["outputs"] == {"2": {"text": ["next"]}}


def test_validate_inputs_raising_system_exit_or_keyboard_interrupt_fails_only_that_request(unruly_server):
    for how in ("exit", "keyboard"):
        status, body = unruly_server.post("/prompt", {"prompt": preview_prompt(
            "", {"class_type": "UnrulyCheck", "inputs": {"how": how}})})
        assert status == 400
        (errors,) = [e["errors"] for e in body["node_errors"].values()]
        assert errors[0]["type"] == "exception_during_validation"
    assert _run(unruly_server, preview_prompt("still here"))["outputs"] == {"2": {"text": ["still here"]}}


def test_a_node_that_ignores_interrupts_is_stopped_after_the_grace_period(unruly_server):
    status, body = unruly_server.post("/prompt", {"prompt": unruly("spin")})
    deadline = time.monotonic() + 30
    while _worker(unruly_server)["state"] != "running" or _worker(unruly_server)["node"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    asked = time.monotonic()
    unruly_server.post("/interrupt", {})
    entry = unruly_server.wait_for_history(body["prompt_id"], 30)
    assert time.monotonic() - asked < 2 + 8  # the grace period (2 s) and a worker's end
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_interrupted"]
    assert _run(unruly_server, preview_prompt("after"))["outputs"] == {"2": {"text": ["after"]}}


def test_job_timeout_ends_a_job_that_runs_too_long(fresh_base_dir):
    (fresh_base_dir / "custom_nodes" / "unruly.py").write_text(UNRULY_PACK)
    server = ServerProcess(fresh_base_dir, ["--job-timeout", "3"]).start()
    try:
        started = time.monotonic()
        entry = _run(server, unruly("spin", 120))
        assert time.monotonic() - started < 30
        error = _error_of(entry)
        assert error["exception_type"] == "WeftJobTimeout" and "3 s" in error["exception_message"]
        assert _run(server, preview_prompt("after"))["outputs"] == {"2": {"text": ["after"]}}
    finally:
        server.stop()


def test_a_worker_killed_mid_job_is_restarted_and_the_job_retried_once_then_failed(server, base_dir):
    gate, marker = gate_files(base_dir)
    status, body = server.post("/prompt", {"prompt": gate_prompt(gate, marker)})
    for attempt in range(2):
        deadline = time.monotonic() + 60
        while not marker.exists() or marker.read_text().count("start") <= attempt:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        pid = _worker(server)["pid"]
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    entry = server.wait_for_history(body["prompt_id"], 60)
    error = _error_of(entry)
    assert error["exception_type"] == "WeftWorkerLost" and "SIGKILL" in error["exception_message"]
    assert marker.read_text().count("start") == 2  # run, retried once, failed
    assert _run(server, preview_prompt("alive"))["outputs"] == {"2": {"text": ["alive"]}}


def test_oversized_latent_and_multi_frame_tiff_are_job_errors(server, base_dir):
    restarts = _worker(server)["restarts"]
    latent = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 16384, "height": 16384, "batch_size": 4096}},
              "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    entry = _run(server, latent)
    assert entry["status"]["status_str"] == "error"
    assert "EmptyLatentImage" in _error_of(entry)["exception_message"]
    frames = [Image.new("1", (8192, 8192)) for _ in range(40)]
    (base_dir / "input").mkdir(exist_ok=True)
    frames[0].save(base_dir / "input" / "many.tiff", save_all=True, append_images=frames[1:], compression="group4")
    tiff = {"1": {"class_type": "LoadImage", "inputs": {"image": "many.tiff"}},
            "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    entry = _run(server, tiff)
    assert entry["status"]["status_str"] == "error" and "GB" in _error_of(entry)["exception_message"]
    assert _worker(server)["restarts"] == restarts  # refused before allocating: the worker never ended
    assert _run(server, preview_prompt("alive"))["outputs"] == {"2": {"text": ["alive"]}}


def test_sigterm_ends_the_server_and_its_worker_gracefully(fresh_base_dir):
    # The suite's teardowns kill servers (ServerProcess.stop); this is the path a user's Ctrl-C or
    # a service manager's SIGTERM takes: the worker is told to stop and both processes end cleanly.
    import psutil

    server = ServerProcess(fresh_base_dir).start()
    worker = psutil.Process(server.get("/system_stats")[1]["workers"][0]["pid"])
    assert server.shutdown(timeout=30) == 0, server.log()
    worker.wait(10)  # not the server's child: psutil gives no exit status, only TimeoutExpired if it lingers
    assert not worker.is_running()
    assert "Traceback" not in server.log()
