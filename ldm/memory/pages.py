"""Give back the RAM of memory-mapped checkpoint tensors once a converted copy is in use.

Checkpoints are memory-mapped (``ldm.loading.checkpoint``): converting a weight to the compute dtype
reads its pages, and those file pages then count in the process's resident set for as long as the
mapping lives, beside the converted copy — on a CPU that doubles the weights' RAM. The stored
tensors are never written (``ldm.memory.residency`` keeps them as *originals*), so their pages can
be dropped with ``madvise(MADV_DONTNEED)``: the next read faults them in again from the file (the
page cache, usually), with the same bytes.

Only ranges inside a private mapping of a regular file are touched — never anonymous memory,
where the same call would zero the data. Linux only; elsewhere, or on any doubt, nothing happens.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import sys
from typing import Iterable

import torch

log = logging.getLogger(__name__)

MADV_DONTNEED = 4  # Linux
PAGE = mmap.PAGESIZE


def file_mappings(maps_path: str = "/proc/self/maps") -> list[tuple[int, int]]:
    """``(start, end)`` of this process's private mappings of regular files."""
    ranges = []
    try:
        with open(maps_path) as handle:
            for line in handle:
                parts = line.split(None, 5)
                if len(parts) < 6:
                    continue
                span, perms, _offset, _dev, inode, path = parts
                path = path.strip()
                if inode == "0" or not path.startswith("/") or path.startswith("/dev/") or "(deleted)" in path:
                    continue
                if not perms.startswith("r") or perms[3] != "p":
                    continue
                start, end = (int(x, 16) for x in span.split("-"))
                ranges.append((start, end))
    except OSError:
        return []
    return sorted(ranges)


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        return libc
    except (OSError, AttributeError):
        return None


def release_file_pages(tensors: Iterable[torch.Tensor], mappings: list[tuple[int, int]] | None = None) -> int:
    """Drop the resident pages of ``tensors`` that lie in file mappings; returns the bytes advised.

    ``mappings`` (from :func:`file_mappings`) may be passed in when releasing in many small calls.
    """
    libc = _libc()
    if libc is None:
        return 0
    tensors = [t for t in tensors if t.device.type == "cpu" and t.is_contiguous() and t.numel() > 0]
    if not tensors:
        return 0
    if mappings is None:
        mappings = file_mappings()
    released = 0
    for tensor in tensors:
        start = tensor.data_ptr()
        end = start + tensor.numel() * tensor.element_size()
        if not any(lo <= start and end <= hi for lo, hi in mappings):
            continue
        first = -(-start // PAGE) * PAGE  # whole pages inside the tensor only
        last = end // PAGE * PAGE
        if last <= first:
            continue
        if libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), MADV_DONTNEED) == 0:
            released += last - first
        else:
            log.debug("madvise failed for a %d-byte range (errno %d)", last - first, ctypes.get_errno())
    return released
