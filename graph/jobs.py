"""The durable job queue and history, in SQLite (WAL, synchronous=FULL).

A job is committed before its id is returned, so an accepted job survives a crash. Jobs are
ordered by ``number`` (ComfyUI's: given by the client, else a counter; negative for ``front``),
then by arrival. A job that was running when the process died is put back once; if the process
dies on it again it is marked failed, so one poisonous job cannot crash the server forever.

Queue items use ComfyUI's tuple ``[number, prompt_id, prompt, extra_data, outputs_to_execute]``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt_id TEXT UNIQUE NOT NULL,
    number REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running')),
    prompt TEXT NOT NULL,
    extra_data TEXT NOT NULL,
    outputs TEXT NOT NULL,
    client_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_order ON jobs (state, number, seq);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt_id TEXT UNIQUE NOT NULL,
    entry TEXT NOT NULL,
    finished REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

#: Extra data keys that are secrets: never written to disk or history.
SECRET_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
MAX_ATTEMPTS = 2


def display_number(number: float) -> float | int:
    """Queue numbers are stored as REAL; whole ones are shown as ints, as ComfyUI does."""
    return int(number) if float(number).is_integer() else number


@dataclass
class Job:
    prompt_id: str
    number: float
    prompt: dict
    extra_data: dict
    outputs: list[str]
    client_id: str | None
    attempts: int

    def queue_item(self) -> list:
        return [display_number(self.number), self.prompt_id, self.prompt, self.extra_data, self.outputs]


class DuplicateJobError(ValueError):
    """The prompt id is already queued or in the history."""


class QueueFullError(RuntimeError):
    """The queue already holds as many pending jobs as it may."""


class JobStore:
    def __init__(self, path: str | Path, history_limit: int = 10_000) -> None:
        self.path = str(path)
        self.history_limit = history_limit
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- helpers -------------------------------------------------------------------------------
    def _tx(self):
        return _Transaction(self._db)

    @staticmethod
    def _job(row) -> Job:
        prompt_id, number, prompt, extra, outputs, client_id, attempts = row
        return Job(prompt_id, number, json.loads(prompt), json.loads(extra), json.loads(outputs), client_id, attempts)

    _JOB_COLUMNS = "prompt_id, number, prompt, extra_data, outputs, client_id, attempts"

    def next_number(self, front: bool = False) -> float:
        """A fresh queue number: after everything queued, or (front) before it."""
        with self._lock, self._tx():
            row = self._db.execute("SELECT value FROM counters WHERE name='number'").fetchone()
            value = (row[0] if row else 0) + 1
            self._db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES ('number', ?)", (value,))
        return float(-value if front else value)

    # -- queue ---------------------------------------------------------------------------------
    def submit(self, prompt_id: str, number: float, prompt: dict, extra_data: dict, outputs: list[str],
               client_id: str | None = None, max_pending: int | None = None) -> None:
        """Queue a job (committed when this returns); QueueFullError past ``max_pending``."""
        extra = {k: v for k, v in (extra_data or {}).items() if k not in SECRET_KEYS}
        with self._lock:
            try:
                with self._tx():
                    if max_pending is not None and self._db.execute(
                            "SELECT COUNT(*) FROM jobs WHERE state='pending'").fetchone()[0] >= max_pending:
                        raise QueueFullError(f"the queue holds {max_pending} pending jobs")
                    if self._db.execute("SELECT 1 FROM history WHERE prompt_id=?", (prompt_id,)).fetchone():
                        raise DuplicateJobError(prompt_id)
                    self._db.execute(
                        f"INSERT INTO jobs ({self._JOB_COLUMNS}, state, created) VALUES (?,?,?,?,?,?,0,'pending',?)",
                        (prompt_id, number, json.dumps(prompt), json.dumps(extra), json.dumps(outputs), client_id,
                         time.time()))
            except sqlite3.IntegrityError:
                raise DuplicateJobError(prompt_id) from None
            self._changed.notify_all()

    def exists(self, prompt_id: str) -> bool:
        with self._lock:
            return bool(self._db.execute("SELECT 1 FROM jobs WHERE prompt_id=? UNION ALL "
                                         "SELECT 1 FROM history WHERE prompt_id=?", (prompt_id, prompt_id)).fetchone())

    def claim_next(self, timeout: float | None = None) -> Job | None:
        """Take the first pending job and mark it running; wait up to ``timeout`` for one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                row = self._db.execute(f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE state='pending' "
                                       "ORDER BY number, seq LIMIT 1").fetchone()
                if row is not None:
                    job = self._job(row)
                    with self._tx():
                        self._db.execute("UPDATE jobs SET state='running', attempts=attempts+1 WHERE prompt_id=?",
                                         (job.prompt_id,))
                    job.attempts += 1
                    self._changed.notify_all()
                    return job
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def pending(self, limit: int | None = None) -> list[Job]:
        """Pending jobs in queue order (the first ``limit`` of them)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE state='pending' "
                                    "ORDER BY number, seq LIMIT ?", (-1 if limit is None else limit,)).fetchall()
        return [self._job(r) for r in rows]

    def claim(self, prompt_id: str) -> Job | None:
        """Take this pending job and mark it running; None when it is no longer pending."""
        with self._lock:
            row = self._db.execute(f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE prompt_id=? AND state='pending'",
                                   (prompt_id,)).fetchone()
            if row is None:
                return None
            job = self._job(row)
            with self._tx():
                self._db.execute("UPDATE jobs SET state='running', attempts=attempts+1 WHERE prompt_id=?",
                                 (prompt_id,))
            job.attempts += 1
            self._changed.notify_all()
            return job

    def running(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE state='running' ORDER BY seq").fetchall()
        return [self._job(r) for r in rows]

    def count_pending(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs WHERE state='pending'").fetchone()[0]

    def count_unfinished(self) -> int:
        """Jobs queued or running: each counts from its submission until its history entry is
        written (what ComfyUI's ``queue_remaining`` means to clients that then read /history)."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]

    def delete_pending(self, prompt_ids: list[str]) -> int:
        with self._lock, self._tx():
            deleted = 0
            for prompt_id in prompt_ids:
                deleted += self._db.execute("DELETE FROM jobs WHERE state='pending' AND prompt_id=?",
                                            (str(prompt_id),)).rowcount
        return deleted

    def clear_pending(self) -> int:
        with self._lock, self._tx():
            return self._db.execute("DELETE FROM jobs WHERE state='pending'").rowcount

    def finish(self, prompt_id: str, entry: dict) -> None:
        """Move a job into the history (one transaction: never lost, never both)."""
        with self._lock:
            with self._tx():
                self._db.execute("DELETE FROM jobs WHERE prompt_id=?", (prompt_id,))
                self._db.execute("INSERT OR REPLACE INTO history (prompt_id, entry, finished) VALUES (?,?,?)",
                                 (prompt_id, json.dumps(entry, default=str), time.time()))
                self._db.execute("DELETE FROM history WHERE seq <= (SELECT MAX(seq) FROM history) - ?",
                                 (self.history_limit,))
            self._changed.notify_all()

    def release(self, prompt_id: str) -> None:
        """A running job back to pending (its worker was lost; it keeps its place and attempts)."""
        with self._lock:
            with self._tx():
                self._db.execute("UPDATE jobs SET state='pending' WHERE prompt_id=? AND state='running'", (prompt_id,))
            self._changed.notify_all()

    def recover(self) -> list[tuple[Job, str]]:
        """After a restart: put interrupted running jobs back once; fail those that already had a retry.

        Returns the failed jobs with their message (the caller writes their history entries)."""
        failed = []
        with self._lock:
            for job in self.running():
                if job.attempts >= MAX_ATTEMPTS:
                    failed.append((job, f"Weft stopped {job.attempts} times while running this job; "
                                        "it was not retried again."))
                else:
                    with self._tx():
                        self._db.execute("UPDATE jobs SET state='pending' WHERE prompt_id=?", (job.prompt_id,))
            self._changed.notify_all()
        return failed

    # -- history -------------------------------------------------------------------------------
    def history(self, max_items: int | None = None, offset: int = 0) -> dict[str, Any]:
        """Newest last, like ComfyUI's dict order; ``offset`` counts from the oldest."""
        query = "SELECT prompt_id, entry FROM history ORDER BY seq"
        params: tuple = ()
        if max_items is not None or offset:
            query += " LIMIT ? OFFSET ?"
            params = (-1 if max_items is None else max_items, max(0, offset))
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return {pid: json.loads(entry) for pid, entry in rows}

    def history_tail(self, max_items: int) -> dict[str, Any]:
        """The newest ``max_items`` entries, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT prompt_id, entry FROM (SELECT seq, prompt_id, entry FROM history "
                                    "ORDER BY seq DESC LIMIT ?) ORDER BY seq", (max_items,)).fetchall()
        return {pid: json.loads(entry) for pid, entry in rows}

    def history_keys(self) -> list[tuple[int, str]]:
        """``(row number, prompt_id)`` of every finished job, oldest first (cheap: no entry is
        read). A row number is never reused, so it names one entry for good."""
        with self._lock:
            return self._db.execute("SELECT seq, prompt_id FROM history ORDER BY seq").fetchall()

    def history_rows(self, rows: list[int]) -> dict[int, dict]:
        """The entries of these row numbers (those still in the history)."""
        found: dict[int, dict] = {}
        for start in range(0, len(rows), 500):  # SQLite's host parameter limit
            chunk = rows[start:start + 500]
            with self._lock:
                fetched = self._db.execute(f"SELECT seq, entry FROM history WHERE seq IN "
                                           f"({','.join('?' * len(chunk))})", chunk).fetchall()
            found.update((seq, json.loads(entry)) for seq, entry in fetched)
        return found

    def history_entry(self, prompt_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT entry FROM history WHERE prompt_id=?", (prompt_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def delete_history(self, prompt_ids: list[str]) -> None:
        with self._lock, self._tx():
            for prompt_id in prompt_ids:
                self._db.execute("DELETE FROM history WHERE prompt_id=?", (str(prompt_id),))

    def clear_history(self) -> None:
        with self._lock, self._tx():
            self._db.execute("DELETE FROM history")

    def wait_for_change(self, timeout: float) -> None:
        with self._lock:
            self._changed.wait(timeout)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT (or ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self):
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type, exc, tb):
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
