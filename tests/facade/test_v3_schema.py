"""V3 node classes (``comfy_api.latest.io``) as Weft's registry sees them: the V1 protocol derived
from the schema, and ``/object_info`` entries as ComfyUI renders V3 nodes.

The expected entries are written from ComfyUI's ``comfy_api/latest/_io.py`` (v0.3.64:
``Schema.get_v1_info``, the inputs' ``as_dict``, ``add_to_dict_v1``) and compared after a JSON
round trip, as ``/object_info`` serves them.
"""

from __future__ import annotations

import importlib
import json

import pytest

from graph.folders import FolderPaths
from graph.registry import NodeRegistry
from ldm.devices import detect_compute
from ldm.engine import Engine
from nodes.pack_host import PackHost, install_comfy_facade
from nodes.services import Services


@pytest.fixture
def latest(tmp_path):
    """``comfy_api.latest``, with the facade bound to a bare host."""
    folders = FolderPaths.under(tmp_path)
    folders.ensure()
    install_comfy_facade(PackHost(services=Services(folders=folders, engine=Engine(detect_compute("cpu"))), registry=NodeRegistry()))
    return importlib.import_module("comfy_api.latest")


def served(info: dict) -> dict:
    return json.loads(json.dumps(info))


def register(*classes) -> NodeRegistry:
    registry = NodeRegistry()
    rejected = registry.register_mappings({cls.define_schema().node_id: cls for cls in classes},
                                          python_module="custom_nodes.v3_tests")
    assert rejected == {}
    return registry


def widgets_node(io):
    mine = io.Custom("MY_TYPE")

    class Widgets(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(
                node_id="WeftTestWidgets", display_name="Widgets", category="tests/v3",
                description="Every widget kind.",
                inputs=[
                    io.Model.Input("model", tooltip="The model."),
                    io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True),
                    io.Int.Input("steps", default=20, min=1, max=100, display_mode=io.NumberDisplay.slider,
                                 advanced=True),
                    io.Float.Input("cfg", default=8.0, min=0.0, max=100.0, step=0.1, round=0.01),
                    io.Combo.Input("sampler_name", options=["euler", "dpmpp_2m"], default="euler"),
                    io.Combo.Input("image", options=[], upload=io.UploadType.image,
                                   image_folder=io.FolderType.input),
                    io.MultiCombo.Input("tags", options=["a", "b", "c"], default=["a"], chip=True),
                    io.String.Input("text", multiline=True, dynamic_prompts=True, placeholder="Prompt"),
                    io.String.Input("note", force_input=True),
                    io.Boolean.Input("flag", default=False, optional=True, tooltip="A switch."),
                    io.Latent.Input("latent", display_name="latent in", optional=True, lazy=True),
                    io.MultiType.Input("anything", types=[io.Image, io.Mask]),
                    io.MultiType.Input(io.Float.Input("strength", default=1.0), types=[io.Int]),
                    mine.Input("custom"),
                    io.AnyType.Input("any", optional=True, raw_link=True),
                ],
                outputs=[io.Latent.Output(), io.Int.Output("count"),
                         mine.Output(display_name="mine", tooltip="Mine.", is_output_list=True)],
                hidden=[io.Hidden.unique_id, io.Hidden.dynprompt],
            )

        @classmethod
        def execute(cls, **kwargs):
            return io.NodeOutput(None, 0, [])

    return Widgets


