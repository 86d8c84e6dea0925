"""Property-based checks of the two doors hostile or broken JSON comes in by (issue #18):

- ``validate_prompt`` answers every API prompt with a result — ok, or errors in ComfyUI's
  ``node_errors`` shape — and never raises, whatever the class types, input names and values;
- ``workflow_to_prompt`` raises nothing but ``WorkflowError`` for any UI workflow, and fast;
- round trip: a well-formed workflow of known nodes converts to exactly the prompt it was drawn
  from, and ``validate_prompt`` accepts that prompt.

All three run against the built-in nodes and their real ``/object_info``, called as api/routes/prompt.py
calls them (inside ``call_with_services``). Deterministic (``derandomize``) and bounded, so a
failure is the same failure on every machine.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from graph.context import call_with_services
from graph.folders import FolderPaths
from graph.registry import NodeRegistry
from graph.validation import ValidationResult, validate_prompt
from graph.workflow import WorkflowError, workflow_to_prompt
from graph.workflow.widgets import CONTROL, FILTER, UPLOAD, VALUE, is_widget_type, split_spec, widget_layout
from nodes import register_builtin_nodes
from nodes.services import Services

PROPERTIES = settings(derandomize=True, database=None, max_examples=150, deadline=None, print_blob=True,
                      phases=[Phase.explicit, Phase.generate, Phase.shrink],
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                             HealthCheck.large_base_example])
#: The conversion must never hang: each example must finish within this many milliseconds.
CONVERSION_DEADLINE_MS = 2000

ERROR_KEYS = {"type", "message", "details", "extra_info"}
CHECKPOINT = "tiny.safetensors"  # an empty file: combos list it, nothing ever loads it


class _World:
    """The built-in nodes, their /object_info and the services they are validated under."""

    def __init__(self, base) -> None:
        import torch

        from ldm.devices import detect_compute
        from ldm.engine import Engine

        folders = FolderPaths.under(base)
        folders.ensure()
        (folders.models["checkpoints"][0] / CHECKPOINT).write_bytes(b"")
        self.services = Services(folders=folders, engine=Engine(detect_compute("cpu", force_dtype=torch.float32)))
        self.registry = NodeRegistry()
        register_builtin_nodes(self.registry)
        self.object_info = call_with_services(self.services, self.registry.object_info)

    def validate(self, prompt: Any, targets: list | None = None) -> ValidationResult:
        return call_with_services(self.services, validate_prompt, prompt, self.registry, targets)


#: Set by the ``world`` fixture; the strategies read node names and schemas from it while drawing.
_WORLD: _World | None = None


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> _World:
    global _WORLD
    _WORLD = _World(tmp_path_factory.mktemp("properties"))
    return _WORLD


def _names_of(schema: dict) -> list[str]:
    return [name for section in (schema.get("input") or {}).values() for name in section]


# -- JSON values, hostile ones included ---------------------------------------------------------
HUGE_INTS = [2 ** 63, -(2 ** 63) - 1, 2 ** 64, 10 ** 19, 10 ** 308, 10 ** 309, -(10 ** 400), 10 ** 4000]
NASTY_TEXT = ["", "\x00", "a\x00b", "\u202e", "\ud800", "🖼️", "%date:yyyy%", "{a|b}", "//", " 7 ", "1e5",
              "nan", "true", "False", "Infinity", "x" * 5000]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(HUGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308]),
    st.text(max_size=10), st.sampled_from(NASTY_TEXT))


def _nest(depth: int, leaf: Any, as_dict: bool) -> Any:
    """``leaf`` inside ``depth`` lists (or dicts), built without recursion."""
    value = leaf
    for level in range(depth):
        value = {"k": value} if as_dict and level % 2 else [value]
    return value


#: Deeper than the API's own JSON depth limit (64), far below the interpreter's recursion limit.
deep_values = st.builds(_nest, st.integers(1, 120), scalars, st.booleans())

json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner,
                                                                                  max_size=4)),
    max_leaves=12)


def weighted(*pairs: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, each chosen with its weight (the first is what shrinking goes to)."""
    choices = [strategy for weight, strategy in pairs for _ in range(weight)]
    return st.integers(0, len(choices) - 1).flatmap(lambda index: choices[index])


