"""nodes.logic: math expressions, number conversion, switches, boolean logic, combos, colours,
seeds, resolutions and the JSON text nodes — called directly and through the executor."""

from __future__ import annotations

import math

import pytest

from graph.registry import NodeRegistry
from graph.validation import validate_prompt
from tests.nodes.prompt_support import run_prompt
from nodes import logic, utils


class CountingString:
    """A test node that records each run, to see which branches the executor evaluated."""

    runs: list[str] = []
    CATEGORY = "test"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {})}}

    def run(self, text):
        CountingString.runs.append(text)
        return (text,)


@pytest.fixture
def registry():
    registry = NodeRegistry()
    for module in (logic, utils):
        assert registry.register_mappings(module.NODE_CLASS_MAPPINGS, module.NODE_DISPLAY_NAME_MAPPINGS,
                                          core=True) == {}
    registry.register_mappings({"CountingString": CountingString})
    CountingString.runs = []
    return registry


def math_expression(expression, **values):
    return logic.ComfyMathExpression().run(expression, **{f"values.{k}": v for k, v in values.items()})


# -- ComfyMathExpression ---------------------------------------------------------------------------

@pytest.mark.parametrize("expression", [
    "a + b * c", "(a - b) / c", "a // b", "a % b", "a ** 2", "-a + +b", "a > b", "a < b < c",
    "a if a > c else c", "not a", "a and b", "0 or c", "a == 3", "a != 3", "c * 1.5 - a",
])
def test_math_arithmetic_matches_python(expression):
    names = {"a": 3, "b": 2, "c": 4.5}
    expected = eval(expression, {"__builtins__": {}}, names)  # the oracle: Python's own arithmetic
    as_float, as_int, as_bool = math_expression(expression, **names)
    assert as_float == pytest.approx(float(expected)) and as_int == int(expected) and as_bool == bool(expected)


@pytest.mark.parametrize("expression, expected", [
    ("sqrt(a)", 3.0), ("pow(a, 2)", 81.0), ("sum(values)", 11.5), ("sum(a, b)", 7.0), ("min(a, b, c)", -2.0),
    ("max(values)", 9.0), ("abs(b)", 2.0), ("round(c, 1)", 4.5), ("floor(c)", 4.0), ("ceil(c)", 5.0),
    ("log(a, 3)", 2.0), ("log2(8)", 3.0), ("log10(1000)", 3.0), ("int(c)", 4.0), ("float(a) / 2", 4.5),
    ("values[1]", -2.0), ("values[-1]", 4.5), ("sin(0) + cos(0) + tan(0)", 1.0),
])
def test_math_functions(expression, expected):
    assert math_expression(expression, a=9, b=-2, c=4.5)[0] == pytest.approx(expected)


def test_math_outputs_truncate_and_test_truth():
    assert math_expression("a / 4", a=7) == (1.75, 1, True)
    assert math_expression("a - a", a=7) == (0.0, 0, False)
    assert math_expression("a", a=True) == (1.0, 1, True)
    assert math_expression("-7 / 2") == (-3.5, -3, True)


@pytest.mark.parametrize("expression, message", [
    ("   ", "cannot be empty"),
    ("values", "numeric result"),
    ("1e308 * 10", "non-finite"),
    ("10 ** 400", "too large to represent"),
    ("a + zz", "'zz' is not defined"),
    ("a +", "Invalid expression"),
    ("-" * 100_000 + "a", "nested too deeply"),  # the parser's limit
    ("-" * 5_000 + "a", "nested too deeply"),  # the evaluator's
])
def test_math_errors(expression, message):
    with pytest.raises(ValueError, match=message):
        math_expression(expression, a=1)


@pytest.mark.parametrize("expression", [
    "__import__('os').system('true')", "a.__class__", "(lambda: 1)()", "[1, 2][0]", "'text'",
    "{1: 2}", "[x for x in values]", "open('/etc/passwd')", "eval('1')", "values.__len__()",
    "pow(2, 5000)", "9 ** 9999999", "(x := 3)", "sum(*values)",
])
def test_math_refuses_everything_else(expression):
    with pytest.raises(ValueError):
        math_expression(expression, a=2)


def test_math_through_the_executor_with_grown_inputs(registry):
    prompt = {
        "1": {"class_type": "PrimitiveFloat", "inputs": {"value": 2.5}},
        "2": {"class_type": "PrimitiveInt", "inputs": {"value": 4}},
        "3": {"class_type": "ComfyMathExpression", "inputs": {"expression": "a * b + sum(values)",
                                                              "values.a": ["1", 0], "values.b": ["2", 0]}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
        "5": {"class_type": "PreviewAny", "inputs": {"source": ["3", 1]}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["3", 2]}},
    }
    outcome = run_prompt(registry, prompt)
    assert [outcome.outputs[n]["text"][0] for n in "456"] == ["16.5", "16", "True"]
    info = registry.object_info()["ComfyMathExpression"]
    assert info["output_name"] == ["FLOAT", "INT", "BOOL"] and info["category"] == "utilities"
    assert info["display_name"] == "Math Expression"
    assert info["input"]["optional"]["values.z"] == ("FLOAT,INT,BOOLEAN", {})


