"""Where saving nodes write, and how: ComfyUI's numbered names, kept inside their folder, written atomically.

A save node turns a user-supplied ``filename_prefix`` such as ``"portraits/%year%/ComfyUI"``
into ``<folder>/<subfolders>/<name>_<counter:05>_.<ext>`` (ComfyUI's ``get_save_image_path``
naming): ``%width% %height% %year% %month% %day% %hour% %minute% %second%`` are substituted,
the last path part is the file name, the parts before it are subfolders, and the counter
continues after the highest one already in that subfolder. ``%batch_num%`` stays in the name
until each image of a batch is written.

Unlike ComfyUI, the prefix goes through :func:`graph.folders.safe_join`, so ``..``, absolute
paths, backslashes, NUL bytes and symlinks leading out of the folder are refused rather than
normalised; and a file is never overwritten (a name already taken moves the counter on).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .atomic import write_atomic
from .folders import UnsafePathError, check_relative_name, safe_join

BATCH_NUM = "%batch_num%"


def expand_prefix(prefix: str, width: int = 0, height: int = 0, now: time.struct_time | None = None) -> str:
    """Substitute the size and local-time variables ComfyUI allows in a filename prefix."""
    if "%" not in prefix:
        return prefix
    now = now or time.localtime()
    values = {"%width%": str(width), "%height%": str(height), "%year%": str(now.tm_year),
              "%month%": f"{now.tm_mon:02d}", "%day%": f"{now.tm_mday:02d}",
              "%hour%": f"{now.tm_hour:02d}", "%minute%": f"{now.tm_min:02d}",
              "%second%": f"{now.tm_sec:02d}"}
    for variable, value in values.items():
        prefix = prefix.replace(variable, value)
    return prefix


def _counter_pattern(filename: str) -> re.Pattern:
    # `<filename>_<digits>` followed by `_` or the end, as ComfyUI parses it; %batch_num% stands
    # for any batch number so a batch's files count too.
    escaped = re.escape(filename).replace(re.escape(BATCH_NUM), "[0-9]+")
    return re.compile(rf"{escaped}_([0-9]+)(?:_|$)")


def next_counter(folder: Path, filename: str) -> int:
    """One more than the highest counter of ``filename`` in ``folder`` (1 when there is none)."""
    pattern = _counter_pattern(filename)
    highest = 0
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 1
    for name in names:
        found = pattern.match(name)
        if found:
            highest = max(highest, int(found.group(1)))
    return highest + 1


@dataclass(frozen=True)
class SaveTarget:
    """Where one save node's files go."""

    folder: Path  # absolute, inside the root folder; exists
    filename: str  # the base name, may still hold %batch_num%
    subfolder: str  # "/"-joined path of `folder` below the root ("" for the root itself)
    counter: int  # the first counter to try

    def file_name(self, counter: int, batch_number: int, extension: str, trailer: str = "_") -> str:
        """``<name>_<counter>_.<extension>``; SaveImageAdvanced's names have no ``trailer``."""
        name = self.filename.replace(BATCH_NUM, str(batch_number))
        return f"{name}_{counter:05}{trailer}.{extension}"


def resolve_save_target(root: str | os.PathLike, filename_prefix: str, width: int = 0,
                        height: int = 0, now: time.struct_time | None = None) -> SaveTarget:
    """The folder, base name and first counter for ``filename_prefix`` below ``root``.

    Raises UnsafePathError when the prefix would leave ``root`` or names no file.
    """
    expanded = expand_prefix(filename_prefix, width, height, now)
    parts = check_relative_name(expanded)
    if not parts:
        raise UnsafePathError(f"filename prefix {filename_prefix!r} names no file")
    subfolder = "/".join(parts[:-1])
    folder = safe_join(root, subfolder) if subfolder else safe_join(root)
    folder.mkdir(parents=True, exist_ok=True)
    # mkdir may have followed a symlink created meanwhile: check the real place again
    folder = safe_join(root, subfolder) if subfolder else safe_join(root)
    return SaveTarget(folder=folder, filename=parts[-1], subfolder=subfolder,
                      counter=next_counter(folder, parts[-1]))


def write_numbered(target: SaveTarget, counter: int, batch_number: int, extension: str,
                   data: bytes, max_tries: int = 10000, trailer: str = "_") -> tuple[str, int]:
    """Write ``data`` under the first free counter from ``counter`` on (an existing file is
    never replaced); returns the file name and the counter used."""
    for _ in range(max_tries):
        name = target.file_name(counter, batch_number, extension, trailer)
        try:
            write_atomic(target.folder / name, data)
            return name, counter
        except FileExistsError:
            counter += 1
    raise FileExistsError(f"no free file name for {target.filename!r} in {target.folder}")
