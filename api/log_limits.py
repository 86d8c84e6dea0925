"""No flood of one log line can fill the disk: each message template (logger, level, format
string) is written at most ``burst`` times per ``window`` seconds; past that its lines are counted,
and the first line of that template after the window says how many were left out."""

from __future__ import annotations

import logging
import threading
import time


class RateLimitFilter(logging.Filter):
    def __init__(self, burst: int = 20, window: float = 10.0) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self._seen: dict[tuple, list] = {}  # template -> [window start, written, left out]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, "weft_rate_limit", None)  # one decision per record, for every handler
        if decided is None:
            decided = record.weft_rate_limit = self._decide(record)
        return decided

    def _decide(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window:
                dropped = entry[2] if entry is not None else 0
                self._seen[key] = [now, 1, 0]
                if len(self._seen) > 10_000:  # many distinct templates: forget the oldest windows
                    for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:5_000]:
                        del self._seen[old]
                if dropped:
                    record.msg = f"{record.msg} [and {dropped} more like it in the last {self.window:g} s, not written]"
                return True
            if entry[1] < self.burst:
                entry[1] += 1
                return True
            entry[2] += 1
            return False


def limit_log_floods(burst: int = 20, window: float = 10.0) -> None:
    """Put the limit on every handler of the root logger (call after they are set up)."""
    limiter = RateLimitFilter(burst, window)
    for handler in logging.getLogger().handlers:
        handler.addFilter(limiter)