# -- ComfyNumberConvert ------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (True, (1.0, 1)), (False, (0.0, 0)), (7, (7.0, 7)), (-2.9, (-2.9, -2)), (" 42 ", (42.0, 42)),
    ("3.75", (3.75, 3)), ("1e3", (1000.0, 1000)), ("-0.5", (-0.5, 0)),
    ("123456789012345678901", (1.2345678901234568e20, 123456789012345678901)),
])
def test_number_convert(value, expected):
    assert logic.ComfyNumberConvert().run(value) == expected


@pytest.mark.parametrize("value, error", [("", ValueError), ("abc", ValueError), ("inf", ValueError),
                                          ("nan", ValueError), (math.inf, ValueError), ([1], TypeError)])
def test_number_convert_errors(value, error):
    with pytest.raises(error):
        logic.ComfyNumberConvert().run(value)


# -- switches and boolean logic ----------------------------------------------------------------------

def switch_prompt(switch):
    return {
        "1": {"class_type": "CountingString", "inputs": {"text": "yes"}},
        "2": {"class_type": "CountingString", "inputs": {"text": "no"}},
        "3": {"class_type": "ComfySwitchNode", "inputs": {"switch": switch, "on_true": ["1", 0], "on_false": ["2", 0]}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
    }


@pytest.mark.parametrize("switch, chosen", [(True, "yes"), (False, "no")])
def test_switch_runs_only_the_chosen_branch(registry, switch, chosen):
    outcome = run_prompt(registry, switch_prompt(switch))
    assert outcome.outputs["4"]["text"] == [chosen]
    assert CountingString.runs == [chosen]


def test_switch_decided_by_a_linked_boolean(registry):
    prompt = switch_prompt(None)
    prompt["5"] = {"class_type": "PrimitiveString", "inputs": {"value": ""}}
    prompt["6"] = {"class_type": "ComfyNotNode", "inputs": {"value": ["5", 0]}}  # not "" -> True
    prompt["3"]["inputs"]["switch"] = ["6", 0]
    outcome = run_prompt(registry, prompt)
    assert outcome.outputs["4"]["text"] == ["yes"] and CountingString.runs == ["yes"]


def test_switch_with_the_chosen_side_unconnected_outputs_none(registry):
    prompt = switch_prompt(False)
    del prompt["3"]["inputs"]["on_false"]
    outcome = run_prompt(registry, prompt)
    assert outcome.outputs["4"]["text"] == ["null"] and CountingString.runs == []


def test_and_or_not(registry):
    assert logic.ComfyAndNode().run(**{"values.value0": 1, "values.value1": "x"}) == (True,)
    assert logic.ComfyAndNode().run(**{"values.value0": 1, "values.value3": []}) == (False,)
    assert logic.ComfyOrNode().run(**{"values.value0": 0, "values.value1": None}) == (False,)
    assert logic.ComfyOrNode().run(**{"values.value0": 0, "values.value2": [0]}) == (True,)
    assert logic.ComfyNotNode().run(0.0) == (True,) and logic.ComfyNotNode().run("a") == (False,)
    prompt = {"1": {"class_type": "PrimitiveInt", "inputs": {"value": 3}},
              "2": {"class_type": "PrimitiveBoolean", "inputs": {"value": False}},
              "3": {"class_type": "ComfyOrNode", "inputs": {"values.value0": ["2", 0], "values.value1": ["1", 0]}},
              "4": {"class_type": "ComfyAndNode", "inputs": {"values.value0": ["2", 0], "values.value1": ["1", 0]}},
              "5": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
              "6": {"class_type": "PreviewAny", "inputs": {"source": ["4", 0]}}}
    outcome = run_prompt(registry, prompt)
    assert outcome.outputs["5"]["text"] == ["True"] and outcome.outputs["6"]["text"] == ["False"]
    missing = validate_prompt({"3": {"class_type": "ComfyAndNode", "inputs": {}},
                               "5": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}}}, registry)
    assert not missing.ok  # the first grown input is required (Autogrow min 1)


# -- CustomCombo, colours, seeds, resolutions ------------------------------------------------------

