"""V3 nodes running through Weft's executor: outputs and ui, hidden values, lazy inputs,
``fingerprint_inputs`` and the cache, ``validate_inputs``, blocking, expansion, and V3 beside V1
nodes of the same pack (tests/facade/packs/v3_pack)."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys

import pytest

from graph.png_metadata import read_text
from graph.validation import validate_prompt
from nodes.custom import load_custom_packs

from .conftest import PACKS_DIR


def import_test_pack(name: str = "weft_v3_pack_under_test"):
    spec = importlib.util.spec_from_file_location(name, PACKS_DIR / "v3_pack" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def register_test_pack(studio):
    """The test pack's V3 nodes (from its extension) and its V1 node in one ``NODE_CLASS_MAPPINGS``,
    registered as the pack loader registers a pack's mappings."""
    pack = import_test_pack()

    async def entry() -> list:
        extension = await pack.comfy_entrypoint()
        await extension.on_load()
        return await extension.get_node_list()

    mappings = {cls.define_schema().node_id: cls for cls in asyncio.run(entry())} | pack.V1_NODE_CLASS_MAPPINGS
    assert studio.registry.register_mappings(mappings, python_module="custom_nodes.v3_pack") == {}
    return pack


def latest_io():
    return importlib.import_module("comfy_api.latest").io


def empty_image(color: int = 0) -> dict:
    return {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 6, "batch_size": 1, "color": color}}


def describe(image_link, label="cat", repeat=1) -> dict:
    return {"class_type": "WeftV3Describe", "inputs": {"image": image_link, "label": label, "repeat": repeat}}


def test_v3_nodes_run_with_outputs_ui_and_hidden_values(pack_studio):
    pack = register_test_pack(pack_studio)
    prompt = {
        "1": empty_image(0x808080),
        "2": {"class_type": "WeftV3Brightness",
              "inputs": {"image": ["1", 0], "amount": 0.5, "mode": "multiply", "clamp": True}},
        "3": describe(["2", 0], label="cat", repeat=2),
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["2", 1]}},
    }
    outcome = pack_studio.run(prompt)
    ui = outcome.outputs["3"]
    assert ui["text"] == ["cat@3:8x6 cat@3:8x6"]  # cls.hidden.unique_id is the node's id
    assert ui["animated"] == [False]
    [saved] = ui["images"]
    assert saved["type"] == "temp" and saved["subfolder"] == ""
    assert saved["filename"].startswith("ComfyUI_temp_") and saved["filename"].endswith("_00001_.png")
    png = (pack_studio.services.folders.temp / saved["filename"]).read_bytes()
    assert '"class_type": "WeftV3Describe"' in read_text(png)["prompt"]  # the hidden prompt
    # the async V3 node halved the grey (128/255) image
    assert float(outcome.outputs["4"]["text"][0]) == pytest.approx(128 / 255 * 0.5, abs=1e-6)
    assert pack.CALLS["Brightness.execute"] == 1
    assert pack.WeftV3Describe.hidden is None  # the values lived on a per-call class only


def test_lazy_inputs_follow_check_lazy_status(pack_studio):
    pack = register_test_pack(pack_studio)
    prompt = {
        "1": empty_image(0),
        "2": {"class_type": "WeftV1Invert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "WeftV3Brightness",
              "inputs": {"image": ["1", 0], "amount": 0.25, "mode": "add", "clamp": True}},
        "4": {"class_type": "WeftV3Switch", "inputs": {"use_first": False, "first": ["2", 0], "second": ["3", 0]}},
        "5": {"class_type": "PreviewAny", "inputs": {"source": "x"}},
        "6": describe(["4", 0]),
    }
    outcome = pack_studio.run(prompt)
    assert "2" not in outcome.executed and "3" in outcome.executed  # only the chosen branch ran
    assert pack.CALLS["Switch.check_lazy_status"] == 2  # asked, then satisfied
    assert "Invert.invert" not in pack.CALLS


def test_fingerprint_inputs_decide_reuse(pack_studio):
    io = latest_io()
    register_test_pack(pack_studio)
    state = {"version": 1, "seen": []}

    class Watch(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftTestWatch", is_output_node=True,
                             inputs=[io.Image.Input("image"), io.String.Input("path")])

        @classmethod
        def fingerprint_inputs(cls, image, path):
            state["seen"].append((image, path))  # a linked input is None here, as in ComfyUI
            return state["version"]

        @classmethod
        def execute(cls, image, path):
            return io.NodeOutput(ui=io_text(path))

    def io_text(text):
        return importlib.import_module("comfy_api.latest").ui.PreviewText(text)

    pack_studio.registry.register_mappings({"WeftTestWatch": Watch})
    prompt = {"1": empty_image(), "2": {"class_type": "WeftTestWatch", "inputs": {"image": ["1", 0], "path": "a"}}}
    executor = pack_studio.executor()
    first = executor.execute("p1", prompt, ["2"])
    second = executor.execute("p2", prompt, ["2"])
    state["version"] = 2
    third = executor.execute("p3", prompt, ["2"])
    assert "2" in first.executed and "2" not in second.executed and "2" in third.executed
    assert second.outputs["2"] == {"text": ["a"]}  # the cached ui is shown again
    assert state["seen"][0] == (None, "a")


