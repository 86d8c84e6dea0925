import threading
import time

import pytest

from graph.cache import OutputCache
from graph.executor import Executor
from graph.validation import validate_prompt


def node(class_type, **inputs):
    return {"class_type": class_type, "inputs": inputs}


class Recorder:
    def __init__(self):
        self.events = []

    def __call__(self, event, data):
        self.events.append((event, data))

    def of(self, event):
        return [d for e, d in self.events if e == event]


def run(executor, prompt, prompt_id="p", registry=None):
    result = validate_prompt(prompt, executor.registry)
    assert result.ok, result.node_errors or result.error
    return executor.execute(prompt_id, result.prompt, result.outputs)


@pytest.fixture
def events():
    return Recorder()


@pytest.fixture
def executor(registry, events):
    return Executor(registry, OutputCache(max_entries=100), emit=events)


def chain_prompt(seed=1, offset=10):
    return {"1": node("Number", value=seed), "2": node("Add", a=["1", 0], b=offset),
            "3": node("Add", a=["2", 0], b=1), "4": node("Sink", value=["3", 0]),
            "5": node("Number", value=99)}  # not an ancestor of any output: never runs


def test_runs_only_ancestors_once_in_order(executor, calls, events):
    outcome = run(executor, chain_prompt())
    assert outcome.status == "success"
    assert outcome.outputs == {"4": {"values": [12]}}
    assert calls == {"Number": 1, "Add": 2, "Sink": 1}
    order = [d["node"] for d in events.of("executing") if d["node"] is not None]
    assert order == ["1", "2", "3", "4"]
    assert events.of("executing")[-1]["node"] is None


def test_source_pending_for_another_node_is_not_a_cycle(executor, calls):
    # 3 needs 1 and 2; 2 needs 1 too, which is already pushed (for 3) but not yet run.
    prompt = {"1": node("Number", value=2), "2": node("Add", a=["1", 0], b=1),
              "3": node("Add", a=["1", 0], b=["2", 0]), "4": node("Sink", value=["3", 0])}
    outcome = run(executor, prompt)
    assert outcome.status == "success", outcome.messages
    assert outcome.outputs == {"4": {"values": [5]}}
    assert calls == {"Number": 1, "Add": 2, "Sink": 1}


def test_shared_ancestor_runs_once(executor, calls):
    prompt = {"1": node("Number", value=2), "2": node("Add", a=["1", 0], b=["1", 0]),
              "3": node("Sink", value=["2", 0]), "4": node("Sink", value=["1", 0])}
    outcome = run(executor, prompt)
    assert calls["Number"] == 1 and outcome.outputs["3"] == {"values": [4]}


def test_requeue_unchanged_runs_nothing(executor, calls, events):
    run(executor, chain_prompt())
    calls.clear()
    outcome = run(executor, chain_prompt(), prompt_id="q")
    assert sum(calls.values()) == 0
    assert outcome.outputs == {"4": {"values": [12]}}  # replayed from the cache
    cached = events.of("execution_cached")[-1]["nodes"]
    assert {"1", "2", "3", "4"} <= set(cached)


def test_changing_one_input_reruns_only_downstream(executor, calls):
    run(executor, chain_prompt(offset=10))
    calls.clear()
    outcome = run(executor, chain_prompt(offset=20), prompt_id="q")
    assert calls == {"Add": 2, "Sink": 1}  # "1" is reused; 2, 3, 4 depend on the change
    assert outcome.outputs["4"] == {"values": [22]}


def test_cache_is_shared_between_prompts_by_content(executor, calls):
    run(executor, chain_prompt())
    calls.clear()
    renamed = {"a": node("Number", value=1), "b": node("Add", a=["a", 0], b=10), "c": node("Sink", value=["b", 0])}
    run(executor, renamed, prompt_id="q")
    assert calls == {"Sink": 1}  # Number and Add reused although their ids differ


def test_is_changed_nan_always_reruns_and_value_controls_reuse(executor, calls):
    from tests.graph.testpack import Versioned
    volatile = {"1": node("Volatile", value=1), "2": node("Sink", value=["1", 0])}
    run(executor, volatile)
    run(executor, volatile, prompt_id="q")
    assert calls["Volatile"] == 2
    versioned = {"1": node("Versioned", value=1), "2": node("Sink", value=["1", 0])}
    run(executor, versioned, prompt_id="r")
    run(executor, versioned, prompt_id="s")
    assert calls["Versioned"] == 1
    Versioned.VERSION["value"] = 2
    try:
        run(executor, versioned, prompt_id="t")
    finally:
        Versioned.VERSION["value"] = 1
    assert calls["Versioned"] == 2


