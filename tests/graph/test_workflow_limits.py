"""Limits while a UI workflow's subgraphs are flattened, and while the executor adds the nodes of
expansions: a few kilobytes of nested subgraphs (or a node that expands without end) are refused
quickly, with little memory, before they grow into millions of nodes."""

from __future__ import annotations

import copy
import json
import time
import tracemalloc
from pathlib import Path

import pytest

from graph.cache import OutputCache
from graph.executor import Executor
from graph.validation import validate_prompt
from graph.workflow import WorkflowError, workflow_to_prompt
from graph.workflow.limits import DEFAULT_MAX_NODES, MAX_SUBGRAPH_DEPTH

FIXTURES = Path(__file__).parent / "fixtures"
WEB_FIXTURES = Path(__file__).parents[1] / "web" / "fixtures"


@pytest.fixture(scope="module")
def object_info() -> dict:
    return json.loads((FIXTURES / "object_info.json").read_text())


def _definition_id(level: int) -> str:
    return f"00000000-0000-4000-8000-{level:012d}"


def _instance(node_id: int, level: int) -> dict:
    return {"id": node_id, "type": _definition_id(level), "mode": 0, "inputs": [], "outputs": [],
            "properties": {}}


def nested_workflow(levels: int, fanout: int = 1) -> dict:
    """Subgraph definitions 0..levels-1: definition 0 holds one PrimitiveInt, each further one holds
    ``fanout`` instances of the one below, the root ``fanout`` instances of the top one. Flattened:
    ``fanout ** levels`` nodes, nested ``levels`` deep."""
    leaf = {"id": 1, "type": "PrimitiveInt", "mode": 0, "inputs": [], "outputs": [], "properties": {},
            "widgets_values": [7, "fixed"]}
    definitions = []
    for level in range(levels):
        nodes = [leaf] if level == 0 else [_instance(i, level - 1) for i in range(1, fanout + 1)]
        definitions.append({"id": _definition_id(level), "name": f"level {level}", "version": 1,
                            "state": {}, "inputNode": {"id": -10, "bounding": [0, 0, 10, 10]},
                            "outputNode": {"id": -20, "bounding": [0, 0, 10, 10]},
                            "inputs": [], "outputs": [], "widgets": [], "nodes": nodes, "links": []})
    return {"version": 1, "state": {}, "links": [], "definitions": {"subgraphs": definitions},
            "nodes": [_instance(i, levels - 1) for i in range(1, fanout + 1)]}


def bomb() -> dict:
    """10 levels of 10 instances each: 10**10 nodes once flattened, from a few kilobytes."""
    return nested_workflow(levels=10, fanout=10)


def test_the_bomb_is_small():
    assert len(json.dumps(bomb())) < 16_000


def test_bomb_refused_quickly_with_little_memory(object_info):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(WorkflowError) as caught:
            workflow_to_prompt(bomb(), object_info)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (f"the workflow expands to more than {DEFAULT_MAX_NODES} nodes "
                                 "(limit --max-prompt-nodes)")
    assert elapsed < 1.0, elapsed
    assert peak < 50 * 2**20, peak


def test_node_limit_is_the_callers(object_info):
    workflow = nested_workflow(levels=3, fanout=10)  # 1000 nodes, 2110 counting the instances
    prompt, _ = workflow_to_prompt(workflow, object_info)
    assert len(prompt) == 1000 and prompt["1:1:1:1"]["class_type"] == "PrimitiveInt"
    assert len(workflow_to_prompt(workflow, object_info, max_nodes=2110)[0]) == 1000
    with pytest.raises(WorkflowError, match=r"more than 2109 nodes \(limit --max-prompt-nodes\)"):
        workflow_to_prompt(workflow, object_info, max_nodes=2109)


def test_muted_or_bypassed_instances_are_not_counted(object_info):
    workflow = bomb()
    for node in workflow["nodes"]:
        node["mode"] = 2
    workflow["nodes"][3]["mode"] = 4
    assert workflow_to_prompt(workflow, object_info)[0] == {}


def test_nesting_depth_is_limited(object_info):
    prompt, _ = workflow_to_prompt(nested_workflow(levels=MAX_SUBGRAPH_DEPTH), object_info)
    assert list(prompt) == [":".join(["1"] * (MAX_SUBGRAPH_DEPTH + 1))]
    with pytest.raises(WorkflowError, match=f"subgraphs nest deeper than {MAX_SUBGRAPH_DEPTH}"):
        workflow_to_prompt(nested_workflow(levels=MAX_SUBGRAPH_DEPTH + 1), object_info)


