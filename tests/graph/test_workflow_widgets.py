"""The positional widgets_values <-> input-name map, rule by rule (graph/workflow/widgets.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph.workflow.widgets import (CONTROL, FILTER, UPLOAD, VALUE, WidgetSlot, widget_layout,
                                    widget_values)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def object_info() -> dict:
    return json.loads((FIXTURES / "object_info.json").read_text())


def values(node_type, saved, object_info, **extra):
    warnings: list[str] = []
    node = {"id": 1, "type": node_type, "widgets_values": saved, **extra}
    return widget_values(node, object_info[node_type], "node 1", warnings), warnings


def test_ksampler_seed_is_followed_by_its_control_value(object_info):
    layout = widget_layout(object_info["KSampler"])
    assert [(s.input_name, s.kind) for s in layout] == [
        ("seed", VALUE), ("seed", CONTROL), ("steps", VALUE), ("cfg", VALUE),
        ("sampler_name", VALUE), ("scheduler", VALUE), ("denoise", VALUE)]


def test_noise_seed_of_ksampler_advanced_has_a_control_value(object_info):
    got, warnings = values("KSamplerAdvanced",
                           ["enable", 5, "increment", 30, 6, "euler", "karras", 0, 15, "enable"], object_info)
    assert got == {"add_noise": "enable", "noise_seed": 5, "steps": 30, "cfg": 6, "sampler_name": "euler",
                   "scheduler": "karras", "start_at_step": 0, "end_at_step": 15,
                   "return_with_leftover_noise": "enable"}
    assert warnings == []


def test_layout_rules_of_a_third_party_node(object_info):
    """seed without the option still gets a control (the name rule); a forceInput FLOAT has no
    slot; a combo with the option gets control + filter; control_after_generate false wins over
    the name rule's absence; optional widgets follow required ones."""
    layout = widget_layout(object_info["ExampleNoiseMixer"])
    assert layout == [
        WidgetSlot("seed", VALUE), WidgetSlot("seed", CONTROL),
        WidgetSlot("pattern", VALUE), WidgetSlot("pattern", CONTROL), WidgetSlot("pattern", FILTER),
        WidgetSlot("variation_seed", VALUE), WidgetSlot("weights", VALUE)]
    got, warnings = values("ExampleNoiseMixer", [11, "randomize", "pink", "fixed", "", 3, "1,2"], object_info)
    assert got == {"seed": 11, "pattern": "pink", "variation_seed": 3, "weights": "1,2"}
    assert warnings == []


def test_explicit_false_turns_off_the_seed_name_rule():
    schema = {"input": {"required": {"seed": ["INT", {"control_after_generate": False}]}},
              "input_order": {"required": ["seed"]}}
    assert widget_layout(schema) == [WidgetSlot("seed", VALUE)]


def test_float_control_after_generate_takes_one_slot():
    schema = {"input": {"required": {"jitter": ["FLOAT", {"control_after_generate": True}],
                                     "flag": ["BOOLEAN", {"default": True}]}}}
    assert widget_layout(schema) == [WidgetSlot("jitter", VALUE), WidgetSlot("jitter", CONTROL),
                                     WidgetSlot("flag", VALUE)]


def test_v3_combo_spec_and_no_input_order():
    schema = {"input": {"required": {"mode": ["COMBO", {"options": ["a", "b"], "control_after_generate": True}],
                                     "image": ["IMAGE", {}]}}}
    assert widget_layout(schema) == [WidgetSlot("mode", VALUE), WidgetSlot("mode", CONTROL),
                                     WidgetSlot("mode", FILTER)]


def test_saves_from_before_frontend_1_16_hold_force_input_dummies(object_info):
    got, warnings = values("ExampleNoiseMixer", [11, "randomize", 0.25, "pink", "fixed", "", 3, "1,2"],
                           object_info)
    assert got == {"seed": 11, "pattern": "pink", "variation_seed": 3, "weights": "1,2"}
    assert warnings == []