def test_object_info_matches_comfyui_for_every_widget_kind(latest):
    io = latest.io
    registry = register(widgets_node(io))
    assert served(registry.node_info("WeftTestWidgets")) == {
        "input": {
            "required": {
                "model": ["MODEL", {"tooltip": "The model."}],
                "seed": ["INT", {"default": 0, "min": 0, "max": 18446744073709551615,
                                 "control_after_generate": True}],
                "steps": ["INT", {"advanced": True, "default": 20, "min": 1, "max": 100, "display": "slider"}],
                "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}],
                "sampler_name": ["COMBO", {"default": "euler", "multiselect": False,
                                           "options": ["euler", "dpmpp_2m"]}],
                "image": ["COMBO", {"multiselect": False, "options": [], "image_upload": True,
                                    "image_folder": "input"}],
                "tags": ["COMBO", {"default": ["a"], "multiselect": True, "options": ["a", "b", "c"],
                                   "multi_select": True, "chip": True}],
                "text": ["STRING", {"multiline": True, "placeholder": "Prompt", "dynamicPrompts": True}],
                "note": ["STRING", {"forceInput": True, "multiline": False}],
                "anything": ["IMAGE,MASK", {}],
                "strength": ["FLOAT,INT", {"default": 1.0, "widgetType": "FLOAT"}],
                "custom": ["MY_TYPE", {}],
            },
            "optional": {
                "flag": ["BOOLEAN", {"tooltip": "A switch.", "default": False}],
                "latent": ["LATENT", {"display_name": "latent in", "lazy": True}],
                "any": ["*", {"rawLink": True}],
            },
            "hidden": {"unique_id": ["UNIQUE_ID"], "dynprompt": ["DYNPROMPT"]},
        },
        "input_order": {
            "required": ["model", "seed", "steps", "cfg", "sampler_name", "image", "tags", "text", "note",
                         "anything", "strength", "custom"],
            "optional": ["flag", "latent", "any"],
            "hidden": ["unique_id", "dynprompt"],
        },
        "output": ["LATENT", "INT", "MY_TYPE"],
        "output_is_list": [False, False, True],
        # An output named by id shows that id (ComfyUI since late 2025; v0.3.64 showed "INT").
        "output_name": ["LATENT", "count", "mine"],
        "output_tooltips": [None, None, "Mine."],
        "name": "WeftTestWidgets",
        "display_name": "Widgets",
        "description": "Every widget kind.",
        "python_module": "custom_nodes.v3_tests",
        "category": "tests/v3",
        "output_node": False,
        "deprecated": False,
        "experimental": False,
        "api_node": False,
    }


def flags_node(io):
    class Flags(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftTestFlags", is_api_node=True, is_output_node=True, is_deprecated=True,
                             is_experimental=True, not_idempotent=True, is_input_list=True,
                             search_aliases=["flag test"], essentials_category="Basics",
                             inputs=[io.String.Input("prompt")])

        @classmethod
        def execute(cls, prompt):
            return io.NodeOutput()

    return Flags


def test_schema_flags_and_implied_hidden_values(latest):
    registry = register(flags_node(latest.io))
    info = served(registry.node_info("WeftTestFlags"))
    # API nodes get the two auth values, output nodes the prompt and workflow (Schema.finalize).
    assert info["input"] == {"required": {"prompt": ["STRING", {"multiline": False}]},
                             "hidden": {"auth_token_comfy_org": ["AUTH_TOKEN_COMFY_ORG"],
                                        "api_key_comfy_org": ["API_KEY_COMFY_ORG"],
                                        "prompt": ["PROMPT"], "extra_pnginfo": ["EXTRA_PNGINFO"]}}
    assert info["input_order"]["hidden"] == ["auth_token_comfy_org", "api_key_comfy_org", "prompt", "extra_pnginfo"]
    assert (info["output"], info["output_name"], info["output_tooltips"]) == ([], [], [])
    assert info["display_name"] is None and info["category"] == "sd" and info["description"] == ""
    assert info["api_node"] and info["output_node"] and info["deprecated"] and info["experimental"]
    # fields of later ComfyUI releases, shown because this schema uses them
    assert info["is_input_list"] is True
    assert info["search_aliases"] == ["flag test"] and info["essentials_category"] == "Basics"


def test_later_fields_are_absent_when_unused(latest):
    info = register(widgets_node(latest.io)).node_info("WeftTestWidgets")
    for key in ("is_input_list", "search_aliases", "essentials_category", "dev_only", "price_badge",
                "has_intermediate_output", "output_matchtypes"):
        assert key not in info


