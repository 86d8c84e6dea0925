"""Packs are tried in a child process first (nodes/pack_probe.py): one that hangs or ends its
process at import is reported and never imported by the server or its workers; no thread of it
is left spinning; the verdicts are remembered until the pack changes."""

from __future__ import annotations

import time

import psutil

from .conftest import ServerProcess

SPIN = "while True:\n    pass\n"
EXIT = "import os\nos._exit(3)\n"
TYPES_EXIT = '''
import sys

class Quits:
    CATEGORY = "test"
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        sys.exit(2)

    def run(self):
        return ("x",)

NODE_CLASS_MAPPINGS = {"Quits": Quits}
'''


def _report(server, name):
    return next(p for p in server.get("/node_packs")[1] if p["name"] == name)


def test_packs_that_hang_or_exit_at_import_are_reported_and_never_imported(fresh_base_dir):
    packs = fresh_base_dir / "custom_nodes"
    (packs / "spin_pack.py").write_text(SPIN)
    (packs / "exit_pack.py").write_text(EXIT)
    (packs / "types_exit.py").write_text(TYPES_EXIT)
    server = ServerProcess(fresh_base_dir, ["--custom-node-import-timeout", "1.5"]).start(timeout=120)
    try:
        spin, exits = _report(server, "spin_pack"), _report(server, "exit_pack")
        assert not spin["loaded"] and spin["failure"] == "unsafe_import" and "within 1.5 s" in spin["error"]
        assert not exits["loaded"] and "ended the process importing it (exit code 3)" in exits["error"]
        quits = _report(server, "types_exit")  # INPUT_TYPES's SystemExit rejects the node, not the server
        assert quits["rejected"] == {"Quits": "SystemExit: 2"}
        assert _report(server, "weft_test_pack")["loaded"]
        # Nothing spins: neither the server nor its worker burns a core.
        worker_pid = server.get("/system_stats")[1]["workers"][0]["pid"]
        for pid in (server.process.pid, worker_pid):
            assert psutil.Process(pid).cpu_percent(interval=0.75) < 30
        assert server.post("/prompt", {"prompt": {"1": {"class_type": "PrimitiveString", "inputs": {"value": "x"}},
                                                  "2": {"class_type": "PreviewAny",
                                                        "inputs": {"source": ["1", 0]}}}})[0] == 200
    finally:
        server.stop()
    # Remembered: the next start tries nothing again (so it does not wait out the timeout).
    started = time.monotonic()
    # A long timeout, so a start that probed the spinning pack again would take ≥ 30 s.
    again = ServerProcess(fresh_base_dir, ["--custom-node-import-timeout", "30"]).start(timeout=120)
    try:
        assert time.monotonic() - started < 20 and not _report(again, "spin_pack")["loaded"]
    finally:
        again.stop()