def test_deep_nesting_refused_through_a_shared_definition(object_info):
    """A definition measured once at a shallow place is still too deep where it is used again."""
    workflow = nested_workflow(levels=MAX_SUBGRAPH_DEPTH)
    top = workflow["definitions"]["subgraphs"][-1]
    workflow["definitions"]["subgraphs"].append(dict(top, id="11111111-0000-4000-8000-000000000000",
                                                     name="wrapper", nodes=[_instance(1, MAX_SUBGRAPH_DEPTH - 1)]))
    workflow["nodes"].append(dict(_instance(2, 0), type="11111111-0000-4000-8000-000000000000"))
    with pytest.raises(WorkflowError, match=f"subgraphs nest deeper than {MAX_SUBGRAPH_DEPTH}"):
        workflow_to_prompt(workflow, object_info)


@pytest.mark.parametrize("through", [0, 1, 3])
def test_subgraph_that_contains_itself_is_refused(object_info, through):
    """Definition 0 holds an instance of itself, directly or through ``through`` others."""
    workflow = nested_workflow(levels=through + 1, fanout=10)
    workflow["definitions"]["subgraphs"][0]["nodes"].append(_instance(2, through))
    start = time.perf_counter()
    with pytest.raises(WorkflowError, match=r"subgraph 'level \d' contains itself"):
        workflow_to_prompt(workflow, object_info)
    assert time.perf_counter() - start < 1.0


def test_muted_instance_of_itself_is_no_error(object_info):
    workflow = nested_workflow(levels=2)
    workflow["definitions"]["subgraphs"][1]["nodes"].append(dict(_instance(2, 1), mode=2))
    assert list(workflow_to_prompt(workflow, object_info)[0]) == ["1:1:1"]


def test_legit_subgraph_workflows_still_convert(object_info):
    web_info = json.loads((WEB_FIXTURES / "object_info.json").read_text())
    workflow = json.loads((WEB_FIXTURES / "workflow_schema1_subgraph.json").read_text())
    prompt, _ = workflow_to_prompt(workflow, web_info)
    assert sorted(prompt) == ["1", "2:1", "2:2", "3"]
    nested = json.loads((FIXTURES / "subgraph_nested_v04.json").read_text())
    expected = json.loads((FIXTURES / "subgraph_nested_expected.json").read_text())
    assert workflow_to_prompt(copy.deepcopy(nested), object_info)[0] == expected
    # 9 prompt nodes; the limit counts the 4 instance nodes as well.
    assert workflow_to_prompt(nested, object_info, max_nodes=13)[0] == expected
    with pytest.raises(WorkflowError, match="more than 12 nodes"):
        workflow_to_prompt(nested, object_info, max_nodes=12)


# -- expansion at run time --------------------------------------------------------------------------
def _run_grow(registry, **limits):
    executor = Executor(registry, OutputCache(max_entries=100), **limits)
    prompt = {"1": {"class_type": "Grow", "inputs": {"value": 1, "width": 1}},
              "2": {"class_type": "Sink", "inputs": {"value": ["1", 0]}}}
    checked = validate_prompt(prompt, registry)
    assert checked.ok, checked.node_errors or checked.error
    return executor.execute("p", checked.prompt, checked.outputs)


def _error(outcome) -> dict:
    return next(data for event, data in outcome.messages if event == "execution_error")


def test_expansion_without_end_fails_the_job(registry):
    start = time.perf_counter()
    outcome = _run_grow(registry)
    assert time.perf_counter() - start < 5
    assert outcome.status == "error"
    error = _error(outcome)
    assert f"more than {DEFAULT_MAX_NODES} nodes" in error["exception_message"]
    assert "--max-prompt-nodes" in error["exception_message"]
    assert error["node_type"] == "Grow"


def test_expansion_limit_is_the_executors(registry):
    outcome = _run_grow(registry, max_expanded_nodes=100)
    assert outcome.status == "error" and "more than 100 nodes" in _error(outcome)["exception_message"]


def test_expansions_within_the_limit_run(registry, calls):
    executor = Executor(registry, OutputCache(max_entries=100), max_expanded_nodes=10)
    prompt = {"1": {"class_type": "Repeat", "inputs": {"start": 1, "step": 2, "times": 10}},
              "2": {"class_type": "Sink", "inputs": {"value": ["1", 0]}}}
    checked = validate_prompt(prompt, registry)
    outcome = executor.execute("p", checked.prompt, checked.outputs)
    assert outcome.status == "success" and outcome.outputs["2"] == {"values": [21]}
