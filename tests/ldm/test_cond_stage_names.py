"""The names users give the paper's conditioning stages: ImageNet class names for the class model
(``ldm.cond_stage.imagenet_classes``) and the layout widget's JSON boxes (``ldm.cond_stage.layout_json``)."""

from __future__ import annotations

import json

import pytest

from ldm.cond_stage.imagenet_classes import CLASS_LIST_FILE, imagenet_class_index, imagenet_class_names
from ldm.cond_stage.layout_json import parse_layout
from ldm.text.layout_tokens import LayoutBox, class_names


def test_imagenet_list_is_in_the_ilsvrc_order_with_its_provenance():
    names = imagenet_class_names()
    assert len(names) == 1000
    assert (names[0], names[1], names[207], names[999]) == ("tench", "goldfish", "golden retriever", "toilet tissue")
    source = json.loads(CLASS_LIST_FILE.read_text(encoding="utf-8"))["source"]
    assert source["licence"] == "BSD-3-Clause" and len(source["wheel_sha256"]) == 64
    assert source["file"] == "torchvision/models/_meta.py"


@pytest.mark.parametrize("name,index", [("golden retriever", 207), ("Golden Retriever", 207), (" tench ", 0),
                                        ("goldfish, Carassius auratus", 1), ("Carassius auratus, goldfish", 1),
                                        ("Cardigan", 264), ("cardigan", 474)])
def test_imagenet_names_match_ignoring_case_and_synonyms(name, index):
    assert imagenet_class_index(name) == index


def test_imagenet_unknown_and_ambiguous_names_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"'golden retreiver' is not an ImageNet class name.*class_index"):
        imagenet_class_index("golden retreiver")
    with pytest.raises(ValueError, match=r"ambiguous.*264.*474"):
        imagenet_class_index("CARDIGAN")


def test_layout_json_labels_are_names_or_ids_and_coordinates_pass_through():
    names = class_names("openimages")
    value = json.dumps([{"label": "Cat", "x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4},
                        {"label": "tortoise", "x": 0, "y": 0.5, "w": 1, "h": 0.5},
                        {"label": "12", "x": 0.5, "y": 0, "w": 0.25, "h": 0.25},
                        {"label": 7, "x": 0.5, "y": 0, "w": 0.25, "h": 0.25}])
    assert parse_layout(value, names) == [LayoutBox(names.index("Cat"), 0.1, 0.2, 0.3, 0.4),
                                          LayoutBox(0, 0.0, 0.5, 1.0, 0.5), LayoutBox(12, 0.5, 0.0, 0.25, 0.25),
                                          LayoutBox(7, 0.5, 0.0, 0.25, 0.25)]
    assert parse_layout("[]", names) == parse_layout("  ", names) == []


def test_layout_json_errors_name_what_is_wrong():
    names = class_names("openimages")
    with pytest.raises(ValueError, match=r"'Unicorn', '340'.*layout widget's label list"):
        parse_layout('[{"label": "Unicorn", "x": 0, "y": 0, "w": 1, "h": 1}, '
                     '{"label": "340", "x": 0, "y": 0, "w": 1, "h": 1}]', names)
    with pytest.raises(ValueError, match="not JSON"):
        parse_layout("[{label: Cat}]", names)
    with pytest.raises(ValueError, match="JSON list"):
        parse_layout('{"label": "Cat"}', names)
    with pytest.raises(ValueError, match="'w' must be a finite number"):
        parse_layout('[{"label": "Cat", "x": 0, "y": 0, "w": "wide", "h": 1}]', names)