# -- property 1: validate_prompt answers every prompt --------------------------------------------
PROMPT_IDS = ["1", "2", "3", "4", "5"]
link_ids = st.one_of(st.sampled_from(PROMPT_IDS), st.sampled_from([1, 2, 99, -1, 0]), st.text(max_size=3))


def input_values(ids: st.SearchStrategy) -> st.SearchStrategy:
    """Literals, links (dangling, self, cyclic, bad index) and malformed links."""
    good_link = st.tuples(ids, st.integers(-3, 6)).map(list)
    bad_link = st.one_of(
        st.tuples(ids).map(list), st.tuples(ids, st.integers(0, 2), st.integers(0, 2)).map(list),
        st.tuples(st.sampled_from([None, True, 1.5, [], {}]), st.integers(0, 2)).map(list),
        st.tuples(ids, st.sampled_from(["0", 1.0, True, None, math.nan, 10 ** 30, -(10 ** 30)])).map(list),
        st.just([]))
    return weighted((4, scalars), (4, good_link), (2, bad_link), (1, json_values), (1, deep_values),
                    (1, json_values.map(lambda v: {"__value__": v})))


@st.composite
def api_nodes(draw, ids: st.SearchStrategy) -> Any:
    assert _WORLD is not None
    names = sorted(_WORLD.object_info)
    outputs = sorted(n for n, s in _WORLD.object_info.items() if s.get("output_node"))
    class_type = draw(weighted((12, st.sampled_from(names)), (8, st.sampled_from(outputs)), (1, json_values)))
    if draw(st.integers(0, 49)) == 0:
        return draw(json_values)  # not a node at all
    schema = _WORLD.object_info.get(class_type) if isinstance(class_type, str) else None
    known = _names_of(schema) if schema else []
    name = st.sampled_from(known) if known else st.text(max_size=6)
    input_names = weighted((5, name), (1, st.text(max_size=6)), (1, st.sampled_from(NASTY_TEXT)))
    inputs = draw(weighted((12, st.dictionaries(input_names, input_values(ids), max_size=8)), (1, json_values)))
    node = {"class_type": class_type, "inputs": inputs}
    if draw(st.booleans()):
        node["_meta"] = draw(weighted((3, st.fixed_dictionaries({"title": scalars})), (1, json_values)))
    if draw(st.integers(0, 9)) == 0:
        del node["inputs"]
    return node


@st.composite
def api_prompts(draw) -> tuple[Any, list | None]:
    keys = weighted((8, st.sampled_from(PROMPT_IDS)), (1, st.text(max_size=4)))
    prompt = draw(weighted((30, st.dictionaries(keys, api_nodes(link_ids), min_size=1, max_size=6)),
                           (1, json_values)))
    ids = list(prompt) if isinstance(prompt, dict) and prompt else PROMPT_IDS
    targets = draw(weighted((8, st.none()), (2, st.lists(weighted((12, st.sampled_from(ids)), (1, json_values)),
                                                         max_size=3))))
    return prompt, targets


def assert_error_shape(error: Any) -> None:
    assert isinstance(error, dict) and set(error) == ERROR_KEYS, error
    assert all(isinstance(error[key], str) for key in ("type", "message", "details")), error
    assert isinstance(error["extra_info"], dict)


@PROPERTIES
@given(case=api_prompts())
def test_validate_prompt_answers_every_prompt(world, case):
    prompt, targets = case
    before = json.dumps(prompt)
    result = world.validate(prompt, targets)

    assert isinstance(result, ValidationResult)
    event("ok" if result.ok else result.error["type"])
    assert json.dumps(prompt) == before  # the caller's prompt is read, never changed
    assert isinstance(result.node_errors, dict)
    json.dumps(result.node_errors)  # the API sends it as it is
    for node_id, entry in result.node_errors.items():
        assert node_id in prompt
        assert set(entry) == {"errors", "dependent_outputs", "class_type"}, entry
        assert entry["errors"] and entry["dependent_outputs"]
        for error in entry["errors"]:
            assert_error_shape(error)
    if result.ok:
        assert result.error is None and result.outputs
        assert all(isinstance(o, str) and o in prompt for o in result.outputs)
        json.dumps(result.prompt)  # what the job store keeps
    else:
        assert_error_shape(result.error)
        assert result.outputs == []


