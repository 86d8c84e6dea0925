"""SIGKILL the server mid-job and restart it: nothing accepted is lost, the killed job is retried
once, and a job that kills the server twice is failed instead of retried forever."""

import time

from .conftest import ServerProcess, gate_prompt, preview_prompt


def wait_for_lines(path, count, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("start") >= count:
            return
        time.sleep(0.02)
    raise TimeoutError(f"{path} never reached {count} starts")


def submit_scenario(server, base_dir):
    _, done = server.post("/prompt", {"prompt": preview_prompt("before the crash")})
    server.wait_for_history(done["prompt_id"])
    gate, marker = base_dir / "gate", base_dir / "marker"
    _, killed = server.post("/prompt", {"prompt": gate_prompt(gate, marker)})
    wait_for_lines(marker, 1)
    _, b = server.post("/prompt", {"prompt": preview_prompt("b")})
    _, c = server.post("/prompt", {"prompt": preview_prompt("c")})
    return done["prompt_id"], killed["prompt_id"], b["prompt_id"], c["prompt_id"], gate, marker


def test_killed_job_is_retried_once_and_pending_jobs_run(fresh_base_dir):
    base_dir = fresh_base_dir
    first = ServerProcess(base_dir).start()
    try:
        done, killed, b, c, gate, marker = submit_scenario(first, base_dir)
    finally:
        first.kill()

    second = ServerProcess(base_dir, port=first.port).start()
    try:
        wait_for_lines(marker, 2)  # the killed job runs again first
        gate.touch()
        assert second.wait_for_history(killed)["outputs"]["2"] == {"text": ["passed 0"]}
        assert second.wait_for_history(b)["outputs"]["2"] == {"text": ["b"]}
        assert second.wait_for_history(c)["outputs"]["2"] == {"text": ["c"]}
        assert second.get(f"/history/{done}")[1][done]["outputs"]["2"] == {"text": ["before the crash"]}
        assert marker.read_text().count("start") == 2
    finally:
        second.stop()


def test_job_that_kills_the_server_twice_is_failed_not_retried(fresh_base_dir):
    base_dir = fresh_base_dir
    first = ServerProcess(base_dir).start()
    try:
        done, killed, b, c, gate, marker = submit_scenario(first, base_dir)
    finally:
        first.kill()
    second = ServerProcess(base_dir, port=first.port).start()
    try:
        wait_for_lines(marker, 2)
    finally:
        second.kill()

    third = ServerProcess(base_dir, port=first.port).start()
    try:
        entry = third.wait_for_history(killed)
        assert entry["status"]["status_str"] == "error"
        [error] = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
        assert "not retried" in error["exception_message"]
        assert third.wait_for_history(b)["status"]["status_str"] == "success"
        assert third.wait_for_history(c)["status"]["status_str"] == "success"
        assert done in third.get("/history")[1]
        time.sleep(0.3)
        assert marker.read_text().count("start") == 2  # never started a third time
    finally:
        third.stop()