def test_validate_inputs_and_builtin_checks(pack_studio):
    pack = register_test_pack(pack_studio)
    good = {"1": empty_image(), "2": describe(["1", 0])}
    assert validate_prompt(good, pack_studio.registry).ok
    assert pack.CALLS["Describe.validate_inputs"] == 1

    empty_label = validate_prompt({"1": empty_image(), "2": describe(["1", 0], label="  ")}, pack_studio.registry)
    [error] = empty_label.node_errors["2"]["errors"]
    assert (error["type"], error["details"]) == ("custom_validation_failed", "label must not be empty")

    # `repeat` is not a validate_inputs parameter, so its min/max are still checked
    too_many = validate_prompt({"1": empty_image(), "2": describe(["1", 0], repeat=9)}, pack_studio.registry)
    assert too_many.node_errors["2"]["errors"][0]["type"] == "value_bigger_than_max"
    bad_combo = {"1": empty_image(), "2": {"class_type": "WeftV3Brightness",
                                           "inputs": {"image": ["1", 0], "amount": 1.0, "mode": "divide",
                                                      "clamp": True}},
                 "3": describe(["2", 0])}
    errors = validate_prompt(bad_combo, pack_studio.registry).node_errors["2"]["errors"]
    assert errors[0]["type"] == "value_not_in_list"


def test_v3_and_v1_nodes_of_one_pack_in_one_prompt(pack_studio):
    pack = register_test_pack(pack_studio)
    prompt = {
        "1": empty_image(0),
        "2": {"class_type": "WeftV1Invert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "WeftV3Brightness",
              "inputs": {"image": ["2", 0], "amount": 0.5, "mode": "multiply", "clamp": False}},
        "4": {"class_type": "WeftV1Invert", "inputs": {"image": ["3", 0]}},
        "5": describe(["4", 0], label="both"),
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["3", 1]}},
    }
    outcome = pack_studio.run(prompt)
    assert outcome.outputs["6"]["text"] == ["0.5"]  # black, inverted to white, halved
    assert outcome.outputs["5"]["text"] == ["both@5:8x6"]
    assert pack.CALLS["Invert.invert"] == 2