def test_load_image_upload_button_takes_the_last_required_slot(object_info):
    assert widget_layout(object_info["LoadImage"]) == [WidgetSlot("image", VALUE), WidgetSlot("image", UPLOAD)]
    got, warnings = values("LoadImage", ["dusk-harbour.png", "image"], object_info)
    assert got == {"image": "dusk-harbour.png"}
    assert warnings == []


def test_upload_slot_sits_before_optional_widgets():
    schema = {"input": {"required": {"video": [["clip.mp4"], {"video_upload": True}]},
                        "optional": {"start": ["INT", {"default": 0}]}},
              "input_order": {"required": ["video"], "optional": ["start"]}}
    assert widget_layout(schema) == [WidgetSlot("video", VALUE), WidgetSlot("video", UPLOAD),
                                     WidgetSlot("start", VALUE)]


def test_too_few_values_fall_back_to_schema_defaults(object_info):
    got, warnings = values("EmptyLatentImage", [640], object_info)
    assert got == {"width": 640, "height": 512, "batch_size": 1}
    assert warnings == ["node 1: no saved value for widget(s) height, batch_size; using the schema "
                        "default for height, batch_size"]


def test_missing_combo_value_takes_the_first_choice_and_unset_has_no_default(object_info):
    got, warnings = values("ExampleNoiseMixer", [11, "randomize"], object_info)
    assert got == {"seed": 11, "pattern": "gaussian", "variation_seed": 0, "weights": "1,1"}
    schema = {"input": {"required": {"name": ["STRING", {}]}}}
    warnings = []
    assert widget_values({"widgets_values": []}, schema, "node 2", warnings) == {}
    assert warnings == ["node 2: no saved value for widget(s) name; name left unset"]


def test_too_many_values_are_ignored_with_a_warning(object_info):
    got, warnings = values("VAEDecode", ["stale"], object_info)
    assert got == {}
    assert warnings == ["node 1: widgets_values has 1 values where the schema has 0 widget slots; "
                        "the extra values are ignored"]


def test_dict_widgets_values_are_read_by_name(object_info):
    got, warnings = values("LoraLoader", {"lora_name": "tiny-lora.safetensors", "strength_model": 0.5,
                                          "strength_clip": 0.25, "unrelated_ui_state": True}, object_info)
    assert got == {"lora_name": "tiny-lora.safetensors", "strength_model": 0.5, "strength_clip": 0.25}
    assert warnings == []


def test_named_values_used_when_positions_do_not_fit(object_info):
    """A node that gained a widget since the file was saved: positions shift, names do not."""
    named = {"seed": 8, "control_after_generate": "fixed", "steps": 9, "cfg": 2.5,
             "sampler_name": "heun", "scheduler": "beta", "denoise": 0.4}
    got, warnings = values("KSampler", [8, "fixed", 9, 2.5, "heun", "beta", 0.4, "extra"], object_info,
                           widgets_values_named=named)
    assert got == {"seed": 8, "steps": 9, "cfg": 2.5, "sampler_name": "heun", "scheduler": "beta",
                   "denoise": 0.4}
    assert warnings == []


def test_positions_win_when_they_fit(object_info):
    named = {"width": 1, "height": 2, "batch_size": 3}
    got, _ = values("EmptyLatentImage", [640, 480, 2], object_info, widgets_values_named=named)
    assert got == {"width": 640, "height": 480, "batch_size": 2}


def test_tuple_specs_as_the_registry_holds_them():
    schema = {"input": {"required": {"model": ("MODEL",), "seed": ("INT", {"default": 0}),
                                     "sampler": (("euler", "heun"), {})}},
              "input_order": {"required": ["model", "seed", "sampler"]}}
    assert widget_layout(schema) == [WidgetSlot("seed", VALUE), WidgetSlot("seed", CONTROL),
                                     WidgetSlot("sampler", VALUE)]
