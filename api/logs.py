"""A bounded in-memory copy of the server log, for /internal/logs, and its live feed to the
websocket clients that subscribed (/internal/logs/subscribe: the log panel of ComfyUI's frontend)."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

#: The terminal size reported with log entries (the frontend sizes its log panel from it).
TERMINAL_SIZE = {"cols": 120, "rows": 40}


class LogBuffer(logging.Handler):
    def __init__(self, capacity: int = 2000) -> None:
        super().__init__()
        self._entries: collections.deque = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        #: Called with each new entry, from whatever thread logged it (set by the server).
        self.listener: Callable[[dict], None] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception:
            return
        entry = {"t": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created)), "m": message}
        with self._lock:
            self._entries.append(entry)
        if self.listener is not None:
            self.listener(entry)

    def entries(self) -> list[dict]:
        with self._lock:
            return list(self._entries)