def test_hidden_value_named_like_an_input(pack_studio):
    io = latest_io()
    ui = importlib.import_module("comfy_api.latest").ui

    class Echo(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            # an output node gets the hidden `prompt`; this one also has a `prompt` text input
            return io.Schema(node_id="WeftTestEcho", is_output_node=True, inputs=[io.String.Input("prompt")])

        @classmethod
        def execute(cls, prompt):
            return io.NodeOutput(ui=ui.PreviewText(f"{prompt}|{sorted(cls.hidden.prompt)}"))

    pack_studio.registry.register_mappings({"WeftTestEcho": Echo})
    outcome = pack_studio.run({"7": {"class_type": "WeftTestEcho", "inputs": {"prompt": "hello"}}})
    assert outcome.outputs["7"]["text"] == ["hello|['7']"]


def test_input_lists_and_hidden_values(pack_studio):
    io = latest_io()
    ui = importlib.import_module("comfy_api.latest").ui

    class Gather(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftTestGather", is_output_node=True, is_input_list=True,
                             inputs=[io.Int.Input("value")], hidden=[io.Hidden.unique_id])

        @classmethod
        def execute(cls, value):
            return io.NodeOutput(ui=ui.PreviewText(f"{value}|{cls.hidden.unique_id}"))

    pack_studio.registry.register_mappings({"WeftTestGather": Gather})
    outcome = pack_studio.run({"4": {"class_type": "WeftTestGather", "inputs": {"value": 5}}})
    assert outcome.outputs["4"]["text"] == ["[5]|4"]  # the inputs come as lists, the hidden id does not


def test_block_execution_and_expansion(pack_studio):
    io = latest_io()
    register_test_pack(pack_studio)

    class Gate(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftTestGate", inputs=[io.Image.Input("image"), io.Boolean.Input("open")],
                             outputs=[io.Image.Output()])

        @classmethod
        def execute(cls, image, open):
            return io.NodeOutput(image) if open else io.NodeOutput(block_execution="gate closed")

    class Grow(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftTestGrow", outputs=[io.Image.Output()], enable_expand=True,
                             hidden=[io.Hidden.unique_id])

        @classmethod
        def execute(cls):
            made, inverted = f"{cls.hidden.unique_id}.made", f"{cls.hidden.unique_id}.inverted"
            graph = {made: empty_image(0),
                     inverted: {"class_type": "WeftV1Invert", "inputs": {"image": [made, 0]}}}
            return io.NodeOutput([inverted, 0], expand=graph)

    class NoGrow(Grow):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftTestNoGrow", outputs=[io.Image.Output()], hidden=[io.Hidden.unique_id])

    pack_studio.registry.register_mappings({"WeftTestGate": Gate, "WeftTestGrow": Grow, "WeftTestNoGrow": NoGrow})
    closed = pack_studio.execute({"1": empty_image(), "2": {"class_type": "WeftTestGate",
                                                            "inputs": {"image": ["1", 0], "open": False}},
                                  "3": describe(["2", 0])})
    assert closed.status == "error" and "gate closed" in closed.messages[-1][1]["exception_message"]

    grown = pack_studio.run({"1": {"class_type": "WeftTestGrow", "inputs": {}}, "2": describe(["1", 0])})
    assert grown.outputs["2"]["text"] == ["cat@2:8x6"]
    assert "1.inverted" in grown.executed

    refused = pack_studio.execute({"1": {"class_type": "WeftTestNoGrow", "inputs": {}}, "2": describe(["1", 0])})
    assert refused.status == "error" and "enable_expand" in refused.messages[-1][1]["exception_message"]


def test_a_node_cannot_keep_state_on_its_class(pack_studio):
    io = latest_io()

    class Sticky(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftTestSticky", is_output_node=True)

        @classmethod
        def execute(cls):
            cls.memory = 1  # ComfyUI runs execute on a locked class clone: this raises there too

    pack_studio.registry.register_mappings({"WeftTestSticky": Sticky})
    outcome = pack_studio.execute({"1": {"class_type": "WeftTestSticky", "inputs": {}}})
    assert outcome.status == "error" and "locked class" in outcome.messages[-1][1]["exception_message"]
    assert not hasattr(Sticky, "memory")


def test_progress_from_the_v3_api(pack_studio):
    latest = importlib.import_module("comfy_api.latest")
    io = latest.io

    class Slow(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="WeftTestSlow", is_output_node=True)

        @classmethod
        async def execute(cls):
            for step in range(1, 4):
                await latest.ComfyAPI().execution.set_progress(step, 3)
            latest.ComfyAPISync().execution.set_progress(3, 3)
            return io.NodeOutput()

    pack_studio.registry.register_mappings({"WeftTestSlow": Slow})
    pack_studio.run({"9": {"class_type": "WeftTestSlow", "inputs": {}}})
    bars = [data for event, data in pack_studio.events if event == "progress"]
    assert [(bar["value"], bar["max"], bar["node"]) for bar in bars] == [(1, 3, "9"), (2, 3, "9"), (3, 3, "9"),
                                                                         (3, 3, "9")]


def test_the_pack_loads_through_the_pack_loader(pack_studio):
    """The loader's ``comfy_entrypoint`` step (nodes/custom.py) registers the extension's nodes."""
    [report] = pack_studio.load("v3_pack")
    assert report.loaded, report.error
    assert sorted(report.nodes) == ["WeftV3Brightness", "WeftV3Describe", "WeftV3Switch"]
    loaded = sys.modules[pack_studio.registry.get("WeftV3Describe").node_class.__module__]
    assert loaded.V3TestExtension.loaded  # on_load ran
    info = pack_studio.registry.node_info("WeftV3Describe")
    assert info["python_module"] == "custom_nodes.v3_pack" and info["display_name"] == "Describe (V3)"
    outcome = pack_studio.run({"1": empty_image(), "2": describe(["1", 0], label="loaded")})
    assert outcome.outputs["2"]["text"] == ["loaded@2:8x6"]


MIXED_PACK = """
from comfy_api.latest import ComfyExtension, io

class MixedDouble(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="MixedDouble", inputs=[io.Int.Input("value")], outputs=[io.Int.Output()])

    @classmethod
    def execute(cls, value):
        return io.NodeOutput(2 * value)

class MixedShow:
    RETURN_TYPES = ()
    FUNCTION = "show"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT",)}}

    def show(self, value):
        return {"ui": {"text": [str(value)]}}

class Ignored(ComfyExtension):
    async def get_node_list(self):
        raise AssertionError("ComfyUI reads NODE_CLASS_MAPPINGS first and never calls comfy_entrypoint")

def comfy_entrypoint():
    return Ignored()

NODE_CLASS_MAPPINGS = {"MixedDouble": MixedDouble, "MixedShow": MixedShow}
"""


def test_a_pack_mixing_v1_and_v3_nodes_in_its_mappings(pack_studio):
    """How packs ship both kinds under ComfyUI: V3 classes in NODE_CLASS_MAPPINGS beside V1 ones."""
    folder = pack_studio.base / "custom_nodes" / "mixed_pack"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(MIXED_PACK)
    [report] = load_custom_packs([folder.parent], pack_studio.registry, whitelist={"mixed_pack"},
                                 host=pack_studio.host)
    assert report.loaded, report.error
    assert sorted(report.nodes) == ["MixedDouble", "MixedShow"]
    outcome = pack_studio.run({"1": {"class_type": "MixedDouble", "inputs": {"value": 21}},
                               "2": {"class_type": "MixedShow", "inputs": {"value": ["1", 0]}}})
    assert outcome.outputs["2"]["text"] == ["42"]