def test_custom_combo_accepts_any_choice(registry):
    prompt = {"1": {"class_type": "CustomCombo", "inputs": {"choice": "my own option", "index": 2}},
              "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
              "3": {"class_type": "PreviewAny", "inputs": {"source": ["1", 1]}}}
    outcome = run_prompt(registry, prompt)
    assert outcome.outputs["2"]["text"] == ["my own option"] and outcome.outputs["3"]["text"] == ["2"]
    info = registry.object_info()["CustomCombo"]
    assert info["output_name"] == ["STRING", "INDEX"] and info["input"]["required"]["choice"][0] == "COMBO"


@pytest.mark.parametrize("color, expected", [
    ("#FF5733", (0xFF5733, "#FF5733", 1.0)), ("#000000", (0, "#000000", 1.0)),
    ("#ffffff80", (16777215, "#ffffff", 128 / 255)),
])
def test_color_to_rgb_int(color, expected):
    rgb, hex_color, alpha = logic.ColorToRGBInt().run(color)
    assert (rgb, hex_color) == expected[:2] and alpha == pytest.approx(expected[2])
    red, green, blue = int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
    assert rgb == red * 65536 + green * 256 + blue


@pytest.mark.parametrize("color", ["FF5733", "#FF573", "#GG5733", "#FF57331", ""])
def test_color_to_rgb_int_rejects_malformed_colors(color):
    with pytest.raises(ValueError, match="#RRGGBB"):
        logic.ColorToRGBInt().run(color)


def test_seed_node(registry):
    assert logic.SeedNode().run(123456789) == (123456789,)
    spec = registry.object_info()["SeedNode"]["input"]["required"]["seed"]
    assert spec[1]["min"] == 0 and spec[1]["max"] == 2 ** 63 - 1 and spec[1]["control_after_generate"] == "fixed"


@pytest.mark.parametrize("ratio, megapixels, multiple, expected", [
    ("1:1 (Square)", 1.0, 8, (1024, 1024)), ("16:9 (Widescreen)", 1.0, 8, (1368, 768)),
    ("16:9 (Widescreen)", 1.0, 64, (1344, 768)), ("2:3 (Portrait Photo)", 0.5, 8, (592, 888)),
    ("21:9 (Ultrawide)", 2.0, 16, (2208, 944)),
])
def test_resolution_selector(ratio, megapixels, multiple, expected):
    width, height = logic.ResolutionSelector().run(ratio, megapixels, multiple)
    assert (width, height) == expected
    assert width % multiple == 0 and height % multiple == 0
    assert width * height == pytest.approx(megapixels * 2 ** 20, rel=0.1)


# -- JSON text ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, key, expected", [
    ('Here you go:\n```json\n{"name": "cat", "n": 3}\n```\nEnjoy!', "name", "cat"),
    ('{"name": "cat", "n": 3}', "n", "3"),
    ('{broken {"a": {"x": 1}} tail', "a", "{'x': 1}"),
    ('{"a": null}', "a", ""),
    ('{"a": 1}', "missing", ""),
    ("no json here", "a", ""),
])
def test_json_extract_string(text, key, expected):
    assert logic.JsonExtractString().run(text, key) == (expected,)


def test_dictionary_and_array_to_string():
    data = {"ä": [1, 2], "b": None}
    assert logic.ConvertDictionaryToString().run(data, 0) == ('{"ä": [1, 2], "b": null}',)
    assert logic.ConvertDictionaryToString().run(data, 2)[0] == '{\n  "ä": [\n    1,\n    2\n  ],\n  "b": null\n}'
    assert logic.ConvertArrayToString().run([1, "x"], 1) == ('[\n 1,\n "x"\n]',)


# -- BranchNode ---------------------------------------------------------------------------------------

def branch_prompt(branch, names):
    return {
        "1": {"class_type": "CountingString", "inputs": {"text": "first"}},
        "2": {"class_type": "CountingString", "inputs": {"text": "second"}},
        "3": {"class_type": "BranchNode", "inputs": {"branch": branch, "branch_names": {"__value__": names},
                                                      "autogrow.branch0": ["1", 0], "autogrow.branch1": ["2", 0]}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
    }


@pytest.mark.parametrize("branch, chosen", [("sketch", "first"), ("photo", "second")])
def test_branch_runs_only_the_branch_chosen_by_name(registry, branch, chosen):
    outcome = run_prompt(registry, branch_prompt(branch, ["sketch", "photo"]))
    assert outcome.outputs["4"]["text"] == [chosen]
    assert CountingString.runs == [chosen]


def test_branch_refuses_a_name_that_is_not_connected():
    with pytest.raises(ValueError, match="not one of the connected branches"):
        logic.BranchNode().run("missing", ["sketch"], **{"autogrow.branch0": 1})
    assert logic.BranchNode().run("branch1", [], **{"autogrow.branch1": 5}) == (5,)
