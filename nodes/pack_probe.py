"""Node packs are tried in a short-lived child process before the server imports them.

A pack's import runs its top-level code. One that never returns would leave a thread spinning in
the server for good (a thread cannot be stopped), and one that calls ``os._exit`` or kills its
process would end the server with an empty log. So the server first imports the packs in a child
(``python -m nodes.pack_probe``), which says on a pipe which pack it is importing and when each is
done; a pack that hangs there past the import timeout, or whose import ends the child, is reported
(in ``/node_packs``) and never imported by the server or its workers. The child is then started
again for the packs after it.

Verdicts are remembered per pack in the user folder (``.weft-pack-probe.json``), keyed by the
content of the pack's Python files: a pack is tried again when it changes. A pack found safe is
also remembered for this machine (``~/.cache/weft/pack-probe-ok.json``, by content alone), so the
same pack in another user folder is not tried again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_FILE = ".weft-pack-probe.json"
START_TIMEOUT = 180.0  # seconds for the child to start (torch, Weft, the facade) before its first pack


def fingerprint(path: Path) -> str:
    """A hash of the names and contents of a pack's Python files (what its import runs)."""
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    digest = hashlib.sha1()
    for file in files[:5000]:
        try:
            content = file.read_bytes()
        except OSError:
            continue
        digest.update(str(file.relative_to(path)).encode() if path.is_dir() else b"")
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def machine_cache() -> Path:
    """Where packs found safe on this machine are remembered (by content)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "weft" / "pack-probe-ok.json"


def _write_json(path: Path, value) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(value, indent=1))
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("could not remember pack probe verdicts in %s: %s", path, exc)


def _read_cache(cache: Path | None) -> dict:
    try:
        found = json.loads(cache.read_text()) if cache is not None else {}
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "still running"
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


class _Child:
    """One probe child and the pipe it reports on."""

    def __init__(self, names: list[str], server_argv: list[str]) -> None:
        read_end, write_end = os.pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nodes.pack_probe", "--report-fd", str(write_end), "--packs", *names, "--",
             *server_argv], pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, env=env)
        os.close(write_end)
        self.pipe = os.fdopen(read_end, "rb", buffering=0)
        self._buffer = b""

    def next_line(self, timeout: float) -> dict | None:
        """The child's next report; ``{"closed": True}`` when its pipe closed (it ended), None when
        it said nothing in time."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.pipe], [], [], remaining)[0]:
                return None
            chunk = self.pipe.read(65536)
            if not chunk:
                return {"closed": True}
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def end(self) -> str:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.pipe.close()
        return _exit_reason(self.process.returncode)


def probe_packs(paths: list[Path], server_argv: list[str], timeout: float, cache: Path | None) -> dict[str, str]:
    """``{pack name: why the server must not import it}`` for the packs among ``paths`` that hang at
    import or end the process importing them."""
    remembered = _read_cache(cache)
    safe_here = _read_cache(machine_cache())
    verdicts = {}
    pending: list[Path] = []
    for path in paths:
        seen, content = remembered.get(str(path)), fingerprint(path)
        if isinstance(seen, dict) and seen.get("fingerprint") == content:
            verdicts[path.name if path.is_dir() else path.stem] = seen.get("problem")
        elif content in safe_here:
            verdicts[path.name if path.is_dir() else path.stem] = None
        else:
            pending.append(path)
    names = {path: path.name if path.is_dir() else path.stem for path in pending}
    while pending:
        child = _Child([names[p] for p in pending], server_argv)
        current: Path | None = None
        wait = START_TIMEOUT
        while True:
            report = child.next_line(wait)
            if report is None or report.get("closed"):  # silence past the timeout, or the child ended
                ended = report is not None
                reason = child.end()
                if current is None:
                    log.error("the pack probe did not get to the packs (%s); importing them untried", reason)
                    pending = []
                else:
                    problem = (f"ended the process importing it ({reason})" if ended else
                               f"its import did not finish within {timeout:g} s (tried in a separate process, "
                               "which was ended)")
                    verdicts[names[current]] = problem
                    _remember(remembered, current, problem)
                    pending.remove(current)
                break
            if "importing" in report:
                current = next(p for p in pending if names[p] == report["importing"])
                wait = timeout
            elif "done" in report:
                done = next(p for p in pending if names[p] == report["done"])
                verdicts[names[done]] = None
                _remember(remembered, done, None)
                pending.remove(done)
                current, wait = None, timeout
            elif report.get("finished"):
                child.end()
                pending = []
                break
    if cache is not None:
        _write_json(cache, remembered)
    newly_safe = {entry["fingerprint"]: True for entry in remembered.values()
                  if isinstance(entry, dict) and entry.get("problem") is None and entry.get("fingerprint")}
    if set(newly_safe) - set(safe_here):
        _write_json(machine_cache(), {**_read_cache(machine_cache()), **newly_safe})
    return {name: problem for name, problem in verdicts.items() if problem}


def _remember(remembered: dict, path: Path, problem: str | None) -> None:
    remembered[str(path)] = {"fingerprint": fingerprint(path), "problem": problem}


def progress_reporter(fd: int) -> Callable[[str, str], None]:
    report = os.fdopen(fd, "wb", buffering=0)

    def say(event: str, name: str) -> None:
        report.write(json.dumps({event: name}).encode() + b"\n")

    return say


def main(argv: list[str] | None = None) -> None:
    """The child: import the named packs one by one (with the server's flags), saying which."""
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--")
    own, server_argv = argv[:split], argv[split + 1:]
    fd = int(own[own.index("--report-fd") + 1])
    names = own[own.index("--packs") + 1:]
    import server  # noqa: PLC0415  (heavy: only the child imports it)
    from api.compat import PromptServer  # noqa: PLC0415

    # No import timeout of its own: the parent's clock decides, and ends this process.
    args = server.parse_args([*server_argv, "--custom-node-import-timeout", "1e9", "--disable-all-custom-nodes",
                              "--whitelist-custom-nodes", *names])
    say = progress_reporter(fd)
    server.build_node_runtime(args, PromptServer(None), on_import=say)
    say("finished", "all")
    os._exit(0)  # a pack's lingering threads must not keep the child alive


if __name__ == "__main__":
    main()
