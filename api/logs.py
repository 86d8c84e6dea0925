"""A bounded in-memory copy of the server log, for /internal/logs."""

from __future__ import annotations

import collections
import logging
import threading
import time


class LogBuffer(logging.Handler):
    def __init__(self, capacity: int = 2000) -> None:
        super().__init__()
        self._entries: collections.deque = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception:
            return
        with self._lock:
            self._entries.append({"t": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created)),
                                  "m": message})

    def entries(self) -> list[dict]:
        with self._lock:
            return list(self._entries)