def test_not_idempotent_does_not_share_with_twin(executor, calls):
    prompt = {"1": node("Unstable", value=1), "2": node("Unstable", value=1),
              "3": node("Sink", value=["1", 0]), "4": node("Sink", value=["2", 0])}
    run(executor, prompt)
    assert calls["Unstable"] == 2


def test_lazy_branch_not_taken_never_runs(executor, calls):
    prompt = {"1": node("Number", value=1), "2": node("Slow", value=5, seconds=0.0),
              "3": node("Choose", pick_a=True, a=["1", 0], b=["2", 0]), "4": node("Sink", value=["3", 0])}
    outcome = run(executor, prompt)
    assert outcome.outputs["4"] == {"values": [1]}
    assert calls["Slow"] == 0 and calls["Number"] == 1
    prompt["3"]["inputs"]["pick_a"] = False
    outcome = run(executor, prompt, prompt_id="q")
    assert outcome.outputs["4"] == {"values": [5]} and calls["Slow"] == 1


def test_list_mapping(executor, calls):
    # Explode gives [0, 1, 2]; Add maps over it with b=[10] repeated; Total sums the whole list.
    prompt = {"1": node("Explode", count=3), "2": node("Add", a=["1", 0], b=10),
              "3": node("Total", values=["2", 0]), "4": node("Sink", value=["3", 0]),
              "5": node("Sink", value=["2", 0])}
    outcome = run(executor, prompt)
    assert calls["Add"] == 3 and calls["Total"] == 1
    assert outcome.outputs["4"] == {"values": [33]}
    assert outcome.outputs["5"] == {"values": [10, 11, 12]}  # ui lists are concatenated across calls


def test_shorter_lists_repeat_their_last_item(executor):
    prompt = {"1": node("Explode", count=4), "2": node("Explode", count=2),
              "3": node("Add", a=["1", 0], b=["2", 0]), "4": node("Sink", value=["3", 0])}
    outcome = run(executor, prompt)
    assert outcome.outputs["4"] == {"values": [0, 2, 3, 4]}  # b = [0, 1, 1, 1]


def test_expansion_loop_runs_n_times(executor, calls, events):
    prompt = {"1": node("Repeat", start=5, step=2, times=7), "2": node("Sink", value=["1", 0])}
    outcome = run(executor, prompt)
    assert outcome.status == "success"
    assert outcome.outputs["2"] == {"values": [19]}
    assert calls["Add"] == 7 and calls["Repeat"] == 1
    expanded = [d for d in events.of("executing") if d["node"] and d["node"].startswith("1.")]
    assert len(expanded) == 7 and all(d["display_node"] == "1" for d in expanded)


def test_expansion_of_zero_iterations_passes_literal_through(executor):
    outcome = run(executor, {"1": node("Repeat", start=5, step=2, times=0), "2": node("Sink", value=["1", 0])})
    assert outcome.outputs["2"] == {"values": [5]}


def test_failing_node_fails_only_its_prompt(executor, calls, events):
    prompt = {"1": node("Number", value=3), "2": node("Fail", value=["1", 0]), "3": node("Sink", value=["2", 0])}
    outcome = run(executor, prompt)
    assert outcome.status == "error"
    [error] = events.of("execution_error")
    assert error["node_id"] == "2" and error["node_type"] == "Fail"
    assert "fail on purpose with 3" in error["exception_message"]
    assert error["exception_type"].endswith("ValueError")
    assert error["executed"] == ["1"] and error["current_inputs"] == {"value": [3]}
    assert error["current_outputs"] == ["1"]
    assert any("ValueError" in line for line in error["traceback"])
    assert set(error) >= {"prompt_id", "timestamp"}
    outcome = run(executor, chain_prompt(), prompt_id="next")
    assert outcome.status == "success"


