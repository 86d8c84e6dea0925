"""graph.job_views: queue items and history entries as ComfyUI's job records, and the cache that
reads each finished entry once."""

from __future__ import annotations

import pytest

from graph import job_views
from graph.jobs import JobStore
from graph.worker import history_entry


def _entry(store: JobStore, prompt_id: str, status: str, outputs: dict, messages: list, created: int) -> dict:
    store.submit(prompt_id, store.next_number(), {"1": {"class_type": "X", "inputs": {}}},
                 {"create_time": created, "extra_pnginfo": {"workflow": {"id": "wf-1"}}}, ["1"])
    job = store.claim_next(0)
    entry = history_entry(job, status, outputs, messages, {})
    store.finish(prompt_id, entry)
    return entry


SAVED = {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}
TEMP = {"images": [{"filename": "p.png", "subfolder": "", "type": "temp"}]}


def test_finished_records(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    ok = _entry(store, "ok", "success", {"5": TEMP, "9": SAVED, "3": {"text": ["hi"]}},
                [["execution_start", {"timestamp": 10}], ["execution_success", {"timestamp": 25}]], 7)
    record = job_views.finished_job("ok", ok)
    assert record["status"] == "completed" and record["create_time"] == 7 and record["workflow_id"] == "wf-1"
    assert (record["execution_start_time"], record["execution_end_time"]) == (10, 25)
    assert record["outputs_count"] == 2 and record["previewable_outputs_count"] == 2
    assert record["preview_output"] == {**SAVED["images"][0], "nodeId": "9", "mediaType": "images"}
    failed = _entry(store, "bad", "error", {}, [["execution_error", {"exception_message": "boom"}]], 8)
    assert job_views.finished_job("bad", failed)["execution_error"] == {"exception_message": "boom"}
    stopped = _entry(store, "stop", "error", {}, [["execution_interrupted", {"timestamp": 3}]], 9)
    assert job_views.finished_job("stop", stopped)["status"] == "cancelled"
    detail = job_views.finished_job("ok", ok, detail=True)
    assert detail["outputs"]["9"] == SAVED and detail["workflow"]["prompt"]["1"]["class_type"] == "X"


def test_queued_records_and_paging():
    item = [3, "p", {"1": {}}, {"create_time": 5}, ["1"]]
    assert job_views.queued_job(item, job_views.PENDING) == {
        "id": "p", "status": "pending", "priority": 3, "create_time": 5, "outputs_count": 0,
        "previewable_outputs_count": 0}
    jobs = [{"id": str(i), "create_time": i} for i in range(5)]
    page = job_views.page(jobs, offset=1, limit=2)
    assert [j["id"] for j in page["jobs"]] == ["3", "2"]
    assert page["pagination"] == {"offset": 1, "limit": 2, "total": 5, "has_more": True}
    assert [j["id"] for j in job_views.page(jobs, descending=False)["jobs"]] == ["0", "1", "2", "3", "4"]
    assert job_views.parse_statuses("completed, failed") == {"completed", "failed"}
    with pytest.raises(ValueError, match="sleeping"):
        job_views.parse_statuses("sleeping")


def test_finished_jobs_reads_each_entry_once_and_forgets_deleted_ones(tmp_path, monkeypatch):
    store = JobStore(tmp_path / "jobs.sqlite3")
    for n in range(3):
        _entry(store, f"j{n}", "success", {}, [], n)
    cache = job_views.FinishedJobs()
    read = []
    original = store.history_rows
    monkeypatch.setattr(store, "history_rows", lambda rows: read.append(list(rows)) or original(rows))
    assert [r["id"] for r in cache.records(store)] == ["j0", "j1", "j2"]
    _entry(store, "j3", "success", {}, [], 3)
    store.delete_history(["j1"])
    assert [r["id"] for r in cache.records(store)] == ["j0", "j2", "j3"]
    assert [len(rows) for rows in read] == [3, 1]  # only the new entry was read the second time
