"""UI workflow -> API prompt, on fixture workflows written in the editors' exact formats, each
compared with the API prompt ComfyUI's frontend would queue for it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from graph.registry import NodeRegistry
from graph.workflow import WorkflowError, is_ui_workflow, workflow_to_prompt

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def object_info() -> dict:
    return load("object_info")


@pytest.mark.parametrize("workflow_name, expected_name", [
    ("t2i_v04", "t2i_expected"),
    ("t2i_v1", "t2i_expected"),
    ("reroutes_legacy_v04", "t2i_expected"),
    ("reroutes_native_v1", "t2i_expected"),
    ("reroutes_native_v04", "t2i_expected"),
    ("notes_groups_v04", "t2i_expected"),
    ("primitive_seed_v04", "primitive_seed_expected"),
    ("lora_v04", "lora_expected"),
    ("lora_bypassed_v04", "lora_bypassed_expected"),
    ("subgraph_nested_v04", "subgraph_nested_expected"),
    ("img2img_dict_widgets_v04", "img2img_dict_widgets_expected"),
])
def test_fixture_converts_to_expected_prompt(workflow_name, expected_name, object_info):
    workflow = load(workflow_name)
    untouched = copy.deepcopy(workflow)
    prompt, warnings = workflow_to_prompt(workflow, object_info)
    assert prompt == load(expected_name)
    assert warnings == []
    assert workflow == untouched  # the caller's workflow is read, never changed
    assert json.loads(json.dumps(prompt)) == prompt  # plain JSON, ready to POST


def test_muted_node_is_dropped_and_its_consumers_lose_the_input(object_info):
    prompt, warnings = workflow_to_prompt(load("lora_muted_v04"), object_info)
    assert prompt == load("lora_muted_expected")
    assert "10" not in prompt
    assert sorted(warnings) == sorted([
        "node 3 (KSampler): input 'model' comes from muted node 10; left out",
        "node 6 (CLIPTextEncode): input 'clip' comes from muted node 10; left out",
        "node 7 (CLIPTextEncode): input 'clip' comes from muted node 10; left out",
    ])


def test_unknown_node_type_names_node_and_type(object_info):
    with pytest.raises(WorkflowError) as error:
        workflow_to_prompt(load("unknown_type_v04"), object_info)
    message = str(error.value)
    assert "node 12" in message and "'UltimateSDUpscale'" in message


def test_unknown_type_inside_subgraph_names_the_colon_path(object_info):
    workflow = load("subgraph_nested_v04")
    inner = workflow["definitions"]["subgraphs"][1]["nodes"][0]
    inner["type"] = "LatentNoiseFromAnotherPack"
    with pytest.raises(WorkflowError, match=r"node 10:2:5 \(LatentNoiseFromAnotherPack\).*'Latent canvas'"):
        workflow_to_prompt(workflow, object_info)


def test_muted_or_bypassed_node_of_unknown_type_is_no_error(object_info):
    workflow = load("unknown_type_v04")
    for mode in (2, 4):
        workflow["nodes"][-1]["mode"] = mode
        prompt, _ = workflow_to_prompt(workflow, object_info)
        assert prompt == load("t2i_expected")


def test_legacy_group_node_is_refused_with_a_hint(object_info):
    workflow = load("unknown_type_v04")
    workflow["nodes"][-1]["type"] = "workflow>Upscale pair"
    workflow["extra"]["groupNodes"] = {"Upscale pair": {"nodes": [], "links": []}}
    with pytest.raises(WorkflowError, match="legacy group node"):
        workflow_to_prompt(workflow, object_info)


def test_api_prompt_or_garbage_is_refused(object_info):
    with pytest.raises(WorkflowError, match="API prompt already"):
        workflow_to_prompt(load("t2i_expected"), object_info)
    with pytest.raises(WorkflowError, match="not a UI workflow"):
        workflow_to_prompt({"nodes": "no"}, object_info)
    with pytest.raises(WorkflowError, match="no type"):
        workflow_to_prompt({"nodes": [{"id": 1}], "links": []}, object_info)


def test_is_ui_workflow_tells_the_formats_apart():
    assert is_ui_workflow(load("t2i_v04"))
    assert is_ui_workflow(load("t2i_v1"))
    assert not is_ui_workflow(load("t2i_expected"))
    assert not is_ui_workflow([])


# -- bypass ---------------------------------------------------------------------------------
def test_bypassed_node_without_a_matching_input_leaves_the_consumer_unfed(object_info):
    workflow = load("img2img_dict_widgets_v04")
    encoder = next(n for n in workflow["nodes"] if n["id"] == 11)
    encoder["mode"] = 4  # VAEEncode takes IMAGE and VAE; nothing of type LATENT to pass on
    prompt, warnings = workflow_to_prompt(workflow, object_info)
    assert "11" not in prompt
    assert "latent_image" not in prompt["3"]["inputs"]
    assert warnings == ["node 11 (VAEEncode) is bypassed but has no input of type LATENT to pass "
                        "on to output 0; its consumers get nothing"]


def test_bypass_prefers_the_same_slot_then_the_exact_type(object_info):
    from graph.workflow.convert import bypass_input_index
    inputs = [{"name": "model", "type": "MODEL"}, {"name": "clip", "type": "CLIP"}]
    outputs = [{"type": "MODEL"}, {"type": "CLIP"}]
    assert bypass_input_index(inputs, outputs, 1, "CLIP") == 1
    assert bypass_input_index(inputs, outputs, 0, "MODEL") == 0
    assert bypass_input_index(inputs, [{"type": "*"}, {"type": "*"}], 0, "CLIP") == 1
    assert bypass_input_index(inputs, outputs, 1, "*") == 1
    assert bypass_input_index(inputs, outputs, 0, "LATENT") == -1
    unions = [{"name": "x", "type": "FLOAT,INT"}]
    assert bypass_input_index(unions, [{"type": "INT"}], 0, "int") == 0


# -- reroutes and loops ---------------------------------------------------------------------------
def test_reroute_loop_is_an_error(object_info):
    workflow = load("reroutes_legacy_v04")
    first = next(n for n in workflow["nodes"] if n["id"] == 12)
    first["inputs"][0]["link"] = 20
    workflow["links"] = [l for l in workflow["links"] if l[0] != 1] + [[20, 13, 0, 12, 0, "*"]]
    with pytest.raises(WorkflowError, match="loop"):
        workflow_to_prompt(workflow, object_info)


def test_reroute_with_nothing_upstream_leaves_the_input_unconnected(object_info):
    workflow = load("reroutes_legacy_v04")
    vae_reroute = next(n for n in workflow["nodes"] if n["id"] == 15)
    vae_reroute["inputs"][0]["link"] = None
    workflow["links"] = [l for l in workflow["links"] if l[0] != 8]
    prompt, warnings = workflow_to_prompt(workflow, object_info)
    assert prompt["8"]["inputs"] == {"samples": ["3", 0]}
    assert warnings == []


def test_link_missing_from_the_link_table_is_a_warning(object_info):
    workflow = load("t2i_v04")
    workflow["links"] = [l for l in workflow["links"] if l[0] != 8]
    prompt, warnings = workflow_to_prompt(workflow, object_info)
    assert "vae" not in prompt["8"]["inputs"]
    assert warnings == ["node 8 (VAEDecode): input 'vae' names link 8, which the graph lacks; "
                        "treated as unconnected"]


# -- primitives ---------------------------------------------------------------------------------
def test_primitive_node_value_reaches_every_target_even_through_a_reroute(object_info):
    workflow = load("primitive_seed_v04")
    workflow["nodes"].append(
        {"id": 13, "type": "Reroute", "pos": [700, 600], "size": [75, 26], "flags": {}, "order": 2, "mode": 0,
         "inputs": [{"name": "", "type": "*", "link": 13}],
         "outputs": [{"name": "", "type": "INT", "links": [14]}], "properties": {}})
    latent = next(n for n in workflow["nodes"] if n["id"] == 5)
    latent["inputs"] = [{"name": "batch_size", "type": "INT", "link": 14, "widget": {"name": "batch_size"}}]
    primitive = next(n for n in workflow["nodes"] if n["id"] == 10)
    primitive["outputs"][0]["links"].append(13)
    workflow["links"] += [[13, 10, 0, 13, 0, "INT"], [14, 13, 0, 5, 0, "INT"]]
    prompt, _ = workflow_to_prompt(workflow, object_info)
    assert prompt["5"]["inputs"]["batch_size"] == 424242
    assert prompt["3"]["inputs"]["seed"] == 424242
    assert "10" not in prompt and "13" not in prompt


def test_primitive_node_list_value_is_wrapped(object_info):
    workflow = load("primitive_seed_v04")
    primitive = next(n for n in workflow["nodes"] if n["id"] == 10)
    primitive["widgets_values"] = [[1, 2], "fixed"]
    prompt, _ = workflow_to_prompt(workflow, object_info)
    assert prompt["3"]["inputs"]["seed"] == {"__value__": [1, 2]}


# -- subgraphs ------------------------------------------------------------------------------------
def test_muted_subgraph_instance_runs_none_of_its_contents(object_info):
    workflow = load("subgraph_nested_v04")
    next(n for n in workflow["nodes"] if n["id"] == 10)["mode"] = 2
    prompt, warnings = workflow_to_prompt(workflow, object_info)
    assert not any(key.startswith("10:") for key in prompt)
    assert "samples" not in prompt["8"]["inputs"]
    assert warnings == ["node 8 (VAEDecode): input 'samples' comes from muted node 10; left out"]


def test_bypassed_subgraph_instance_passes_its_input_of_the_same_type(object_info):
    workflow = load("subgraph_nested_v04")
    # the definition gains a LATENT input (unused inside), so a bypass has something to pass on
    workflow["definitions"]["subgraphs"][0]["inputs"].append(
        {"id": "0c3e7d1a-52b4-4e8f-9a60-7d2c1b4e5f05", "name": "latent", "type": "LATENT", "linkIds": []})
    instance = next(n for n in workflow["nodes"] if n["id"] == 10)
    instance["mode"] = 4
    instance["inputs"].append({"localized_name": "latent", "name": "latent", "type": "LATENT", "link": 30})
    workflow["nodes"].append(
        {"id": 30, "type": "EmptyLatentImage", "pos": [600, 600], "size": [315, 106], "flags": {}, "order": 3,
         "mode": 0, "inputs": [], "outputs": [{"name": "LATENT", "type": "LATENT", "links": [30]}],
         "properties": {}, "widgets_values": [256, 256, 4]})
    workflow["links"].append([30, 30, 0, 10, 3, "LATENT"])
    prompt, warnings = workflow_to_prompt(workflow, object_info)
    assert not any(key.startswith("10:") for key in prompt)
    assert prompt["8"]["inputs"]["samples"] == ["30", 0]
    assert prompt["11:3"]["inputs"]["seed"] == 999  # the other instance is untouched
    assert warnings == []


def test_bypassed_subgraph_instance_without_a_matching_input(object_info):
    workflow = load("subgraph_nested_v04")
    next(n for n in workflow["nodes"] if n["id"] == 10)["mode"] = 4
    prompt, warnings = workflow_to_prompt(workflow, object_info)
    assert "samples" not in prompt["8"]["inputs"]
    assert len(warnings) == 1 and "node 10 (subgraph 'Sampling stage') is bypassed" in warnings[0]


def test_connected_instance_input_beats_the_promoted_widget(object_info):
    workflow = load("subgraph_nested_v04")
    instance = next(n for n in workflow["nodes"] if n["id"] == 11)
    instance["inputs"][3]["link"] = 40
    workflow["nodes"].append(
        {"id": 40, "type": "PrimitiveInt", "pos": [600, 700], "size": [270, 82], "flags": {}, "order": 3,
         "mode": 0, "inputs": [], "outputs": [{"name": "INT", "type": "INT", "links": [40]}],
         "properties": {}, "widgets_values": [31337, "fixed"]})
    workflow["links"].append([40, 40, 0, 11, 3, "INT"])
    prompt, _ = workflow_to_prompt(workflow, object_info)
    assert prompt["11:3"]["inputs"]["seed"] == ["40", 0]
    assert prompt["10:3"]["inputs"]["seed"] == 1234
    assert prompt["40"]["inputs"] == {"value": 31337}


def test_instance_values_with_legacy_control_slots_or_by_name(object_info):
    workflow = load("subgraph_nested_v04")
    first = next(n for n in workflow["nodes"] if n["id"] == 10)
    first["widgets_values"] = [4321, "randomize"]  # an older save kept the seed's control value
    second = next(n for n in workflow["nodes"] if n["id"] == 11)
    second["widgets_values"] = [1, 2, 3]  # does not fit: the named map is used instead
    second["widgets_values_named"] = {"seed": 2024}
    prompt, _ = workflow_to_prompt(workflow, object_info)
    assert prompt["10:3"]["inputs"]["seed"] == 4321
    assert prompt["11:3"]["inputs"]["seed"] == 2024


def test_instance_values_of_the_proxy_widgets_era(object_info):
    """``properties.proxyWidgets`` lines the values up: "-1" entries are the instance's own
    (a subgraph input's widget); others mirror an inner widget, whose own value counts."""
    workflow = load("subgraph_nested_v04")
    instance = next(n for n in workflow["nodes"] if n["id"] == 10)
    instance["properties"]["proxyWidgets"] = [["3", "steps"], ["-1", "seed"], ["3", "cfg"]]
    instance["widgets_values"] = [40, 777, 1.5]
    prompt, _ = workflow_to_prompt(workflow, object_info)
    assert prompt["10:3"]["inputs"]["seed"] == 777
    assert prompt["10:3"]["inputs"]["steps"] == 18
    assert prompt["10:3"]["inputs"]["cfg"] == 7.5


def test_instance_without_saved_values_keeps_the_inner_widget_value(object_info):
    workflow = load("subgraph_nested_v04")
    del next(n for n in workflow["nodes"] if n["id"] == 10)["widgets_values"]
    prompt, _ = workflow_to_prompt(workflow, object_info)
    assert prompt["10:3"]["inputs"]["seed"] == 5  # the KSampler's own value inside the subgraph


def test_subgraph_containing_itself_is_an_error(object_info):
    workflow = load("subgraph_nested_v04")
    inner_instance = workflow["definitions"]["subgraphs"][1]["nodes"]
    inner_instance.append(dict(workflow["nodes"][3], id=9))  # an instance of A inside B
    with pytest.raises(WorkflowError, match="contains itself"):
        workflow_to_prompt(workflow, object_info)


def test_subgraph_output_fed_straight_from_an_input(object_info):
    workflow = load("subgraph_nested_v04")
    canvas = workflow["definitions"]["subgraphs"][1]
    canvas["inputs"].append({"id": "6d9f3e58-0a2b-4c4d-8e7f-b3d5f7a9e103", "name": "latent",
                             "type": "LATENT", "linkIds": [3]})
    canvas["outputs"][0]["linkIds"] = [3]
    canvas["links"] = [canvas["links"][0],
                       {"id": 3, "origin_id": -10, "origin_slot": 1, "target_id": -20, "target_slot": 0,
                        "type": "LATENT"}]
    stage = workflow["definitions"]["subgraphs"][0]
    stage["nodes"][1]["inputs"].append({"name": "latent", "type": "LATENT", "link": 7})
    stage["nodes"].append(
        {"id": 7, "type": "EmptyLatentImage", "pos": [0, 600], "size": [315, 106], "flags": {}, "order": 0,
         "mode": 0, "inputs": [], "outputs": [{"name": "LATENT", "type": "LATENT", "links": [7]}],
         "properties": {}, "widgets_values": [320, 320, 1]})
    stage["links"].append({"id": 7, "origin_id": 7, "origin_slot": 0, "target_id": 2, "target_slot": 1,
                           "type": "LATENT"})
    prompt, _ = workflow_to_prompt(workflow, object_info)
    assert prompt["10:3"]["inputs"]["latent_image"] == ["10:7", 0]
    assert "10:2:5" in prompt  # the latent node still runs; only the output bypasses it


# -- the registry's own object_info --------------------------------------------------------------
def test_object_info_from_weft_registry_with_tuple_specs():
    from nodes.utils import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
    registry = NodeRegistry()
    registry.register_mappings(NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, core=True)
    workflow = {
        "last_node_id": 3, "last_link_id": 2, "version": 0.4, "groups": [], "config": {}, "extra": {},
        "nodes": [
            {"id": 1, "type": "PrimitiveInt", "pos": [0, 0], "size": [270, 82], "flags": {}, "order": 0, "mode": 0,
             "inputs": [], "outputs": [{"name": "INT", "type": "INT", "links": [1]}], "properties": {},
             "widgets_values": [7, "increment"]},
            {"id": 2, "type": "StringConcatenate", "pos": [300, 0], "size": [400, 200], "flags": {}, "order": 1,
             "mode": 0, "inputs": [], "outputs": [{"name": "STRING", "type": "STRING", "links": [2]}],
             "properties": {}, "widgets_values": ["tiles", "wall", "-"]},
            {"id": 3, "type": "PreviewAny", "pos": [750, 0], "size": [300, 200], "flags": {}, "order": 2, "mode": 0,
             "inputs": [{"name": "source", "type": "*", "link": 2}], "outputs": [], "properties": {},
             "widgets_values": []},
        ],
        "links": [[2, 2, 0, 3, 0, "STRING"]],
    }
    prompt, warnings = workflow_to_prompt(workflow, registry.object_info())
    assert warnings == []
    assert prompt == {
        "1": {"inputs": {"value": 7}, "class_type": "PrimitiveInt", "_meta": {"title": "Int"}},
        "2": {"inputs": {"string_a": "tiles", "string_b": "wall", "delimiter": "-"},
              "class_type": "StringConcatenate", "_meta": {"title": "Concatenate Text"}},
        "3": {"inputs": {"source": ["2", 0]}, "class_type": "PreviewAny", "_meta": {"title": "Preview Any"}},
    }


# -- text the frontend would rewrite ----------------------------------------------------------------
def test_frontend_text_rewrites_are_warned_about_not_performed(object_info):
    workflow = load("t2i_v04")
    positive = next(n for n in workflow["nodes"] if n["id"] == 6)
    positive["widgets_values"] = ["a {red|blue} door // remember the hinge"]
    save = next(n for n in workflow["nodes"] if n["id"] == 9)
    save["widgets_values"] = ["%date:yyyy-MM-dd%/%KSampler.seed%"]
    prompt, warnings = workflow_to_prompt(workflow, object_info)
    assert prompt["6"]["inputs"]["text"] == "a {red|blue} door // remember the hinge"
    assert prompt["9"]["inputs"]["filename_prefix"] == "%date:yyyy-MM-dd%/%KSampler.seed%"
    assert len(warnings) == 2
    by_node = sorted(warnings)
    assert by_node[0].startswith("node 6 (CLIPTextEncode): 'text' uses {a|b} choices")
    assert by_node[1].startswith("node 9 (SaveImage): 'filename_prefix' has a %date:...%")
