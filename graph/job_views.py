"""Jobs as one list: the queue and the history seen through ComfyUI's ``/jobs`` shape.

ComfyUI's frontend (1.3x and later) reads its queue and history panels from ``GET /jobs``: every
job, pending, running or finished, as one flat record (id, status, create_time, a preview output,
counts, the error of a failed run), filtered by status and paged. This module turns Weft's queue
items and history entries into those records; ``api.routes.jobs`` serves them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED = "pending", "in_progress", "completed", "failed", "cancelled"
STATUSES = (PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED)
#: Output kinds the frontend can show as a job's preview.
PREVIEWABLE = frozenset({"images", "video", "audio", "3d", "text"})


def _created(extra_data: Any) -> int:
    value = extra_data.get("create_time") if isinstance(extra_data, dict) else None
    return int(value) if isinstance(value, (int, float)) else 0


def _workflow_id(extra_data: Any) -> str | None:
    info = extra_data.get("extra_pnginfo") if isinstance(extra_data, dict) else None
    workflow = info.get("workflow") if isinstance(info, dict) else None
    value = workflow.get("id") if isinstance(workflow, dict) else None
    return str(value) if value is not None else None


def _without_none(record: dict) -> dict:
    return {k: v for k, v in record.items() if v is not None}


def queued_job(item: list, status: str, detail: bool = False) -> dict:
    """A pending or running queue item ``[number, prompt_id, prompt, extra_data, outputs]``."""
    number, prompt_id, prompt, extra_data = item[0], item[1], item[2], item[3]
    record = _without_none({"id": prompt_id, "status": status, "priority": number, "create_time": _created(extra_data),
                            "outputs_count": 0, "previewable_outputs_count": 0,
                            "workflow_id": _workflow_id(extra_data)})
    if detail:
        record["workflow"] = {"prompt": prompt, "extra_data": extra_data}
    return record


def _output_items(outputs: dict) -> Iterable[tuple[str, str, Any]]:
    for node_id, ui in outputs.items():
        if not isinstance(ui, dict):
            continue
        for kind, items in ui.items():
            if kind == "animated" or not isinstance(items, list):
                continue
            for item in items:
                yield str(node_id), kind, item


def _summary(outputs: dict) -> tuple[int, int, dict | None]:
    """(outputs counted, previewable ones, the preview): a saved file first, then any media."""
    count = previewable = 0
    saved = other = None
    for node_id, kind, item in _output_items(outputs):
        if not isinstance(item, dict):
            continue  # text values are shown with the node, not counted as files
        count += 1
        if kind not in PREVIEWABLE and not str(item.get("format", "")).startswith(("video/", "audio/")):
            continue
        previewable += 1
        preview = {**item, "nodeId": node_id, "mediaType": item.get("mediaType", kind)}
        if item.get("type") == "output" and saved is None:
            saved = preview
        elif other is None:
            other = preview
    return count, previewable, saved or other


def _execution_times(status: dict) -> tuple[int | None, int | None, dict | None, bool]:
    start = end = error = None
    interrupted = False
    for entry in status.get("messages") or ():
        if not (isinstance(entry, (list, tuple)) and len(entry) >= 2 and isinstance(entry[1], dict)):
            continue
        event, data = entry[0], entry[1]
        if event == "execution_start":
            start = data.get("timestamp")
        elif event in ("execution_success", "execution_error", "execution_interrupted"):
            end = data.get("timestamp")
            error = data if event == "execution_error" else error
            interrupted = interrupted or event == "execution_interrupted"
    return start, end, error, interrupted


def finished_job(prompt_id: str, entry: dict, detail: bool = False) -> dict:
    """A history entry ``{"prompt": [...], "outputs", "status", "meta"}``."""
    item = entry.get("prompt") or [0, prompt_id, {}, {}, []]
    extra_data = item[3] if len(item) > 3 else {}
    status = entry.get("status") or {}
    start, end, error, interrupted = _execution_times(status)
    if status.get("status_str") == "error":
        state = CANCELLED if interrupted else FAILED
    else:
        state = COMPLETED
    outputs = entry.get("outputs") or {}
    count, previewable, preview = _summary(outputs)
    record = _without_none({
        "id": prompt_id, "status": state, "priority": item[0], "create_time": _created(extra_data) or start or 0,
        "execution_start_time": start, "execution_end_time": end, "execution_error": error,
        "outputs_count": count, "previewable_outputs_count": previewable, "preview_output": preview,
        "workflow_id": _workflow_id(extra_data)})
    if detail:
        record.update(outputs=outputs, execution_status=status,
                      workflow={"prompt": item[2] if len(item) > 2 else {}, "extra_data": extra_data})
    return record


class FinishedJobs:
    """The records of finished jobs, each made once: a history entry never changes after it is
    written (it can only be deleted), while a front end asks for the list on every queue change
    and one entry may carry a whole UI workflow. Reading the history's ids is cheap; only new
    entries are read and parsed. One per server (the app state holds it)."""

    def __init__(self) -> None:
        self._records: dict[int, dict] = {}  # by the history's row number
        self._lock = threading.Lock()

    def records(self, store) -> list[dict]:
        """Every finished job of ``store`` (a graph.jobs.JobStore), oldest first."""
        with self._lock:
            keys = store.history_keys()
            ids = dict(keys)
            new = [seq for seq, _ in keys if seq not in self._records]
            for seq, entry in store.history_rows(new).items():
                self._records[seq] = finished_job(ids[seq], entry)
            for seq in [seq for seq in self._records if seq not in ids]:  # deleted since
                del self._records[seq]
            return [self._records[seq] for seq, _ in keys if seq in self._records]


def parse_statuses(raw: str | None) -> set[str]:
    """``status=a,b`` → the set; every status when absent. Raises ValueError for an unknown one."""
    if not raw:
        return set(STATUSES)
    wanted = {s.strip() for s in raw.split(",") if s.strip()}
    unknown = wanted - set(STATUSES)
    if unknown:
        raise ValueError(f"unknown job status {', '.join(sorted(unknown))} (known: {', '.join(STATUSES)})")
    return wanted


def page(jobs: list[dict], *, sort_by: str = "create_time", descending: bool = True, offset: int = 0,
         limit: int | None = None) -> dict:
    """The ``{"jobs": [...], "pagination": {...}}`` answer: sorted, then one page of it."""
    if sort_by == "execution_duration":
        def key(job: dict) -> float:
            start, end = job.get("execution_start_time"), job.get("execution_end_time")
            return end - start if start and end else 0
    else:
        def key(job: dict) -> float:
            return job.get("create_time") or 0
    ordered = sorted(jobs, key=key, reverse=descending)
    offset = max(0, offset)
    chosen = ordered[offset:] if limit is None else ordered[offset:offset + max(0, limit)]
    return {"jobs": chosen, "pagination": {"offset": offset, "limit": limit if limit is not None else len(chosen),
                                           "total": len(ordered),
                                           "has_more": offset + len(chosen) < len(ordered)}}