# -- property 2: workflow_to_prompt raises nothing but WorkflowError -----------------------------
SUBGRAPH_IDS = ["5e1f0000-0000-4000-8000-00000000000a", "5e1f0000-0000-4000-8000-00000000000b",
                "5e1f0000-0000-4000-8000-00000000000c"]
UI_NODE_TYPES = ["KSampler", "CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "VAEDecode",
                 "SaveImage", "PreviewImage", "LoadImage", "ImageInvert", "ImageScale", "ImageBlend",
                 "PrimitiveInt", "PrimitiveString", "PrimitiveBoolean"]
VIRTUAL_NODE_TYPES = ["Reroute", "Reroute", "PrimitiveNode", "Note", "MarkdownNote"]
SLOT_TYPES = ["IMAGE", "LATENT", "MODEL", "INT", "STRING", "*", "", "IMAGE,MASK", "COMBO", None]
SLOT_NAMES = ["image", "images", "model", "seed", "value", "samples", "clip", "text", "width", "vae",
              "positive", "ckpt_name", "", "*"]
LINK_IDS = list(range(1, 9))


def junk_or(strategy: st.SearchStrategy, weight: int = 12, junk: st.SearchStrategy = json_values) -> st.SearchStrategy:
    """``strategy`` mostly, a wrong type (any JSON value unless ``junk`` narrows it) sometimes."""
    return weighted((weight, strategy), (1, junk))


# Any JSON value where a field's own type belongs. These once found five crashes of the converter
# (an infinite link slot; a number where a list belongs; a list as a slot name; properties that
# are not an object; a negative slot of a bypassed node without inputs), fixed in
# graph/workflow/model.py (_list, _slots, _normal_node, _parse_link) and convert.py.
finite_scalars = scalars
iterable_junk = json_values
hashable_junk = json_values
mapping_junk = json_values

ui_types = junk_or(st.sampled_from(SLOT_TYPES))
ui_names = junk_or(st.sampled_from(SLOT_NAMES), junk=hashable_junk)
ui_link_refs = weighted((8, st.sampled_from(LINK_IDS)), (3, st.none()), (1, scalars))
ui_target_slots = weighted((12, st.integers(0, 3)), (1, st.sampled_from([-1, -2, 10 ** 30, 1.5, True])),
                           (1, finite_scalars))
ui_origin_slots = weighted((12, st.integers(0, 3)), (1, st.sampled_from([-1, -2, 10 ** 30, 1.5, True, math.nan,
                                                                         math.inf])),
                           (1, st.one_of(st.none(), st.text(max_size=3), st.floats(0, 1e300))))
ui_input = st.fixed_dictionaries(
    {"name": ui_names, "link": ui_link_refs},
    optional={"type": ui_types, "widget": junk_or(st.fixed_dictionaries({"name": ui_names}))})
ui_output = st.fixed_dictionaries({"name": ui_names, "type": ui_types},
                                  optional={"links": junk_or(st.lists(ui_link_refs, max_size=3)),
                                            "slot_index": scalars})
ui_properties = st.fixed_dictionaries({}, optional={
    "proxyWidgets": junk_or(st.lists(st.tuples(st.sampled_from(["-1", "1", "2", -1]), ui_names).map(list),
                                     max_size=3)),
    "Run widget replace on values": scalars, "Node name for S&R": scalars})
ui_widgets_values = junk_or(
    st.lists(input_values(st.sampled_from(["1", "2"])), max_size=8)
    | st.dictionaries(st.sampled_from(SLOT_NAMES), scalars, max_size=3))
ui_boundary = st.fixed_dictionaries({"id": scalars, "name": ui_names, "type": ui_types},
                                    optional={"linkIds": junk_or(st.lists(ui_link_refs, max_size=3))})


