"""nodes.lists: list nodes, and loops run through the executor."""

from __future__ import annotations

import pytest
import torch

from graph.registry import NodeRegistry
from tests.nodes.prompt_support import run_prompt
from nodes import lists, logic, utils


class Numbers:
    """A test node with a list output: 10, 20, 30."""

    CATEGORY = "test"
    RETURN_TYPES = ("INT",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return ([10, 20, 30],)


class Recorder:
    """A test node with an output that records every value it sees (a loop's side effect)."""

    seen: list = []
    CATEGORY = "test"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("*", {})}}

    def run(self, value):
        Recorder.seen.append(value)
        return (value,)


@pytest.fixture
def registry():
    registry = NodeRegistry()
    for module in (lists, logic, utils):
        assert registry.register_mappings(module.NODE_CLASS_MAPPINGS, module.NODE_DISPLAY_NAME_MAPPINGS,
                                          core=True) == {}
    registry.register_mappings({"Numbers": Numbers, "Recorder": Recorder})
    Recorder.seen = []
    return registry


# -- lists -------------------------------------------------------------------------------------------

def test_create_list_and_get_item(registry):
    prompt = {
        "1": {"class_type": "Numbers", "inputs": {}},
        "2": {"class_type": "PrimitiveInt", "inputs": {"value": 5}},
        "3": {"class_type": "CreateList", "inputs": {"inputs.input1": ["2", 0], "inputs.input0": ["1", 0]}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
        "5": {"class_type": "GetItemFromList", "inputs": {"list": ["3", 0], "index": -1}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["5", 0]}},
        "7": {"class_type": "GetItemFromList", "inputs": {"list": ["1", 0], "index": 1}},
        "8": {"class_type": "PreviewAny", "inputs": {"source": ["7", 0]}},
    }
    outcome = run_prompt(registry, prompt)
    assert outcome.outputs["4"]["text"] == ["10", "20", "30", "5"]  # slot order, not prompt order
    assert outcome.outputs["6"]["text"] == ["5"] and outcome.outputs["8"]["text"] == ["20"]
    info = registry.object_info()["CreateList"]
    assert info["output_is_list"] == [True] and info["output_name"] == ["list"]
    assert list(info["input"]["required"]) == ["inputs.input0"] and len(info["input"]["optional"]) == 9


def test_get_item_indexes_a_single_connected_list():
    assert lists.GetItemFromList().run([["a", "b", "c"]], [2]) == ("c",)
    assert lists.GetItemFromList().run(["x", "y"], [0]) == ("x",)
    with pytest.raises(IndexError):
        lists.GetItemFromList().run(["x"], [3])


def test_merge_lists():
    images = [torch.rand(2, 4, 4, 3), torch.rand(1, 4, 4, 3)]
    [merged] = lists.MergeImageLists().run(images)
    assert [tuple(i.shape) for i in merged] == [(1, 4, 4, 3)] * 3
    torch.testing.assert_close(merged[1], images[0][1:2])
    with pytest.raises(ValueError, match="4D"):
        lists.MergeImageLists().run([torch.rand(4, 4, 3)])
    assert lists.MergeTextLists().run(["a", "b"]) == (["a", "b"],)


# -- loops ---------------------------------------------------------------------------------------------

def loop_prompt(mode_inputs, accumulate=True, expression="a * 2 + b"):
    """carry(k+1) = carry(k) * 2 + iteration_index, starting from 1; outputs the carries."""
    return {
        "1": {"class_type": "PrimitiveInt", "inputs": {"value": 1}},
        "2": {"class_type": "StartLoop", "inputs": {**mode_inputs, "cache_iterations": False,
                                                    "initial_iteration_value": ["1", 0]}},
        "3": {"class_type": "ComfyMathExpression", "inputs": {"expression": expression,
                                                              "values.a": ["2", 4], "values.b": ["2", 0]}},
        "4": {"class_type": "EndLoop", "inputs": {"accumulate": accumulate, "output_value": ["3", 1],
                                                  "next_iteration_value": ["3", 1]}},
        "5": {"class_type": "PreviewAny", "inputs": {"source": ["4", 0]}},
    }


def test_three_iteration_loop_accumulates(registry):
    outcome = run_prompt(registry, loop_prompt({"mode": "simple", "mode.num_iterations": 3}))
    # 1*2+0 = 2, 2*2+1 = 5, 5*2+2 = 12
    assert outcome.outputs["5"]["text"] == ["2", "5", "12"]
    assert "3" not in outcome.executed and "2" not in outcome.executed  # the body as drawn never ran


