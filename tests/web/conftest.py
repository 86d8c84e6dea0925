"""Fixtures for the editor's browser tests: a server process, Debian's Chromium driven by
Playwright (never a downloaded browser), a page that fails the test on any console error, and a
screenshot of every test's end state in test-artifacts/web/."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from editor_driver import Editor  # tests/web is on sys.path (pytest rootdir-relative import)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = "/usr/bin/chromium"
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


@pytest.fixture(scope="session")
def web_server(tmp_path_factory):
    """The stand-in server (tests/web/fake_server.py) on a free port; yields its base URL."""
    base = tmp_path_factory.mktemp("weft-web")
    port = _free_port()
    log = open(base / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "fake_server.py"), "--port", str(port), "--base-directory", str(base)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url + "/api/object_info", process)
        yield {"url": url, "base": base}
    finally:
        process.terminate()
        process.wait(timeout=10)
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
