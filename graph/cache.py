"""The output cache: node results kept across prompts, keyed by input signature.

A node's signature covers its class, its literal inputs, its ``IS_CHANGED`` value and, through
its links, the signatures of all its ancestors — so a result is reused exactly when nothing
upstream changed. The cache is bounded twice: by entry count (LRU) and by RAM pressure (when the
machine's available memory falls under a floor, least recently used entries go first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class CachedOutput:
    outputs: list  # one list of values per output slot
    ui: dict | None
    nbytes: int


def estimate_nbytes(value: Any, _depth: int = 0) -> int:
    """Bytes held by tensors/arrays inside a value (duck-typed on ``nbytes``; graph/ has no torch)."""
    if _depth > 6:
        return 0
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(value, dict):
        return sum(estimate_nbytes(v, _depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(estimate_nbytes(v, _depth + 1) for v in value)
    return 0


def available_ram_bytes() -> int | None:
    try:
        import psutil  # optional at this layer: without it the RAM floor is not enforced
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


class OutputCache:
    """LRU of node outputs by signature. ``max_entries=0`` disables caching across prompts."""

    def __init__(self, max_entries: int = 256, min_free_ram_bytes: int = 0,
                 ram_probe: Callable[[], int | None] = available_ram_bytes) -> None:
        self.max_entries = max_entries
        self.min_free_ram_bytes = min_free_ram_bytes
        self._ram_probe = ram_probe
        self._entries: OrderedDict[str, CachedOutput] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, signature: str) -> CachedOutput | None:
        with self._lock:
            entry = self._entries.get(signature)
            if entry is not None:
                self._entries.move_to_end(signature)
            return entry

    def __contains__(self, signature: str) -> bool:
        with self._lock:
            return signature in self._entries

    def put(self, signature: str, outputs: list, ui: dict | None) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._entries[signature] = CachedOutput(outputs, ui, estimate_nbytes(outputs))
            self._entries.move_to_end(signature)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        self.relieve_ram_pressure()

    def relieve_ram_pressure(self) -> int:
        """Drop least recently used entries while available RAM is under the floor; returns how many."""
        if self.min_free_ram_bytes <= 0:
            return 0
        dropped = 0
        while True:
            free = self._ram_probe()
            if free is None or free >= self.min_free_ram_bytes:
                return dropped
            with self._lock:
                if not self._entries:
                    return dropped
                self._entries.popitem(last=False)
            dropped += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())