def test_loop_without_accumulate_returns_the_last_iteration(registry):
    outcome = run_prompt(registry, loop_prompt({"mode": "simple", "mode.num_iterations": 4}, accumulate=False))
    assert outcome.outputs["5"]["text"] == ["27"]  # 2, 5, 12, 27


def test_for_mode_and_zero_iterations(registry):
    outcome = run_prompt(registry, loop_prompt({"mode": "For", "mode.start_iteration_index": 10,
                                                "mode.max_iteration": 16, "mode.step": 3}))
    assert outcome.outputs["5"]["text"] == ["12", "37"]  # indices 10, 13: 1*2+10, 12*2+13
    empty = run_prompt(registry, loop_prompt({"mode": "simple", "mode.num_iterations": 0}))
    assert empty.outputs.get("5", {}).get("text", []) == []


def test_list_mode_iterates_the_items_and_runs_terminations(registry):
    prompt = loop_prompt({"mode": "List", "mode.list": ["6", 0]}, expression="a + b")
    prompt["6"] = {"class_type": "Numbers", "inputs": {}}
    prompt["3"]["inputs"]["values.b"] = ["2", 3]  # list_item
    prompt["7"] = {"class_type": "Recorder", "inputs": {"value": ["2", 0]}}  # iteration_index, a side effect
    prompt["4"]["inputs"]["terminations.termination0"] = ["7", 0]
    outcome = run_prompt(registry, prompt)
    assert outcome.outputs["5"]["text"] == ["11", "31", "61"]  # 1+10, 11+20, 31+30
    assert Recorder.seen == [0, 1, 2]


def test_loop_count_from_a_link(registry):
    prompt = loop_prompt({"mode": "simple", "mode.num_iterations": ["8", 0]}, accumulate=False)
    prompt["8"] = {"class_type": "PrimitiveInt", "inputs": {"value": 2}}
    assert run_prompt(registry, prompt).outputs["5"]["text"] == ["5"]


def test_nested_loops(registry):
    """The outer loop runs an inner loop twice; the inner body sums the outer and inner indices."""
    prompt = {
        "1": {"class_type": "StartLoop", "inputs": {"mode": "simple", "mode.num_iterations": 2,
                                                    "cache_iterations": False}},
        "2": {"class_type": "StartLoop", "inputs": {"mode": "simple", "mode.num_iterations": 3,
                                                    "cache_iterations": False, "parent_iteration": ["1", 0]}},
        "3": {"class_type": "ComfyMathExpression", "inputs": {"expression": "10 * a + b",
                                                              "values.a": ["1", 0], "values.b": ["2", 0]}},
        "4": {"class_type": "EndLoop", "inputs": {"accumulate": True, "output_value": ["3", 1]}},
        "5": {"class_type": "EndLoop", "inputs": {"accumulate": True, "output_value": ["4", 0]}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["5", 0]}},
    }
    assert lists.loop_start_of(_Prompt(prompt), "4") == "2"
    assert lists.loop_start_of(_Prompt(prompt), "5") == "1"
    outcome = run_prompt(registry, prompt)
    assert outcome.outputs["6"]["text"] == ["0", "1", "2", "10", "11", "12"]


def test_loop_body_is_what_end_loop_reads_through_start_loop():
    prompt = loop_prompt({"mode": "simple", "mode.num_iterations": 1})
    prompt["9"] = {"class_type": "PrimitiveInt", "inputs": {"value": 3}}  # upstream, not in the body
    prompt["3"]["inputs"]["values.c"] = ["9", 0]
    assert lists.loop_body(_Prompt(prompt), "2", "4") == ["3"]


class _Prompt:
    """The DYNPROMPT surface loop planning reads, over a plain prompt."""

    def __init__(self, prompt):
        self.prompt = prompt

    def get_node(self, node_id):
        return self.prompt[node_id]

    def all_ids(self):
        return list(self.prompt)


def test_an_output_node_inside_the_body_does_not_run_the_body_as_drawn(registry):
    prompt = loop_prompt({"mode": "simple", "mode.num_iterations": 3})
    prompt["9"] = {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}}  # not a termination
    outcome = run_prompt(registry, prompt)
    assert outcome.outputs["5"]["text"] == ["2", "5", "12"]
    assert "9" not in outcome.outputs and "3" not in outcome.executed
