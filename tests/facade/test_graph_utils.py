"""``comfy_execution.graph_utils`` / ``graph`` / ``utils`` and ``execution``: graphs built at run
time and run by Weft's executor, unique node ids per running node, ExecutionBlocker (whole calls
and list items), the executing context, and execution.py's helpers (tests/facade/packs/expand_pack)."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture
def expand_studio(pack_studio):
    [report] = pack_studio.load("expand_pack.py")
    assert report.loaded, report.error
    return pack_studio


def node(class_type, **inputs):
    return {"class_type": class_type, "inputs": inputs}


def shown(source_id="1"):
    return node("PreviewAny", source=[source_id, 0])


def test_graph_builder_outside_a_node(pack_studio):
    from comfy_execution.graph_utils import GraphBuilder, add_graph_prefix, is_link

    GraphBuilder.set_default_prefix("UID", 0, 0)
    graph = GraphBuilder()
    assert graph.prefix == "UID.0.0." and GraphBuilder().prefix == "UID.0.1."
    a = graph.node("PrimitiveString", value="x")
    b = graph.node("StringConcatenate", string_a=a.out(0), string_b="y", delimiter="")
    named = graph.node("PreviewAny", id="show", source=b.out(0))
    assert graph.node("Anything", id="show") is named and graph.lookup_node("show") is named
    assert a.out(0) == ["UID.0.0.1", 0] and is_link(a.out(0)) and not is_link([1, 0]) and not is_link(["1", "0"])
    b.set_input("delimiter", None)
    named.set_override_display_id("9")
    assert graph.finalize() == {
        "UID.0.0.1": {"class_type": "PrimitiveString", "inputs": {"value": "x"}},
        "UID.0.0.2": {"class_type": "StringConcatenate", "inputs": {"string_a": ["UID.0.0.1", 0], "string_b": "y"}},
        "UID.0.0.show": {"class_type": "PreviewAny", "inputs": {"source": ["UID.0.0.2", 0]},
                         "override_display_id": "9"}}
    graph.replace_node_output("2", 0, "literal")
    assert named.get_input("source") == "literal"
    graph.remove_node("1")
    assert list(graph.finalize()) == ["UID.0.0.2", "UID.0.0.show"]
    moved, outputs = add_graph_prefix({"1": node("A", x=["2", 0]), "2": node("B")}, [["1", 0], 5], "p.")
    assert moved == {"p.1": node("A", x=["p.2", 0]), "p.2": node("B")} and outputs == (["p.1", 0], 5)


def test_expansions_run_with_ids_unique_per_node(expand_studio):
    prompt = {"1": node("RepeatSuffix", text="a", suffix="!", times=3), "2": shown("1"),
              "3": node("RepeatSuffix", text="b", suffix="?", times=2), "4": shown("3"),
              "5": node("NestedRepeat", text="n"), "6": shown("5"),
              "7": node("TwoBuilders", text="t"), "8": shown("7")}
    outcome = expand_studio.run(prompt)
    assert [outcome.outputs[k]["text"] for k in ("2", "4", "6", "8")] == [["a!!!"], ["b??"], ["naab"], ["tLR"]]
    executed = set(outcome.executed)
    assert {"1.0.0.1", "1.0.0.2", "1.0.0.3", "3.0.0.1", "3.0.0.2", "7.0.0.1", "7.0.1.1"} <= executed
    assert {"5.0.0.1", "5.0.0.2", "5.0.0.1.0.0.1", "5.0.0.2.0.0.1"} <= executed  # nested expansions
    executing = [d for e, d in expand_studio.events if e == "executing" and (d["node"] or "").startswith("5.")]
    assert executing and all(d["display_node"] == "5" for d in executing)


def test_blocker_stops_downstream_silently_or_with_its_message(expand_studio):
    blocked = {"1": node("BlockUnless", text="x", allow=False, message=""),
               "2": node("StringConcatenate", string_a=["1", 0], string_b="!", delimiter=""), "3": shown("2")}
    outcome = expand_studio.run(blocked)
    assert outcome.outputs == {} and "2" not in outcome.executed
    blocked["1"]["inputs"]["message"] = "switched off"
    outcome = expand_studio.execute(blocked)
    assert outcome.status == "error"
    assert "Execution Blocked: switched off" in outcome.messages[-1][1]["exception_message"]
    blocked["1"]["inputs"]["allow"] = True
    assert expand_studio.run(blocked).outputs["3"] == {"text": ["x!"]}


def test_blocked_list_items_skip_only_their_calls(expand_studio):
    prompt = {"1": node("SplitBlocked", text="a -b c"),
              "2": node("StringConcatenate", string_a=["1", 0], string_b="!", delimiter=""), "3": shown("2")}
    outcome = expand_studio.run(prompt)
    assert outcome.outputs["3"] == {"text": ["a!", "c!"]}


def test_executing_context(expand_studio):
    outcome = expand_studio.run({"1": node("WhereAmI"), "2": shown("1")})
    assert outcome.outputs["2"] == {"text": ["facade-test/1/0"]}
    from comfy_execution.utils import get_executing_context
    assert get_executing_context() is None


def test_dynamic_prompt_under_comfyui_names(pack_studio):
    from comfy_execution.graph import DynamicPrompt, NodeNotFoundError, get_input_info

    prompt = DynamicPrompt({"1": node("A")})
    prompt.add_ephemeral_node("1.0.0.1", node("B"), "1", "1")
    prompt.add_ephemeral_node("1.0.0.1.0.0.1", node("C"), "1.0.0.1", "1.0.0.1")
    assert prompt.get_node("1.0.0.1") == node("B") and prompt.has_node("1") and not prompt.has_node("2")
    assert prompt.get_display_node_id("1.0.0.1.0.0.1") == "1" and prompt.get_real_node_id("1.0.0.1.0.0.1") == "1"
    assert prompt.get_parent_node_id("1.0.0.1.0.0.1") == "1.0.0.1" and prompt.get_original_prompt() == {"1": node("A")}
    assert prompt.all_node_ids() == {"1", "1.0.0.1", "1.0.0.1.0.0.1"}
    with pytest.raises(NodeNotFoundError):
        prompt.get_node("2")

    class Spec:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"a": ("INT", {"min": 1})}, "optional": {"b": ("STRING",)},
                    "hidden": {"uid": "UNIQUE_ID"}}

    assert get_input_info(Spec, "a") == ("INT", "required", {"min": 1})
    assert get_input_info(Spec, "b") == ("STRING", "optional", {})
    assert get_input_info(Spec, "uid") == ("UNIQUE_ID", "hidden", {})
    assert get_input_info(Spec, "nope") == (None, None, None)


def test_execution_module_helpers(expand_studio):
    import execution
    from comfy_execution.graph import DynamicPrompt, ExecutionBlocker

    prompt = {"1": node("PrimitiveString", value="v"), "2": node("StringConcatenate", string_a=["1", 0],
                                                                  string_b=5, delimiter="")}
    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt("p", prompt, ["2"]))
    assert valid and error is None and outputs == ["2"] and prompt["2"]["inputs"]["string_b"] == "5"
    bad = {"1": node("StringConcatenate", string_a="a", delimiter="")}
    assert asyncio.run(execution.validate_prompt("p", bad, None))[0] is False
    validated = {}
    ok, errors, item = asyncio.run(execution.validate_inputs("p", bad, "1", validated))
    assert not ok and errors[0]["type"] == "required_input_missing" and validated["1"][0] is False

    class Echo:
        RETURN_TYPES = ("STRING",)
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"text": ("STRING",)}, "hidden": {"uid": "UNIQUE_ID", "prompt": "PROMPT"}}

        def run(self, text, uid, prompt):
            return {"ui": {"seen": [uid]}, "result": (text.upper(),)}

    dynprompt = DynamicPrompt({"9": node("Echo", text="hi")})
    data, missing, _ = execution.get_input_data({"text": "hi", "other": ["3", 0]}, Echo, "9", None, dynprompt)
    assert data == {"text": ["hi"], "other": (None,), "uid": ["9"], "prompt": [dynprompt.original]}
    assert missing == {"other": True}
    data.pop("other")
    data["text"] = ["a", ExecutionBlocker(None), "c"]
    calls = []
    output, ui, has_subgraph, pending = asyncio.run(
        execution.get_output_data("p", "9", Echo(), data, pre_execute_cb=calls.append))
    assert output[0][0] == "A" and isinstance(output[0][1], ExecutionBlocker) and output[0][2] == "C"
    assert ui == {"seen": ["9", "9"]} and calls == [0, 2] and not has_subgraph and not pending
    assert execution.ExecutionResult.PENDING.value == 2 and execution.map_node_over_list is None
    with pytest.raises(NotImplementedError):
        execution.PromptExecutor(None).execute({}, "p")
    assert asyncio.run(execution.IsChangedCache("p", DynamicPrompt(prompt), None).get("2")) is False
