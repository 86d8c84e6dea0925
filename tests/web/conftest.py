"""Fixtures for the editor's browser tests: a server process, Debian's Chromium driven by
Playwright (never a downloaded browser), a page that fails the test on any console error, and a
screenshot of every test's end state in test-artifacts/web/."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from editor_driver import Editor  # tests/web is on sys.path (pytest rootdir-relative import)

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
FIXTURES = HERE / "fixtures"
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = "/usr/bin/chromium"
# A test still running after this long has its browser ended (the driver and Chromium), so a rare
# browser stall fails the test instead of hanging the run: pytest-timeout's signal cannot interrupt
# a main thread blocked inside Playwright's driver wait.
BROWSER_WATCHDOG_S = 240.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not answer {url} within {timeout}s")


def _start(command: list[str], base: Path, port: int):
    log = open(base / "server.log", "w")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url + "/api/object_info", process)
    except Exception:
        process.terminate()
        log.close()
        raise RuntimeError((base / "server.log").read_text()[-3000:])
    return process, log, url


@pytest.fixture(scope="session")
def web_server(tmp_path_factory):
    """Weft's own server.py on a free port, with a throw-away base directory holding tiny generated
    checkpoints, one broken checkpoint, the test node pack (tests/web/fixtures/test_pack) and an
    input image."""
    base = tmp_path_factory.mktemp("weft-real")
    shutil.copytree(FIXTURES / "test_pack", base / "custom_nodes" / "weft_test_pack")
    (base / "input").mkdir()
    Image.new("RGB", (48, 40), (30, 160, 90)).save(base / "input" / "example.png")
    # Tiny random checkpoints in the real key layouts (ldm/tiny.py), and one that is not a checkpoint.
    subprocess.run([sys.executable, "-m", "ldm.tiny", str(base / "models")], cwd=ROOT, check=True, capture_output=True)
    (base / "models" / "checkpoints" / "zz-broken.safetensors").write_bytes(b"not a checkpoint")
    port = _free_port()
    process, log, url = _start([sys.executable, "server.py", "--port", str(port), "--base-directory", str(base)], base, port)
    try:
        yield {"url": url, "base": base}
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"browser tests need Debian's Chromium at {CHROMIUM} (make browser-deps)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _end_browser_processes() -> list[str]:
    """Kill this test process's Playwright driver and everything under it (Chromium)."""
    import psutil

    ended = []
    for child in psutil.Process().children(recursive=False):
        try:
            if "playwright" not in " ".join(child.cmdline()):
                continue
            for process in [*child.children(recursive=True), child]:
                ended.append(f"{process.pid} {process.name()}")
                process.kill()
        except psutil.Error:
            continue
    return ended


@pytest.fixture(autouse=True)
def browser_watchdog(request):
    """Ends the browser when a test outlives BROWSER_WATCHDOG_S and fails that test saying so."""
    ended: list[str] = []
    timer = threading.Timer(BROWSER_WATCHDOG_S, lambda: ended.extend(_end_browser_processes()))
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()
    if ended:
        pytest.fail(f"{request.node.name} ran past {BROWSER_WATCHDOG_S:g} s; the watchdog ended the browser "
                    f"processes {ended}")


@pytest.fixture
def expected_console_errors():
    """Patterns of console errors a test provokes on purpose (e.g. the 400 of a rejected prompt)."""
    return []


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 860}, accept_downloads=True)
    yield context
    context.close()


@pytest.fixture
def editor(request, context, web_server, expected_console_errors):
    """A fresh editor page (empty storage). Fails the test on any console error it did not expect."""
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    ed = Editor(page, web_server["url"])
    ed.open()
    yield ed
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    unexpected = [e for e in errors if not any(re.search(p, e) for p in expected_console_errors)]
    assert not unexpected, "console errors:\n" + "\n".join(unexpected)
