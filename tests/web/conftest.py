"""Fixtures for the editor's browser tests: a server process, Debian's Chromium driven by
Playwright (never a downloaded browser), a page that fails the test on any console error, and a
screenshot of every test's end state in test-artifacts/web/."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest
from PIL import Image

from editor_driver import Editor  # tests/web is on sys.path (pytest rootdir-relative import)

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
FIXTURES = HERE / "fixtures"
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = "/usr/bin/chromium"
# A test still running after this long has its browser ended by the watchdog process (the driver
# and Chromium), so a rare browser stall fails the test instead of hanging the run (see
# browser_watchdog.py for why it is a process); the test is then run once more.
BROWSER_WATCHDOG_S = float(os.environ.get("WEFT_BROWSER_WATCHDOG_S", 240))
STALL_MARKER = "browser stalled"
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


class BrowserSession:
    """Playwright and Debian's Chromium for the whole session, watched by a watchdog process
    (browser_watchdog.py): a test still running after BROWSER_WATCHDOG_S has its driver and
    browser ended (its browser calls then fail, and a warning says why) and is run once more on a
    fresh browser (the rerun mark the
    browser tests carry, see pytest_collection_modifyitems); later tests get a fresh browser too."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self.playwright = None
        self.browser = None
        self.driver_pid: int | None = None
        self.watchdog = subprocess.Popen([sys.executable, str(HERE / "browser_watchdog.py"), str(os.getpid()),
                                          str(state_file), str(BROWSER_WATCHDOG_S)])

    def alive(self) -> bool:
        import psutil

        # A killed driver leaves Browser.is_connected() true until something is sent: ask the OS too.
        return (self.browser is not None and self.browser.is_connected() and self.driver_pid is not None
                and psutil.pid_exists(self.driver_pid))

    def get(self):
        if not self.alive():
            self._start()
        return self.browser

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._stop()
        before = _playwright_children()
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        started = _playwright_children() - before
        self.driver_pid = max(started) if started else None

    def _stop(self) -> None:
        for closing in (self.browser, self.playwright):
            if closing is None:
                continue
            try:
                closing.close() if closing is self.browser else closing.stop()
            except Exception as exc:  # a driver the watchdog ended cannot close cleanly
                print(f"browser session: closing {type(closing).__name__} failed: {exc}", file=sys.stderr)
        self.browser = self.playwright = None

    def mark(self, test: str | None) -> dict:
        """Record which test runs now (None: between tests); returns what the watchdog wrote."""
        state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        state.update(driver=self.driver_pid, test=test, since=time.time())
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, self.state_file)
        return state

    def close(self) -> None:
        self._stop()
        self.watchdog.kill()
        self.watchdog.wait(timeout=10)


def _playwright_children() -> set[int]:
    import psutil

    found = set()
    for child in psutil.Process().children(recursive=False):
        try:
            if "playwright" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="session")
def browser_session(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"browser tests need Debian's Chromium at {CHROMIUM} (make browser-deps)")
    session = BrowserSession(tmp_path_factory.mktemp("browser-watchdog") / "state.json")
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def browser(browser_session, request):
    """The session's browser (started again if the watchdog ended it), watched while this test runs."""
    browser = browser_session.get()
    browser_session.mark(request.node.nodeid)
    yield browser
    state = browser_session.mark(None)
    if state.get("ended_test") == request.node.nodeid:
        # The test itself has failed already (its browser calls raise TargetClosedError), which
        # makes it run once more; this says why, in the run's warnings summary.
        warnings.warn(f"{STALL_MARKER}: {request.node.name} ran past {BROWSER_WATCHDOG_S:g} s; the watchdog "
                      f"ended the browser processes {state.get('ended')}", stacklevel=1)


def pytest_collection_modifyitems(items):
    """A browser test that the watchdog had to stop is run once more (pytest-rerunfailures), on a
    fresh browser; any other failure counts at once."""
    for item in items:
        if "browser" in item.fixturenames or "editor" in item.fixturenames or "context" in item.fixturenames:
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=["TargetClosedError",
                                                                     "Connection closed while reading from the driver"]))


@pytest.fixture
def expected_console_errors():
    """Patterns of console errors a test provokes on purpose (e.g. the 400 of a rejected prompt)."""
    return []


@pytest.fixture
def context(browser, browser_session):
    context = browser.new_context(viewport={"width": 1400, "height": 860}, accept_downloads=True)
    yield context
    if browser_session.alive():  # after a watchdog stop there is nothing left to close
        context.close()


@pytest.fixture
def editor(request, context, web_server, expected_console_errors, browser_session):
    """A fresh editor page (empty storage). Fails the test on any console error it did not expect."""
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    ed = Editor(page, web_server["url"])
    ed.open()
    yield ed
    if not browser_session.alive():
        return  # the watchdog ended the browser: the browser fixture fails the test saying so
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    unexpected = [e for e in errors if not any(re.search(p, e) for p in expected_console_errors)]
    assert not unexpected, "console errors:\n" + "\n".join(unexpected)
