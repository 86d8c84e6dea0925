"""api/log_limits.py: a flood of one log line is written a few times, then counted."""

from __future__ import annotations

import logging

from api.log_limits import RateLimitFilter


def test_a_flood_of_one_message_is_cut_and_counted(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("api.log_limits.time.monotonic", lambda: clock[0])
    limiter = RateLimitFilter(burst=3, window=10.0)
    logger = logging.getLogger("test.flood")

    def record(msg, *args):
        return logger.makeRecord("test.flood", logging.WARNING, __file__, 1, msg, args, None)

    written = [limiter.filter(record("client %s refused", n)) for n in range(1000)]
    assert sum(written) == 3
    assert limiter.filter(record("another message"))  # other templates are not affected
    clock[0] += 10.0
    summary = record("client %s refused", 1001)
    assert limiter.filter(summary) and "997 more like it" in summary.msg


def test_one_decision_per_record_for_every_handler():
    limiter = RateLimitFilter(burst=2, window=10.0)
    logger = logging.getLogger("test.handlers")
    records = [logger.makeRecord("test.handlers", logging.INFO, __file__, 1, "same", (), None) for _ in range(4)]
    # two handlers share the limiter: each record is judged once, the same way for both
    seen = [(limiter.filter(r), limiter.filter(r)) for r in records]
    assert seen == [(True, True), (True, True), (False, False), (False, False)]
