"""Atomic file writes: a temporary file in the same folder, fsync, then publish under the name.

A reader (or a crash) never sees half a file: either nothing / the old content, or the new one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _fsync_directory(folder: Path) -> None:
    """Make the new directory entry itself durable (best effort: not every platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (0o666 less the umask). mkstemp makes
    0o600 files, which would hide saved images from other users of the machine. The umask is
    read without setting it: ``os.umask`` swaps a process-wide value, which is racy in threads."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    return 0o644


def _publish_new(temp_name: str, path: Path) -> None:
    try:
        os.link(temp_name, path)  # atomic, and refuses an existing name
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: check, then rename
        if os.path.lexists(path):
            raise FileExistsError(path) from None
        os.replace(temp_name, path)


def write_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` so that readers see the whole file or nothing.

    With ``overwrite`` False an existing name is never replaced (FileExistsError); with True the
    file is swapped in by an atomic rename. The temporary file never outlives the call.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".weft-", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temp_name, path)
        else:
            _publish_new(temp_name, path)
        _fsync_directory(path.parent)
    finally:
        if os.path.lexists(temp_name):
            os.unlink(temp_name)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write (or replace) ``path`` atomically."""
    write_atomic(path, data, overwrite=True)


def create_exclusive(path: str | os.PathLike, data: bytes) -> bool:
    """Write ``path`` only if nothing is there yet; False if the name was taken."""
    try:
        write_atomic(path, data, overwrite=False)
    except FileExistsError:
        return False
    return True
