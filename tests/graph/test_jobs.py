import threading

import pytest

from graph.jobs import DuplicateJobError, JobStore


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "jobs.sqlite3", history_limit=5)
    yield s
    s.close()


def submit(store, pid, front=False, number=None):
    store.submit(pid, number if number is not None else store.next_number(front), {"1": {}}, {"k": 1}, ["1"], "client")


def test_fifo_with_front_priority(store):
    submit(store, "a")
    submit(store, "b")
    submit(store, "c", front=True)
    assert [j.prompt_id for j in store.pending()] == ["c", "a", "b"]
    assert store.claim_next(timeout=0).prompt_id == "c"


def test_explicit_number_orders(store):
    submit(store, "a", number=5)
    submit(store, "b", number=1)
    assert store.claim_next(timeout=0).prompt_id == "b"


def test_secrets_never_stored(store):
    store.submit("a", 1, {}, {"auth_token_comfy_org": "x", "api_key_comfy_org": "y", "extra_pnginfo": {}}, [], None)
    assert store.pending()[0].extra_data == {"extra_pnginfo": {}}


def test_duplicate_prompt_id_refused(store):
    submit(store, "a")
    with pytest.raises(DuplicateJobError):
        submit(store, "a")
    job = store.claim_next(timeout=0)
    store.finish(job.prompt_id, {"status": {}})
    with pytest.raises(DuplicateJobError):
        submit(store, "a")


def test_delete_and_clear_pending(store):
    for pid in "abc":
        submit(store, pid)
    assert store.delete_pending(["b", "zzz"]) == 1
    assert [j.prompt_id for j in store.pending()] == ["a", "c"]
    assert store.clear_pending() == 2 and store.pending() == []


def test_running_job_is_not_deleted_by_clear(store):
    submit(store, "a")
    store.claim_next(timeout=0)
    store.clear_pending()
    assert [j.prompt_id for j in store.running()] == ["a"]


def test_history_capped_ordered_and_deletable(store):
    for i in range(7):
        submit(store, f"p{i}")
        store.finish(store.claim_next(timeout=0).prompt_id, {"n": i})
    history = store.history()
    assert list(history) == [f"p{i}" for i in range(2, 7)]
    assert list(store.history(max_items=2, offset=1)) == ["p3", "p4"]
    assert list(store.history_tail(2)) == ["p5", "p6"]
    assert store.history_entry("p6") == {"n": 6}
    store.delete_history(["p6"])
    assert store.history_entry("p6") is None
    store.clear_history()
    assert store.history() == {}


def test_persists_across_reopen(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    first = JobStore(path)
    submit(first, "a")
    submit(first, "b")
    first.close()
    second = JobStore(path)
    assert [j.prompt_id for j in second.pending()] == ["a", "b"]
    second.close()


def test_recover_retries_once_then_fails(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    submit(store, "a")
    assert store.claim_next(timeout=0).attempts == 1
    store.close()  # the process "died" while running a

    store = JobStore(path)
    assert store.recover() == []  # first death: put back
    job = store.claim_next(timeout=0)
    assert job.prompt_id == "a" and job.attempts == 2
    store.close()  # died again

    store = JobStore(path)
    [(failed, message)] = store.recover()
    assert failed.prompt_id == "a" and "not retried" in message
    store.close()


def test_claim_waits_for_submission(store):
    got = []
    thread = threading.Thread(target=lambda: got.append(store.claim_next(timeout=5)))
    thread.start()
    submit(store, "late")
    thread.join(5)
    assert got and got[0].prompt_id == "late"


def test_queue_limit_is_enforced_atomically(store):
    from graph.jobs import QueueFullError
    for pid in "ab":
        store.submit(pid, store.next_number(), {}, {}, [], None, max_pending=2)
    with pytest.raises(QueueFullError):
        store.submit("c", store.next_number(), {}, {}, [], None, max_pending=2)
    assert [j.prompt_id for j in store.pending()] == ["a", "b"]
