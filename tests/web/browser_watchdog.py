"""A watchdog *process* for the browser tests: when one test has run longer than its limit, it
kills the Playwright driver and the Chromium under it, which makes the stuck test fail at once.

It must be a process of its own. The stall it guards against (seen a few times on the 2-core
build machines: Chromium's zygote and the Playwright driver spinning while the test process sits
waiting on the driver) leaves no thread of the test process running — pytest-timeout's SIGALRM
stays pending and an in-process timer thread never runs — while other processes run normally.

``python browser_watchdog.py TEST_PID STATE_FILE LIMIT_S``: the test process writes STATE_FILE
(JSON ``{"driver": pid, "test": id or null, "since": epoch seconds}``) at each test's start and
end; when the watchdog ends a driver it adds ``"ended": [...]`` and ``"ended_test"``. The watchdog
exits when the test process does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import psutil


def _read(state_file: Path) -> dict:
    try:
        return json.loads(state_file.read_text())
    except (OSError, ValueError):
        return {}  # not written yet, or being replaced


def _kill_tree(pid: int) -> list[str]:
    ended = []
    try:
        driver = psutil.Process(pid)
        for process in [*driver.children(recursive=True), driver]:
            ended.append(f"{process.pid} {process.name()}")
            process.kill()
    except psutil.Error as exc:
        ended.append(f"({type(exc).__name__}: {exc})")
    return ended


def watch(test_pid: int, state_file: Path, limit: float) -> None:
    while psutil.pid_exists(test_pid):
        state = _read(state_file)
        test, since, driver = state.get("test"), state.get("since"), state.get("driver")
        if test and since and driver and time.time() - since > limit and state.get("ended_test") != test:
            state.update(ended=_kill_tree(int(driver)), ended_test=test)
            temporary = state_file.with_suffix(".tmp")
            temporary.write_text(json.dumps(state))
            os.replace(temporary, state_file)
        time.sleep(1.0)


if __name__ == "__main__":
    watch(int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]))
