"""Packs never install anything on their own initiative while Weft imports them.

Some packs run ``pip install`` (through ``subprocess``, ``os.system`` or pip's own module) when
imported. While a pack is being imported, :class:`InstallGuard` refuses that: the call raises
:class:`PackInstallBlocked` inside the pack, and the attempt is recorded for the pack's report
(``GET /node_packs``), so the user can install the requirement deliberately.

The guard is a Python audit hook (PEP 578). Hooks cannot be removed, so there is one guard per
process (:func:`install_guard`), armed only while a pack imports.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Iterator

#: Commands with these words are installs (pip, pip3, python -m pip, uv pip, easy_install).
INSTALL_WORDS = ("pip", "pip3", "easy_install", "uv")


class PackInstallBlocked(PermissionError):
    """A node pack tried to run an installer while it was being imported."""


class PackPipImportBlocked(ImportError):
    """A node pack tried to import pip (to install in-process) while it was being imported; an
    ImportError, so packs that try ``import pip`` and carry on without it still load."""


def _is_install_command(argv) -> bool:
    if isinstance(argv, (str, bytes)):
        words = (argv.decode(errors="replace") if isinstance(argv, bytes) else argv).split()
    else:
        words = [str(w) for w in (argv or ())]
    names = [w.replace("\\", "/").rsplit("/", 1)[-1] for w in words]
    if "easy_install" in names:
        return True
    return any(n.startswith(INSTALL_WORDS) for n in names) and "install" in names


class InstallGuard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: str | None = None
        self._attempts: list[str] = []

    @contextlib.contextmanager
    def armed(self, pack_name: str) -> Iterator[list[str]]:
        """Block installs while the block runs; yields the list the attempts are added to."""
        with self._lock:
            self._active, self._attempts = pack_name, []
        try:
            yield self._attempts
        finally:
            with self._lock:
                self._active = None

    def __call__(self, event: str, args: tuple) -> None:
        if self._active is None:
            return
        command = None
        if event == "subprocess.Popen" and len(args) > 1 and _is_install_command(args[1]):
            command = " ".join(map(str, args[1])) if not isinstance(args[1], (str, bytes)) else str(args[1])
        elif event in ("os.system", "os.posix_spawn", "os.exec") and args and _is_install_command(
                args[0] if event == "os.system" else (args[1] if len(args) > 1 else ())):
            found = args[0] if event == "os.system" else args[1]
            command = (found.decode(errors="replace") if isinstance(found, bytes)
                       else found if isinstance(found, str) else " ".join(map(str, found)))
        elif event == "import" and args and args[0] in ("pip", "pip._internal") and sys.modules.get(args[0]) is None:
            command = f"import {args[0]}"
        if command is not None:
            self._attempts.append(command)
            message = (f"Weft does not let node packs install packages while they load "
                       f"(attempted: {command!r}); install the pack's requirements yourself")
            raise PackPipImportBlocked(message) if event == "import" else PackInstallBlocked(message)


_guard: InstallGuard | None = None
_guard_lock = threading.Lock()


def install_guard() -> InstallGuard:
    """The process's guard, its audit hook added on first use."""
    global _guard
    with _guard_lock:
        if _guard is None:
            _guard = InstallGuard()
            sys.addaudithook(_guard)
        return _guard
