"""V3 dynamic inputs (``io.MatchType``, ``io.DynamicCombo``, ``io.Autogrow``) and ``io.BoundingBox``:
their ``/object_info`` entries as ComfyUI renders them, Weft's flat V1 view, prompts written with
ComfyUI's dotted keys (``"method.amount"``, ``"values.a"``) and the values ``execute`` receives.

Expected shapes are written from ComfyUI's ``comfy_api/latest/_io.py`` (the late-2025 releases that
have these types: ``MatchType.Template.as_dict``, ``DynamicCombo.Option.as_dict``, the Autogrow
templates' ``as_dict``, ``get_v1_info``'s ``output_matchtypes``, ``build_nested_inputs``).
"""

from __future__ import annotations

import importlib
import json

import pytest
import torch

from graph.validation import validate_prompt

CALLS: dict[str, list] = {}


def served(info: dict) -> dict:
    return json.loads(json.dumps(info))


def dynamic_nodes(io):
    template = io.MatchType.Template("image_or_mask", [io.Image, io.Mask])

    class Scale(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(
                node_id="WeftDynScale", category="tests/v3",
                inputs=[
                    io.MatchType.Input("image", template=template, tooltip="Image or mask."),
                    io.DynamicCombo.Input("method", options=[
                        io.DynamicCombo.Option("multiply", [io.Float.Input("amount", default=1.0, min=0.0, max=4.0)]),
                        io.DynamicCombo.Option("keep", []),
                        io.DynamicCombo.Option("nested", [
                            io.DynamicCombo.Input("inner", options=[
                                io.DynamicCombo.Option("add", [io.Float.Input("offset", default=0.0)]),
                                io.DynamicCombo.Option("none", []),
                            ]),
                            io.Autogrow.Input("terms", template=io.Autogrow.TemplatePrefix(
                                io.Float.Input("term"), prefix="t", min=0, max=3)),
                        ]),
                    ]),
                ],
                outputs=[io.MatchType.Output(template, display_name="output")],
            )

        @classmethod
        def execute(cls, image, method):
            CALLS.setdefault("WeftDynScale", []).append(method)
            if method["method"] == "multiply":
                return io.NodeOutput(image * method["amount"])
            if method["method"] == "nested":
                inner = method["inner"]
                offset = inner.get("offset", 0.0) + sum(method["terms"].values())
                return io.NodeOutput(image + offset)
            return io.NodeOutput(image)

    class Sum(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(
                node_id="WeftDynSum", category="tests/v3", is_output_node=True,
                inputs=[
                    io.String.Input("label", default="sum"),
                    io.Autogrow.Input("values", template=io.Autogrow.TemplateNames(
                        io.Float.Input("value", default=0.0), names=["a", "b", "c"], min=2)),
                    io.Image.Input("image", optional=True),
                ],
                outputs=[io.Float.Output()],
            )

        @classmethod
        def execute(cls, label, values, image=None):
            CALLS.setdefault("WeftDynSum", []).append(values)
            total = sum(values.values())
            if image is not None:
                total += float(image.mean())
            return io.NodeOutput(total, ui={"text": [f"{label}={total:g}"]})

    class Box(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(
                node_id="WeftDynBox", category="tests/v3",
                inputs=[io.BoundingBox.Input("box", tooltip="A box.")],
                outputs=[io.BoundingBox.Output("bounding_box")],
            )

        @classmethod
        def execute(cls, box):
            return io.NodeOutput({**box, "width": box["width"] * 2})

    class BoxArea(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(
                node_id="WeftDynBoxArea", category="tests/v3", is_output_node=True,
                inputs=[io.BoundingBox.Input("box", force_input=True, optional=True)],
                outputs=[],
            )

        @classmethod
        def execute(cls, box=None):
            CALLS.setdefault("WeftDynBoxArea", []).append(box)
            return io.NodeOutput(ui={"text": [str(box["width"] * box["height"])]})

    return [Scale, Sum, Box, BoxArea]


@pytest.fixture
def studio(pack_studio):
    CALLS.clear()
    io = importlib.import_module("comfy_api.latest").io
    nodes = dynamic_nodes(io)
    assert pack_studio.registry.register_mappings({n.define_schema().node_id: n for n in nodes},
                                                  python_module="custom_nodes.v3_dynamic") == {}
    return pack_studio


def empty_image(color: int = 0) -> dict:
    return {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 2, "batch_size": 1, "color": color}}


def preview_any(link) -> dict:
    return {"class_type": "PreviewAny", "inputs": {"source": link}}


# -- /object_info ----------------------------------------------------------------------------------------

def test_match_type_node_info(studio):
    info = served(studio.registry.node_info("WeftDynScale"))
    allowed = {"template_id": "image_or_mask", "allowed_types": "IMAGE,MASK"}
    assert info["input"]["required"]["image"] == ["COMFY_MATCHTYPE_V3", {"tooltip": "Image or mask.",
                                                                         "template": allowed}]
    assert info["output"] == ["COMFY_MATCHTYPE_V3"]
    assert info["output_name"] == ["output"]
    assert info["output_matchtypes"] == ["image_or_mask"]
    assert info["input_order"] == {"required": ["image", "method"]}
    # a template without types allows any type; an output without id or name is called MATCHTYPE
    io = importlib.import_module("comfy_api.latest").io
    bare = io.MatchType.Template("t")
    assert bare.as_dict() == {"template_id": "t", "allowed_types": "*"}
    assert io.MatchType.Output(bare).display_name == "MATCHTYPE"
    with pytest.raises(ValueError):
        io.MatchType.Template("t", [str])


def test_dynamic_combo_node_info(studio):
    method = served(studio.registry.node_info("WeftDynScale"))["input"]["required"]["method"]
    assert method[0] == "COMFY_DYNAMICCOMBO_V3"
    multiply, keep, nested = method[1]["options"]
    assert multiply == {"key": "multiply", "inputs": {"required": {
        "amount": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 4.0}]}}}
    assert keep == {"key": "keep", "inputs": {"required": {}}}
    inner, terms = nested["inputs"]["required"]["inner"], nested["inputs"]["required"]["terms"]
    assert inner[0] == "COMFY_DYNAMICCOMBO_V3" and [o["key"] for o in inner[1]["options"]] == ["add", "none"]
    assert terms == ["COMFY_AUTOGROW_V3", {"template": {
        "input": {"required": {"term": ["FLOAT", {"forceInput": True}]}}, "prefix": "t", "min": 0, "max": 3}}]


def test_autogrow_and_bounding_box_node_info(studio):
    info = served(studio.registry.node_info("WeftDynSum"))
    assert info["input"]["required"]["values"] == ["COMFY_AUTOGROW_V3", {"template": {
        "input": {"required": {"value": ["FLOAT", {"default": 0.0, "forceInput": True}]}},
        "names": ["a", "b", "c"], "min": 2}}]
    assert "output_matchtypes" not in info
    box = served(studio.registry.node_info("WeftDynBox"))
    assert box["input"]["required"]["box"] == ["BOUNDING_BOX", {
        "tooltip": "A box.", "default": {"x": 0, "y": 0, "width": 512, "height": 512}, "socketless": True}]
    assert box["output"] == ["BOUNDING_BOX"] and box["output_name"] == ["bounding_box"]
    forced = served(studio.registry.node_info("WeftDynBoxArea"))["input"]["optional"]["box"]
    assert forced[1]["forceInput"] is True


def test_v1_view_lists_the_dotted_keys(studio):
    scale = studio.registry.get("WeftDynScale").node_class
    spec = scale.INPUT_TYPES()
    assert spec["required"]["image"][0] == "COMFY_MATCHTYPE_V3"
    assert spec["required"]["method"] == ("COMBO", {"options": ["multiply", "keep", "nested"]})
    assert set(spec["optional"]) == {"method.amount", "method.inner", "method.inner.offset",
                                     "method.terms.t0", "method.terms.t1", "method.terms.t2"}
    assert spec["optional"]["method.inner"][1]["options"] == ["add", "none"]
    assert scale.RETURN_TYPES == ("COMFY_MATCHTYPE_V3",)
    summed = studio.registry.get("WeftDynSum").node_class.INPUT_TYPES()
    assert list(summed["required"]) == ["label", "values.a", "values.b"]
    assert list(summed["optional"]) == ["values.c", "image"]


# -- prompts and execute ---------------------------------------------------------------------------------

def test_match_type_links_any_allowed_type_and_feeds_typed_inputs(studio):
    prompt = {
        "1": empty_image(0xFFFFFF),
        "2": {"class_type": "WeftDynScale", "inputs": {"image": ["1", 0], "method": "multiply", "method.amount": 0.5}},
        "3": {"class_type": "WeftDynSum", "inputs": {"label": "s", "values.a": 1.0, "values.b": 2.0,
                                                    "image": ["2", 0]}},
        "4": {"class_type": "ImageToMask", "inputs": {"image": ["1", 0], "channel": "red"}},
        "5": {"class_type": "WeftDynScale", "inputs": {"image": ["4", 0], "method": "keep"}},
        "6": preview_any(["5", 0]),
    }
    assert validate_prompt(prompt, studio.registry).ok
    outcome = studio.run(prompt)
    assert outcome.outputs["3"]["text"] == ["s=3.5"]  # 1 + 2 + the halved white image
    assert CALLS["WeftDynScale"] == [{"method": "multiply", "amount": 0.5}, {"method": "keep"}]
    assert CALLS["WeftDynSum"] == [{"a": 1.0, "b": 2.0}]


def test_dynamic_combo_passes_the_chosen_option_as_a_dict(studio):
    prompt = {
        "1": empty_image(0),
        "2": {"class_type": "WeftDynScale", "inputs": {
            "image": ["1", 0], "method": "nested", "method.inner": "add", "method.inner.offset": 0.25,
            "method.terms.t0": 0.125, "method.terms.t2": 0.125,
            "method.amount": 3.0,  # an option not chosen: ComfyUI leaves its inputs out
        }},
        "3": {"class_type": "WeftDynSum", "inputs": {"label": "n", "values.a": 0.0, "values.b": 0.0,
                                                    "image": ["2", 0]}},
    }
    outcome = studio.run(prompt)
    assert CALLS["WeftDynScale"] == [{"method": "nested", "inner": {"inner": "add", "offset": 0.25},
                                      "terms": {"t0": 0.125, "t2": 0.125}}]
    assert outcome.outputs["3"]["text"] == ["n=0.5"]


def test_dynamic_combo_checks_its_choice_and_the_chosen_inputs(studio):
    bad_key = {"1": empty_image(), "2": {"class_type": "WeftDynScale", "inputs": {"image": ["1", 0], "method": "x"}},
               "3": preview_any(["2", 0])}
    result = validate_prompt(bad_key, studio.registry)
    assert not result.ok and result.node_errors["2"]["errors"][0]["type"] == "value_not_in_list"
    out_of_range = {**bad_key, "2": {"class_type": "WeftDynScale",
                                     "inputs": {"image": ["1", 0], "method": "multiply", "method.amount": 9.0}}}
    result = validate_prompt(out_of_range, studio.registry)
    assert not result.ok and result.node_errors["2"]["errors"][0]["type"] == "value_bigger_than_max"
    missing = {**bad_key, "2": {"class_type": "WeftDynScale", "inputs": {"image": ["1", 0], "method": "multiply"}}}
    outcome = studio.execute(missing)
    assert outcome.status == "error"
    assert "method.amount" in outcome.messages[-1][1]["exception_message"]


def test_autogrow_gets_the_grown_inputs_and_requires_min(studio):
    prompt = {"1": {"class_type": "WeftDynSum", "inputs": {"label": "x", "values.a": 1.5, "values.b": 2.0,
                                                          "values.c": 4.0}}}
    assert studio.run(prompt).outputs["1"]["text"] == ["x=7.5"]
    assert CALLS["WeftDynSum"] == [{"a": 1.5, "b": 2.0, "c": 4.0}]
    linked = {"3": {"class_type": "WeftDynSum", "inputs": {"label": "y", "values.a": ["5", 0], "values.b": 1.0}},
              "5": {"class_type": "PrimitiveFloat", "inputs": {"value": 2.5}}}
    assert studio.run(linked).outputs["3"]["text"] == ["y=3.5"]
    assert CALLS["WeftDynSum"][-1] == {"a": 2.5, "b": 1.0}
    too_few = {"1": {"class_type": "WeftDynSum", "inputs": {"label": "x", "values.a": 1.0}}}
    result = validate_prompt(too_few, studio.registry)
    assert not result.ok
    assert result.node_errors["1"]["errors"][0]["extra_info"]["input_name"] == "values.b"


def test_autogrow_with_nothing_grown_is_an_empty_dict(studio):
    io = importlib.import_module("comfy_api.latest").io
    seen = []

    class Optional(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftDynNoneGrown", category="tests/v3", is_output_node=True,
                             inputs=[io.Autogrow.Input("items", template=io.Autogrow.TemplatePrefix(
                                 io.Image.Input("image"), prefix="image", min=0, max=2))])

        @classmethod
        def execute(cls, items):
            seen.append(items)
            return io.NodeOutput()

    assert studio.registry.register_mappings({"WeftDynNoneGrown": Optional}) == {}
    assert list(Optional.INPUT_TYPES().get("optional", {})) == ["items.image0", "items.image1"]
    studio.run({"1": {"class_type": "WeftDynNoneGrown", "inputs": {}}})
    studio.run({"1": empty_image(), "2": {"class_type": "WeftDynNoneGrown", "inputs": {"items.image1": ["1", 0]}}})
    assert seen[0] == {}
    assert list(seen[1]) == ["image1"] and isinstance(seen[1]["image1"], torch.Tensor)


def test_bounding_box_widget_and_link(studio):
    box = {"x": 1, "y": 2, "width": 3, "height": 4}
    prompt = {"1": {"class_type": "WeftDynBox", "inputs": {"box": box}},
              "2": {"class_type": "WeftDynBoxArea", "inputs": {"box": ["1", 0]}}}
    assert validate_prompt(prompt, studio.registry).ok
    outcome = studio.run(prompt)
    assert CALLS["WeftDynBoxArea"] == [{"x": 1, "y": 2, "width": 6, "height": 4}]
    assert outcome.outputs["2"]["text"] == ["24"]


def test_validate_and_fingerprint_get_the_nested_shape(studio):
    io = importlib.import_module("comfy_api.latest").io
    seen = []

    class Pick(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftDynPick", category="tests/v3", is_output_node=True, inputs=[
                io.DynamicCombo.Input("source", options=[
                    io.DynamicCombo.Option("linked", [io.Image.Input("image"), io.Int.Input("n", default=1)]),
                    io.DynamicCombo.Option("none", []),
                ])])

        @classmethod
        def validate_inputs(cls, source):
            seen.append(("validate", source))
            return True

        @classmethod
        def fingerprint_inputs(cls, source):
            seen.append(("fingerprint", source))
            return ""

        @classmethod
        def execute(cls, source):
            seen.append(("execute", {k: type(v).__name__ for k, v in source.items()}))
            return io.NodeOutput()

    assert studio.registry.register_mappings({"WeftDynPick": Pick}) == {}
    prompt = {"1": empty_image(),
              "2": {"class_type": "WeftDynPick", "inputs": {"source": "linked", "source.image": ["1", 0],
                                                            "source.n": 3}}}
    assert validate_prompt(prompt, studio.registry).ok
    studio.run(prompt)
    assert ("validate", {"source": "linked", "n": 3}) in seen  # linked values are not validated
    assert ("fingerprint", {"source": "linked", "n": 3}) in seen  # None for linked ones: left out here
    assert seen[-1] == ("execute", {"source": "str", "image": "Tensor", "n": "int"})