@st.composite
def ui_graphs(draw, depth: int) -> dict:
    """A graph (the root, or a subgraph definition at ``depth`` > 0) whose node ids are mostly
    unique and types mostly known, so the conversion gets past its first checks and deep into
    links, widgets, bypass, reroutes and subgraphs; any field may hold a wrong type."""
    count = draw(st.integers(0, 6))
    node_ids: list[Any] = list(range(1, count + 1))
    if depth and draw(st.booleans()):
        node_ids += [-10, -20]  # boundary pseudo nodes: only links name them, a node may too
    node_type = weighted((12, st.sampled_from(UI_NODE_TYPES)), (4, st.sampled_from(VIRTUAL_NODE_TYPES)),
                         (4, st.sampled_from(SUBGRAPH_IDS)), (1, st.sampled_from(["NoSuchNode", "workflow>Group"])),
                         (1, json_values))
    nodes: list[Any] = []
    for node_id in node_ids[:count]:
        node = draw(st.fixed_dictionaries({"type": node_type}, optional={
            "mode": junk_or(st.sampled_from([0, 0, 0, 1, 2, 3, 4])),
            "inputs": junk_or(st.lists(junk_or(ui_input), max_size=4), junk=iterable_junk),
            "outputs": junk_or(st.lists(junk_or(ui_output), max_size=3), junk=iterable_junk),
            "widgets_values": ui_widgets_values,
            "widgets_values_named": junk_or(st.dictionaries(st.sampled_from(SLOT_NAMES), scalars, max_size=3)),
            "properties": junk_or(ui_properties, junk=mapping_junk), "title": scalars, "flags": json_values,
            "size": json_values}))
        node["id"] = draw(weighted((30, st.just(node_id)), (1, st.sampled_from(node_ids or [1])), (1, scalars)))
        nodes.append(draw(weighted((40, st.just(node)), (1, json_values))))
    ends = weighted((12, st.sampled_from(node_ids or [1])), (1, scalars))
    link_array = st.tuples(st.sampled_from(LINK_IDS), ends, ui_origin_slots, ends, ui_target_slots,
                           ui_types).map(list)
    link_object = st.fixed_dictionaries(
        {"id": st.sampled_from(LINK_IDS), "origin_id": ends, "origin_slot": ui_origin_slots, "target_id": ends,
         "target_slot": ui_target_slots}, optional={"type": ui_types, "parentId": scalars})
    link = weighted((6, link_array), (6, link_object), (1, json_values))
    graph: dict = {"nodes": draw(weighted((40, st.just(nodes)), (1, iterable_junk)))}
    if draw(st.integers(0, 9)):
        graph["links"] = draw(weighted((10, st.lists(link, max_size=8)),
                                       (2, st.dictionaries(st.text(max_size=2), link, max_size=4)),
                                       (1, iterable_junk)))
    if depth:
        graph["id"] = draw(weighted((20, st.sampled_from(SUBGRAPH_IDS)), (1, scalars)))
        graph.update(draw(st.fixed_dictionaries({}, optional={
            "name": scalars, "widgets": json_values, "inputNode": json_values, "outputNode": json_values,
            "inputs": junk_or(st.lists(junk_or(ui_boundary), max_size=3), junk=iterable_junk),
            "outputs": junk_or(st.lists(junk_or(ui_boundary), max_size=3), junk=iterable_junk)})))
    if depth < 2 and draw(st.integers(0, 2)) == 0:
        definitions = st.lists(junk_or(ui_graphs(depth + 1), 20), max_size=3)
        graph["definitions"] = draw(junk_or(st.fixed_dictionaries({"subgraphs": junk_or(
            definitions, 20, junk=iterable_junk)}), 20))
    return graph


@st.composite
def ui_workflows(draw) -> dict:
    workflow = draw(ui_graphs(0))
    if not isinstance(workflow["nodes"], list):
        workflow["nodes"] = []  # not a UI workflow at all is the first thing checked; tested elsewhere
    workflow.update(draw(st.fixed_dictionaries({}, optional={
        "version": junk_or(st.sampled_from([0.4, 1])), "groups": json_values, "config": json_values,
        "state": json_values, "reroutes": json_values, "floatingLinks": json_values, "last_node_id": scalars,
        "extra": junk_or(st.fixed_dictionaries({}, optional={
            "groupNodes": junk_or(st.dictionaries(st.sampled_from(["Group", "x"]), json_values, max_size=2)),
            "reroutes": json_values, "linkExtensions": json_values}))})))
    return workflow