def test_interrupt_stops_a_long_node(executor, events):
    prompt = {"1": node("Slow", value=1, seconds=30.0), "2": node("Sink", value=["1", 0])}
    result = validate_prompt(prompt, executor.registry)
    threading.Timer(0.5, executor.interrupt.request).start()
    start = time.monotonic()
    outcome = executor.execute("p", result.prompt, result.outputs)
    assert outcome.status == "interrupted"
    assert time.monotonic() - start < 10
    [data] = events.of("execution_interrupted")
    assert data["node_id"] == "1" and data["node_type"] == "Slow"
    assert events.of("progress")  # the slow node reported progress before it was stopped


def test_progress_events_carry_node_and_prompt(executor, events):
    run(executor, {"1": node("Slow", value=1, seconds=0.01), "2": node("Sink", value=["1", 0])}, prompt_id="pp")
    progress = events.of("progress")
    assert progress[-1] == {"value": 20, "max": 20, "prompt_id": "pp", "node": "1"}


def test_history_messages_and_meta(executor):
    outcome = run(executor, chain_prompt())
    kinds = [m[0] for m in outcome.messages]
    assert kinds == ["execution_start", "execution_cached", "execution_success"]
    assert outcome.meta["4"] == {"node_id": "4", "display_node": "4", "parent_node": None, "real_node_id": "4"}


def test_cache_lru_bound(registry):
    executor = Executor(registry, OutputCache(max_entries=2))
    run(executor, chain_prompt())
    assert len(executor.cache) == 2


def test_cache_none_reruns_everything(registry, calls):
    executor = Executor(registry, OutputCache(max_entries=0))
    run(executor, chain_prompt())
    run(executor, chain_prompt(), prompt_id="q")
    assert calls["Number"] == 2


def test_cache_ram_pressure_evicts_lru():
    free = {"bytes": 10}
    cache = OutputCache(max_entries=10, min_free_ram_bytes=100, ram_probe=lambda: free["bytes"])
    cache.put("a", [[1]], None)
    assert len(cache) == 0  # under pressure nothing is kept
    free["bytes"] = 1000
    cache.put("b", [[1]], None)
    cache.put("c", [[2]], None)
    assert len(cache) == 2
    free["bytes"] = 10
    assert cache.relieve_ram_pressure() == 2 and len(cache) == 0


def test_ten_thousand_node_chain_executes(registry):
    executor = Executor(registry, OutputCache(max_entries=0))
    n = 10_000
    prompt = {"0": node("Number", value=0)}
    for i in range(1, n):
        prompt[str(i)] = node("Add", a=[str(i - 1), 0], b=1)
    prompt["out"] = node("Sink", value=[str(n - 1), 0])
    outcome = run(executor, prompt)
    assert outcome.outputs["out"] == {"values": [n - 1]}


def test_blocked_output_node_with_message_fails(registry):
    from graph.executor import ExecutionBlocker

    class Block:
        CATEGORY = "test"
        FUNCTION = "run"
        RETURN_TYPES = ("INT",)

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"message": ("STRING", {})}}

        def run(self, message):
            return (ExecutionBlocker(message or None),)

    registry.register("Block", Block)
    events = Recorder()
    executor = Executor(registry, emit=events)
    prompt = {"1": node("Block", message="stop here"), "2": node("Add", a=["1", 0], b=1), "3": node("Sink", value=["2", 0])}
    outcome = run(executor, prompt)
    assert outcome.status == "error" and "stop here" in events.of("execution_error")[0]["exception_message"]
    prompt["1"]["inputs"]["message"] = ""
    outcome = run(executor, prompt, prompt_id="q")
    assert outcome.status == "success" and outcome.outputs == {}


def test_dynamic_prompt_answers_comfyui_method_names():
    from graph.prompt import DynamicPrompt

    prompt = DynamicPrompt({"1": {"class_type": "A", "inputs": {}}})
    prompt.add_ephemeral_node("1.0.0.2", {"class_type": "B", "inputs": {}}, "1", "1")
    assert prompt.get_node("1.0.0.2")["class_type"] == "B" and prompt.has_node("1")
    assert prompt.get_real_node_id("1.0.0.2") == "1" and prompt.get_parent_node_id("1.0.0.2") == "1"
    assert prompt.get_display_node_id("1.0.0.2") == "1"
    assert prompt.all_node_ids() == {"1", "1.0.0.2"} and prompt.get_original_prompt() == {"1": {"class_type": "A",
                                                                                                  "inputs": {}}}
    with pytest.raises(KeyError):
        prompt.get_node("9")
