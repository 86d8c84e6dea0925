"""nodes.text: ComfyUI's text transforms, Format Text and Save Text."""

from __future__ import annotations

import json

import pytest

from graph.registry import NodeRegistry
from nodes import text, utils
from tests.nodes.prompt_support import run_prompt


@pytest.fixture
def registry():
    registry = NodeRegistry()
    for module in (text, utils):
        assert registry.register_mappings(module.NODE_CLASS_MAPPINGS, module.NODE_DISPLAY_NAME_MAPPINGS,
                                          core=True) == {}
    return registry


@pytest.mark.parametrize("node, args, expected", [
    (text.TextToLowercase, ("MiXeD Ä",), "mixed ä"),
    (text.TextToUppercase, ("MiXeD ä",), "MIXED Ä"),
    (text.TruncateText, ("abcdefgh", 3), "abc"),
    (text.TruncateText, ("ab", 77), "ab"),
    (text.AddTextPrefix, ("cat", "a photo of a "), "a photo of a cat"),
    (text.AddTextSuffix, ("cat", ", best quality"), "cat, best quality"),
    (text.ReplaceText, ("a cat and a cat", "cat", "dog"), "a dog and a dog"),
    (text.StripWhitespace, ("\t  two words \n",), "two words"),
])
def test_transforms(node, args, expected):
    assert node().run(*args) == (expected,)


def test_transforms_map_over_a_text_list(registry):
    """A list of texts runs the transform once per text, as ComfyUI's list execution does."""
    class TextList:
        CATEGORY = "test"
        RETURN_TYPES = ("STRING",)
        OUTPUT_IS_LIST = (True,)
        FUNCTION = "run"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}

        def run(self):
            return (["One ", " Two"],)

    registry.register_mappings({"TextList": TextList})
    prompt = {"1": {"class_type": "TextList", "inputs": {}},
              "2": {"class_type": "StripWhitespace", "inputs": {"texts": ["1", 0]}},
              "3": {"class_type": "AddTextSuffix", "inputs": {"texts": ["2", 0], "suffix": "!"}},
              "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}}}
    outcome = run_prompt(registry, prompt)
    assert outcome.outputs["4"]["text"] == ["One!", "Two!"]


def test_schema(registry):
    info = registry.object_info()
    assert info["TruncateText"]["input"]["required"]["max_length"] == (
        "INT", {"default": 77, "min": 1, "max": 10000, "tooltip": "Maximum text length."})
    assert info["ReplaceText"]["output_name"] == ["texts"] and info["ReplaceText"]["deprecated"] is True
    assert not info["TruncateText"].get("deprecated", False) and info["TruncateText"]["category"] == "text"
    assert info["StringFormat"]["display_name"] == "Format Text"
    assert info["SaveText"]["output_node"] is True
    assert info["SaveText"]["input"]["required"]["format"][0] == ["txt", "csv", "md", "json"]


def test_string_format_with_grown_values():
    values = {"values.a": "cat", "values.b": 3, "values.c": 0.12345}
    assert text.StringFormat().run("{a} x{b:02d} {c:.2f} {{a}}", **values) == ("cat x03 0.12 {a}",)
    assert text.StringFormat().run("{b[1]}", **{"values.b": [4, 5]}) == ("5",)
    with pytest.raises(KeyError):
        text.StringFormat().run("{d}", **values)


def test_string_format_refuses_private_attributes():
    with pytest.raises(ValueError, match="private attribute"):
        text.StringFormat().run("{a.__class__.__init__.__globals__}", **{"values.a": "x"})
    assert text.StringFormat().run("{a.real}", **{"values.a": 5}) == ("5",)


def test_save_text_numbers_files_and_pretty_prints_json(node_services):
    output = node_services.folders.output
    first = text.SaveText().save("hello", "notes/run", "txt")
    second = text.SaveText().save("again", "notes/run", "txt")
    assert first["result"] == ("hello",)
    assert first["ui"]["files"] == [{"filename": "run_00001.txt", "subfolder": "notes", "type": "output"}]
    assert second["ui"]["files"][0]["filename"] == "run_00002.txt"  # never overwrites
    assert (output / "notes" / "run_00001.txt").read_text() == "hello"
    assert (output / "notes" / "run_00002.txt").read_text() == "again"
    assert first["ui"]["text"] == ("hello",)

    saved = text.SaveText().save('{"b": [1, 2], "ä": "x"}', "data", "json")
    path = output / saved["ui"]["files"][0]["filename"]
    assert path.read_text(encoding="utf-8") == json.dumps({"b": [1, 2], "ä": "x"}, indent=2, ensure_ascii=False)
    raw = text.SaveText().save("not json {", "data", "json")
    assert (output / raw["ui"]["files"][0]["filename"]).read_text() == "not json {"


def test_save_text_stays_in_the_output_folder(node_services):
    with pytest.raises(Exception):
        text.SaveText().save("x", "../outside", "txt")