@settings(PROPERTIES, max_examples=200, deadline=CONVERSION_DEADLINE_MS)
@given(workflow=ui_workflows(), max_nodes=weighted((3, st.none()), (1, st.integers(0, 12))))
def test_workflow_to_prompt_raises_only_workflow_error(world, workflow, max_nodes):
    before = json.dumps(workflow)
    limit = {} if max_nodes is None else {"max_nodes": max_nodes}
    try:
        prompt, warnings = workflow_to_prompt(workflow, world.object_info, **limit)
    except WorkflowError as exc:
        assert str(exc)
        event("WorkflowError")
    else:
        event(f"converted, {len(prompt)} prompt nodes, {len(warnings)} warnings")
        assert isinstance(prompt, dict) and all(isinstance(w, str) for w in warnings)
        for node_id, entry in prompt.items():
            assert isinstance(node_id, str) and entry["class_type"] in world.object_info
        json.dumps(prompt)
    assert json.dumps(workflow) == before  # the caller's workflow is read, never changed


# -- property 3: round trip ----------------------------------------------------------------------
#: Nodes whose validation is their schema alone (no VALIDATE_INPUTS, no files but the checkpoint).
ROUND_TRIP_TYPES = ["CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler",
                    "KSamplerAdvanced", "VAEDecode", "VAEEncode", "LatentUpscale", "LatentUpscaleBy", "EmptyImage",
                    "ImageInvert", "ImageScale", "ImageScaleBy", "ImageBlur", "ImageSharpen", "ImageBlend",
                    "ImageCrop", "ImageBatch", "ImageToMask", "MaskToImage", "PrimitiveInt", "PrimitiveFloat",
                    "PrimitiveString", "PrimitiveStringMultiline", "PrimitiveBoolean"]
OUTPUT_TYPES = ["SaveImage", "PreviewImage"]
T2I_CHAIN = ["CheckpointLoaderSimple", "CLIPTextEncode", "CLIPTextEncode", "EmptyLatentImage", "KSampler",
             "VAEDecode"]
PRIMITIVE_SOCKETS = ("INT", "FLOAT", "STRING", "BOOLEAN")
#: Text the conversion sends without a warning: no {a|b}, comments or %-patterns.
PLAIN_TEXT = st.text(st.characters(blacklist_characters="{}|/%", blacklist_categories=("Cs",)), max_size=12)


def widget_value(input_type: Any, options: dict) -> st.SearchStrategy:
    """A value the schema accepts for this widget."""
    if isinstance(input_type, (list, tuple)):
        return st.sampled_from(list(input_type))
    if input_type == "INT":
        return st.integers(int(options.get("min", -(2 ** 63))), int(options.get("max", 2 ** 63)))
    if input_type == "FLOAT":
        return st.floats(float(options.get("min", -1e9)), float(options.get("max", 1e9)), allow_nan=False,
                         allow_infinity=False)
    if input_type == "BOOLEAN":
        return st.booleans()
    return PLAIN_TEXT


class _Drawn:
    """A UI workflow under construction and the API prompt it stands for."""

    def __init__(self, version: Any) -> None:
        self.version = version
        self.nodes: list[dict] = []
        self.links: list[Any] = []
        self.expected: dict = {}
        self.producers: dict[str, list[tuple[dict, int]]] = {}  # output type -> (node, slot)
        self.next_id = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def link(self, origin: dict, origin_slot: int, target: dict, target_slot: int, link_type: str) -> int:
        link_id = self.new_id()
        if self.version == 0.4:
            self.links.append([link_id, origin["id"], origin_slot, target["id"], target_slot, link_type])
        else:
            self.links.append({"id": link_id, "origin_id": origin["id"], "origin_slot": origin_slot,
                               "target_id": target["id"], "target_slot": target_slot, "type": link_type})
        origin["outputs"][origin_slot]["links"].append(link_id)
        return link_id

    def ui_node(self, node_type: str, outputs: list[str], mode: int = 0) -> dict:
        node = {"id": self.new_id(), "type": node_type, "pos": [0, 0], "size": [100, 50], "flags": {},
                "order": len(self.nodes), "mode": mode, "inputs": [], "properties": {},
                "outputs": [{"name": t, "type": t, "links": []} for t in outputs]}
        self.nodes.append(node)
        return node