def test_v1_protocol_is_derived_from_the_schema(latest):
    io = latest.io
    registry = register(widgets_node(io), flags_node(io))
    widgets = registry.get("WeftTestWidgets")
    assert widgets.return_types == ("LATENT", "INT", "MY_TYPE")
    assert widgets.return_names == ("LATENT", "count", "mine")
    assert widgets.output_is_list == (False, False, True)
    assert widgets.output_tooltips == (None, None, "Mine.")
    assert (widgets.function, widgets.category, widgets.display_name) == ("EXECUTE_V1", "tests/v3", "Widgets")
    assert widgets.python_module == "custom_nodes.v3_tests"
    assert not (widgets.output_node or widgets.not_idempotent or widgets.input_is_list)
    assert not (widgets.has_is_changed or widgets.has_lazy_check) and widgets.validate_inputs is None
    specs = widgets.inputs()
    assert specs["sampler_name"].type == ["euler", "dpmpp_2m"]
    assert specs["latent"].category == "optional" and specs["latent"].lazy
    assert specs["any"].raw_link
    assert specs["unique_id"].category == "hidden" and specs["unique_id"].type == "UNIQUE_ID"
    # Weft validates combo values against their options; a multi-select value is a list, so its
    # V1 spec lists none (the /object_info entry above still does).
    assert specs["tags"].type == "COMBO"

    flags = registry.get("WeftTestFlags")
    assert flags.output_node and flags.not_idempotent and flags.input_is_list
    assert flags.deprecated and flags.experimental and flags.display_name == "WeftTestFlags"
    # A hidden value named like an input gets its own key in the V1 spec.
    assert flags.inputs()["prompt"].category == "required"
    assert flags.inputs()["prompt__hidden"].type == "PROMPT"


def test_schema_is_read_once_per_class_but_inputs_afresh(latest):
    io = latest.io
    calls = []
    choices = ["one"]

    class Counted(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            calls.append(1)
            return io.Schema(node_id="WeftTestCounted", inputs=[io.Combo.Input("pick", options=list(choices))],
                             outputs=[io.String.Output()])

        @classmethod
        def execute(cls, pick):
            return io.NodeOutput(pick)

    for _ in range(3):
        assert Counted.RETURN_TYPES == ("STRING",) and Counted.CATEGORY == "sd"
    assert len(calls) == 1
    choices.append("two")  # a model folder gained a file: the combo shows it
    assert Counted.INPUT_TYPES()["required"]["pick"][1]["options"] == ["one", "two"]
    assert Counted().RETURN_TYPES == ("STRING",)  # instances see the class properties too


def test_malformed_v3_classes_are_rejected_with_reasons(latest):
    io = latest.io

    class Twice(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftTestTwice", inputs=[io.Int.Input("x"), io.Float.Input("x")])

        @classmethod
        def execute(cls, x):
            return io.NodeOutput()

    class NoExecute(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftTestNoExecute")

    rejected = NodeRegistry().register_mappings({"WeftTestTwice": Twice, "WeftTestNoExecute": NoExecute})
    assert "Input ids must be unique" in rejected["WeftTestTwice"]
    assert "No execute function" in rejected["WeftTestNoExecute"]


def test_combo_output_and_custom_types(latest):
    io = latest.io

    class Picker(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftTestPicker",
                             outputs=[io.Combo.Output(options=["euler", "ddim"]), io.AnyType.Output()])

        @classmethod
        def execute(cls):
            return io.NodeOutput("euler", None)

    # v0.3.64: a combo output's type is its choices, so it links into a matching combo input
    assert Picker.RETURN_TYPES == (["euler", "ddim"], "*")
    mine = io.Custom("WEFT_THING")
    assert mine.io_type == "WEFT_THING" and mine.Input("x").get_io_type() == "WEFT_THING"
    assert io.Image.Input is not io.Mask.Input and io.Mask.Input("m").io_type == "MASK"

    @io.comfytype(io_type="WEFT_DECORATED")
    class Decorated:
        pass

    assert Decorated.Output().io_type == "WEFT_DECORATED"


def test_import_paths_packs_use(latest):
    for name in ("comfy_api.v0_0_1", "comfy_api.v0_0_2", "comfy_api.v0_0_3"):
        version = importlib.import_module(name)
        assert version.io is latest.io and version.IO is latest.io and version.ui is latest.ui
        assert version.ComfyExtension is latest.ComfyExtension
    assert latest.IO is latest.io and latest.UI is latest.ui and latest.comfy_io is latest.io
    assert importlib.import_module("comfy_api.latest._io").ComfyNode is latest.io.ComfyNode
    assert importlib.import_module("comfy_api.latest._ui").ImageSaveHelper is latest.ui.ImageSaveHelper
