import pytest

from graph.executor import Executor
from graph.registry import NodeRegistry
from graph.validation import validate_prompt
from nodes import register_builtin_nodes
from nodes import utils


@pytest.fixture(scope="module")
def executor():
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    return Executor(registry)


def preview(executor, class_type, **inputs):
    prompt = {"1": {"class_type": class_type, "inputs": inputs},
              "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    result = validate_prompt(prompt, executor.registry)
    assert result.ok, result.node_errors
    outcome = executor.execute("p", result.prompt, result.outputs)
    assert outcome.status == "success", outcome.messages
    return outcome.outputs["2"]["text"][0]


@pytest.mark.parametrize("class_type, inputs, text", [
    ("PrimitiveString", {"value": "hi"}, "hi"),
    ("PrimitiveInt", {"value": 42}, "42"),
    ("PrimitiveFloat", {"value": 0.5}, "0.5"),
    ("PrimitiveBoolean", {"value": True}, "True"),
    ("StringConcatenate", {"string_a": "a", "string_b": "b", "delimiter": "-"}, "a-b"),
    ("StringSubstring", {"string": "abcdef", "start": 1, "end": 3}, "bc"),
    ("StringLength", {"string": "abcd"}, "4"),
    ("CaseConverter", {"string": "hello world", "mode": "Title Case"}, "Hello World"),
    ("StringTrim", {"string": "  x  ", "mode": "Left"}, "x  "),
    ("StringReplace", {"string": "aXa", "find": "a", "replace": "b"}, "bXb"),
    ("StringContains", {"string": "Hello", "substring": "hell", "case_sensitive": False}, "True"),
    ("StringCompare", {"string_a": "Hello", "string_b": "He", "mode": "Starts With", "case_sensitive": True}, "True"),
    ("RegexMatch", {"string": "abc123", "regex_pattern": r"\d+", "case_insensitive": True, "multiline": False,
                    "dotall": False}, "True"),
    ("RegexExtract", {"string": "a1 b2 c3", "regex_pattern": r"([a-z])(\d)", "mode": "All Groups",
                      "case_insensitive": True, "multiline": False, "dotall": False, "group_index": 2}, "1\n2\n3"),
    ("RegexExtract", {"string": "a1 b2", "regex_pattern": r"[a-z]\d", "mode": "All Matches",
                      "case_insensitive": True, "multiline": False, "dotall": False, "group_index": 1}, "a1\nb2"),
    ("RegexReplace", {"string": "a1b22", "regex_pattern": r"\d+", "replace": "#", "count": 1}, "a#b22"),
])
def test_utility_nodes(executor, class_type, inputs, text):
    assert preview(executor, class_type, **inputs) == text


def test_regex_errors_do_not_fail_the_job(executor):
    assert preview(executor, "RegexMatch", string="x", regex_pattern="(", case_insensitive=True,
                   multiline=False, dotall=False) == "False"


def test_preview_any_serialises_or_explains():
    assert utils.PreviewAny().run({"a": [1, 2]})["ui"]["text"][0] == '{\n    "a": [\n        1,\n        2\n    ]\n}'
    assert utils.PreviewAny().run(object())["ui"]["text"][0] == "source exists, but could not be serialized."


def test_string_nodes_are_comfyuis_text_nodes():
    registry = NodeRegistry()
    assert registry.register_mappings(utils.NODE_CLASS_MAPPINGS, utils.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    info = registry.object_info()
    strings = ["StringConcatenate", "StringSubstring", "StringLength", "CaseConverter", "StringTrim", "StringReplace",
               "StringContains", "StringCompare", "RegexMatch", "RegexExtract", "RegexReplace"]
    assert {info[name]["category"] for name in strings} == {"text"}
    assert [info[name]["display_name"] for name in strings] == [
        "Concatenate Text", "Substring", "Text Length", "Convert Text Case", "Trim Text", "Replace Text",
        "Contains Text", "Compare Text", "Match Text", "Extract Text", "Replace Text (Regex)"]
    extract = info["RegexExtract"]["input"]["required"]
    assert all(extract[name][1]["advanced"] for name in ("case_insensitive", "multiline", "dotall", "group_index"))
    assert info["StringCompare"]["input"]["required"]["case_sensitive"][1] == {"default": True, "advanced": True}
    replace = info["RegexReplace"]["input"]["optional"]
    assert replace["count"][1]["advanced"] and replace["dotall"][1]["advanced"]
    assert replace["dotall"][1]["tooltip"].startswith("When enabled, the dot (.) character")