@st.composite
def round_trip_workflows(draw) -> tuple[dict, dict, list[str]]:
    """A well-formed workflow of known nodes; the prompt it must convert to; its output node ids."""
    assert _WORLD is not None
    info = _WORLD.object_info
    drawn = _Drawn(draw(st.sampled_from([0.4, 1])))

    def connect(target: dict, slot_index: int, socket_type: str) -> list:
        """Link a producer of ``socket_type`` to input ``slot_index`` of ``target`` (maybe through a
        legacy Reroute, or for images through a bypassed ImageInvert); the prompt's link."""
        producer, out_slot = draw(st.sampled_from(drawn.producers[socket_type]))
        via = draw(st.sampled_from(["direct", "direct", "reroute", "bypass"]))
        if via == "reroute":
            reroute = drawn.ui_node("Reroute", [socket_type])
            reroute["inputs"] = [{"name": "", "type": "*", "link": None}]
            reroute["inputs"][0]["link"] = drawn.link(producer, out_slot, reroute, 0, socket_type)
            producer, out_slot, expected = reroute, 0, [str(producer["id"]), out_slot]
        elif via == "bypass" and socket_type == "IMAGE":
            bypassed = drawn.ui_node("ImageInvert", ["IMAGE"], mode=4)
            bypassed["inputs"] = [{"name": "image", "type": "IMAGE", "link": None}]
            bypassed["inputs"][0]["link"] = drawn.link(producer, out_slot, bypassed, 0, "IMAGE")
            producer, out_slot, expected = bypassed, 0, [str(producer["id"]), out_slot]
        else:
            expected = [str(producer["id"]), out_slot]
        target["inputs"][slot_index]["link"] = drawn.link(producer, out_slot, target, slot_index, socket_type)
        return expected

    def add(node_type: str) -> dict:
        schema = info[node_type]
        node = drawn.ui_node(node_type, list(schema["output"]))
        node["properties"] = {"Node name for S&R": node_type}
        inputs: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for category in ("required", "optional"):
            for name, spec in (schema["input"].get(category) or {}).items():
                input_type, options = split_spec(spec)
                if is_widget_type(input_type) and not options.get("forceInput"):
                    values[name] = inputs[name] = draw(widget_value(input_type, options))
                    if input_type in PRIMITIVE_SOCKETS and drawn.producers.get(input_type) and draw(st.booleans()):
                        node["inputs"].append({"name": name, "type": input_type, "link": None,
                                               "widget": {"name": name}})
                        inputs[name] = connect(node, len(node["inputs"]) - 1, input_type)
                    elif draw(st.booleans()):  # recent frontends list every widget as an input
                        node["inputs"].append({"name": name, "type": input_type if isinstance(input_type, str)
                                               else "COMBO", "link": None, "widget": {"name": name}})
                elif category == "required" or (drawn.producers.get(input_type) and draw(st.booleans())):
                    node["inputs"].append({"name": name, "type": input_type, "link": None})
                    inputs[name] = connect(node, len(node["inputs"]) - 1, input_type)
        form = draw(st.sampled_from(["list", "list", "dict"]))
        if form == "dict":
            node["widgets_values"] = values
        else:
            companion = {CONTROL: st.sampled_from(["fixed", "randomize", "increment"]), FILTER: st.just(""),
                         UPLOAD: st.just("image")}
            node["widgets_values"] = [values[slot.input_name] if slot.kind == VALUE else draw(companion[slot.kind])
                                      for slot in widget_layout(schema)]
        drawn.expected[str(node["id"])] = {"inputs": inputs, "class_type": node_type}
        for slot, output_type in enumerate(schema["output"]):
            drawn.producers.setdefault(output_type, []).append((node, slot))
        return node

    def sockets(node_type: str) -> list:
        required = info[node_type]["input"].get("required") or {}
        return [t for t, o in map(split_spec, required.values()) if not is_widget_type(t) or o.get("forceInput")]

    def can_add(node_type: str) -> bool:
        return all(drawn.producers.get(t) for t in sockets(node_type))

    def sockets_free(node_type: str) -> bool:
        return not sockets(node_type)

    known = [t for t in ROUND_TRIP_TYPES if t in info and _WORLD.registry.get(t).validate_inputs is None]
    if draw(st.booleans()):  # text to image, then whatever fits
        for node_type in T2I_CHAIN:
            add(node_type)
    for _ in range(draw(st.integers(1, 8))):
        fits = [t for t in known if can_add(t)]
        consumers = [t for t in fits if not sockets_free(t)]  # grow chains, not only sources
        add(draw(st.sampled_from(consumers if consumers and draw(st.booleans()) else fits)))
    if not drawn.producers.get("IMAGE"):
        add("EmptyImage")
    outputs = [str(add(draw(st.sampled_from(OUTPUT_TYPES)))["id"]) for _ in range(draw(st.integers(1, 2)))]
    if draw(st.booleans()):  # what never reaches the prompt
        drawn.ui_node("Note", []).update(widgets_values=["a note"])
        drawn.ui_node("NoSuchNodeMuted", ["IMAGE"], mode=2)

    workflow = {"id": "00000000-0000-4000-8000-000000000000", "revision": 0, "version": drawn.version,
                "config": {}, "extra": {}, "groups": [{"title": "g", "bounding": [0, 0, 10, 10]}]}
    if draw(st.booleans()):  # the whole graph inside one subgraph instance
        instance_id = drawn.new_id()
        definition = {"id": SUBGRAPH_IDS[0], "name": "all", "version": 1, "nodes": drawn.nodes,
                      "links": [link if isinstance(link, dict) else dict(zip(
                          ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type"), link, strict=True))
                          for link in drawn.links],
                      "inputNode": {"id": -10, "bounding": [0, 0, 1, 1]},
                      "outputNode": {"id": -20, "bounding": [0, 0, 1, 1]}, "inputs": [], "outputs": [],
                      "widgets": []}
        workflow.update(nodes=[{"id": instance_id, "type": SUBGRAPH_IDS[0], "mode": 0, "inputs": [],
                                "outputs": [], "properties": {}, "widgets_values": []}],
                        links=[], definitions={"subgraphs": [definition]})
        expected = {f"{instance_id}:{node_id}": {**entry, "inputs": {
            name: [f"{instance_id}:{value[0]}", value[1]] if isinstance(value, list) else value
            for name, value in entry["inputs"].items()}} for node_id, entry in drawn.expected.items()}
        return workflow, expected, [f"{instance_id}:{o}" for o in outputs]
    workflow.update(nodes=drawn.nodes, links=drawn.links)
    return workflow, drawn.expected, outputs


@settings(PROPERTIES, max_examples=100)
@given(case=round_trip_workflows(), as_json=st.booleans())
def test_well_formed_workflow_converts_to_its_prompt_and_validates(world, case, as_json):
    workflow, expected, outputs = case
    object_info = json.loads(json.dumps(world.object_info)) if as_json else world.object_info
    prompt, warnings = workflow_to_prompt(copy.deepcopy(workflow), object_info)

    event(f"{len(prompt)} prompt nodes" if len(prompt) < 6 else "6+ prompt nodes")
    event("in a subgraph" if ":" in next(iter(prompt)) else "at the root")
    event("positional widgets_values" if any(isinstance(n.get("widgets_values"), list) and n["widgets_values"]
                                             for n in workflow["nodes"]) else "no positional widgets_values")
    assert warnings == []
    assert {node_id: {"inputs": e["inputs"], "class_type": e["class_type"]} for node_id, e in prompt.items()} \
        == expected
    result = world.validate(prompt)
    assert result.ok, (result.error, result.node_errors)
    assert result.node_errors == {} and sorted(result.outputs) == sorted(outputs)
