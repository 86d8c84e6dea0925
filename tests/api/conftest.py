"""A real Weft server process per test, on a free port, with its own folders."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, base: Path, extra_args=(), port: int | None = None) -> None:
        self.base = base
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None
        self.log_path = base / f"server-{self.port}.log"

    def start(self, timeout: float = 60, *, needs_token: bool = False) -> "ServerProcess":
        """Start the server and wait until it answers (``needs_token``: any answer, 401 included)."""
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "server.py"), "--port", str(self.port), "--base-directory", str(self.base),
             *self.extra_args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                status, _ = self.get("/prompt")
                if needs_token or (status == 200 and self.workers_ready()):
                    return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def workers_ready(self) -> bool:
        """Every worker process has started (the server answers before they have)."""
        status, stats = self.get("/system_stats")
        return status == 200 and all(w["state"] != "starting" for w in stats.get("workers", []))

    def start_with_token(self, timeout: float = 60) -> "ServerProcess":
        """Start a server that answers 401 without a token."""
        return self.start(timeout, needs_token=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """End the server the quick way, as a crash would: SIGKILL (the durable queue and history are
        built for that), then its worker processes, which end by themselves when their connection
        to the server closes. Saves the graceful path's second per server; :meth:`shutdown` takes
        that path."""
        if not self.process or self.process.poll() is not None:
            return
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        self.kill()
        _, alive = psutil.wait_procs(children, timeout=5)
        for child in alive:
            child.kill()

    def shutdown(self, timeout: float = 10) -> int | None:
        """SIGTERM: the graceful path (workers told to stop, connections closed). Returns the exit
        status; SIGKILL after ``timeout`` seconds."""
        if not self.process or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def request(self, method: str, path: str, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                raw = response.read()
                return response.status, (json.loads(raw) if raw and response.headers.get_content_type() ==
                                         "application/json" else raw)
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw)
            except ValueError:
                return err.code, raw

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, body=None):
        return self.request("POST", path, body if body is not None else {})

    def wait_for_history(self, prompt_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.get(f"/history/{prompt_id}")
            if status == 200 and prompt_id in body:
                return body[prompt_id]
            time.sleep(0.05)
        raise TimeoutError(f"{prompt_id} never reached the history\n{self.log()}")


TEST_PACK = '''
import os, time
from graph.context import check_interrupted, report_progress

class Gate:
    """Records each start in `marker`, then waits until the file `gate` exists."""
    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"gate": ("STRING", {}), "marker": ("STRING", {}), "token": ("INT", {"default": 0})}}

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        return float("nan")

    def run(self, gate, marker, token):
        with open(marker, "a") as f:
            f.write("start\\n")
        step = 0
        while not os.path.exists(gate):
            time.sleep(0.02)
            step += 1
            report_progress(step % 100, 100)
            check_interrupted()
        return (f"passed {token}",)

class Chatty:
    """Reports `count` progress steps, each with a noisy preview image (to flood slow sockets)."""
    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"count": ("INT", {"default": 10, "min": 1, "max": 100000})}}

    def run(self, count):
        from PIL import Image
        noise = Image.effect_noise((512, 512), 100).convert("RGB")
        for i in range(count):
            report_progress(i + 1, count, noise)
        return (f"chatted {count}",)

class Boom:
    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {})}}

    def run(self, text):
        raise RuntimeError("boom: " + text)

NODE_CLASS_MAPPINGS = {"Gate": Gate, "Boom": Boom, "Chatty": Chatty}
'''


def make_base(folder: Path) -> Path:
    (folder / "custom_nodes").mkdir(exist_ok=True)
    (folder / "custom_nodes" / "weft_test_pack.py").write_text(TEST_PACK)
    return folder


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """One base directory per test module, shared by the module's server (starting a server costs seconds)."""
    return make_base(tmp_path_factory.mktemp("weft"))


@pytest.fixture(scope="module")
def server(base_dir):
    proc = ServerProcess(base_dir).start()
    yield proc
    proc.stop()


@pytest.fixture
def fresh_base_dir(tmp_path):
    """A base directory of its own, for tests that start servers with other flags."""
    return make_base(tmp_path)


def gate_files(base_dir: Path) -> tuple[Path, Path]:
    """A fresh (gate, marker) pair for one Gate job."""
    token = uuid.uuid4().hex
    return base_dir / f"gate-{token}", base_dir / f"marker-{token}"


def preview_prompt(text: str, source: dict | None = None) -> dict:
    """A tiny prompt: a string (or a given source node) shown by PreviewAny."""
    first = source or {"class_type": "PrimitiveString", "inputs": {"value": text}}
    return {"1": first, "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}


def gate_prompt(gate: Path, marker: Path, token: int = 0) -> dict:
    return preview_prompt("", {"class_type": "Gate", "inputs": {"gate": str(gate), "marker": str(marker),
                                                                 "token": token}})
