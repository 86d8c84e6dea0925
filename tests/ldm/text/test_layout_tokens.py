"""Layout tokens (boxes -> the layout LDM's token ids) and the layout encoder.

``taming_reference`` below is written here, rule by rule, from taming-transformers'
``ObjectsBoundingBoxConditionalBuilder.build`` (``conditional_builder/objects_bbox.py``,
``objects_center_points.py``, ``utils.py``) with its ``random.shuffle`` left out — independently of
``ldm.text.layout_tokens`` and without importing taming. The encoder is checked against diffusers'
``LDMBertModel`` at the layout model's vocabulary and sequence length.
"""

from __future__ import annotations

import logging
import math
import random

import pytest
import torch

from ldm.text.layout_handle import (
    TINY_LAYOUT_BERT,
    LayoutHandle,
    build_layout_handle,
    tiny_layout_bert_state_dict,
)
from ldm.text.layout_tokens import (
    COCO_LAYOUT,
    OPENIMAGES_LAYOUT,
    LayoutBox,
    LayoutSpec,
    boxes_from_tokens,
    class_ids,
    class_names,
    layout_tokens,
)
from ldm.text.ldm_bert import build_ldm_bert
from tests.ldm.text.test_ldm_bert import diffusers_model, relative_error


def taming_reference(boxes: list[LayoutBox], n_classes: int, max_objects: int, no_tokens: int,
                     crop=(0.0, 0.0, 1.0, 1.0), encode_crop=True, group=False, additional=False) -> list[int]:
    sections = int(math.sqrt(no_tokens))
    none = no_tokens - 1

    def point(x, y):
        return int(round(y * (sections - 1))) * sections + int(round(x * (sections - 1)))

    def pair(b):
        return point(b[0], b[1]), point(b[0] + b[2], b[1] + b[3])

    def intersection(a, b):
        dx = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
        dy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
        return dx * dy

    def rescale(b, c):
        x0 = max(min((b[0] - c[0]) / c[2], 1.0), 0.0)
        y0 = max(min((b[1] - c[1]) / c[3], 1.0), 0.0)
        return x0, y0, min(b[2] / c[2], 1 - x0), min(b[3] / c[3], 1 - y0)

    def representation(b):
        modifier = 0
        if group:
            modifier |= 1 * (b.group_of is True)
        if additional:
            modifier |= 2 * (b.occluded is True) | 4 * (b.depiction is True) | 8 * (b.inside is True)
        return b.class_id + n_classes * modifier

    boxes = boxes[:max_objects]
    boxes = [b for b in boxes if intersection(b.rect, crop) > 0.0]
    frame = (0.0, 0.0, 1.0, 1.0) if encode_crop else crop
    triples = [(representation(b), *pair(rescale(b.rect, frame))) for b in boxes]
    triples += [(none, none, none)] * (max_objects - len(triples))
    flat = [t for triple in triples for t in triple] + (list(pair(crop)) if encode_crop else [])
    assert all(0 <= t < no_tokens for t in flat)
    return flat


LAYOUTS = {
    "one box": [LayoutBox(3, 0.1, 0.2, 0.3, 0.4)],
    "scene": [LayoutBox(0, 0.0, 0.5, 1.0, 0.5), LayoutBox(42, 0.25, 0.1, 0.2, 0.2),
              LayoutBox(170, 0.6, 0.55, 0.3, 0.4), LayoutBox(7, 0.05, 0.05, 0.01, 0.01)],
    "flags": [LayoutBox(5, 0.2, 0.2, 0.5, 0.5, group_of=True), LayoutBox(6, 0.1, 0.1, 0.2, 0.2, occluded=True,
                                                                        inside=True, depiction=True)],
    "edges": [LayoutBox(1, -0.2, 0.3, 0.5, 0.2), LayoutBox(2, 0.8, 0.9, 0.5, 0.5), LayoutBox(3, 1.2, 0.1, 0.1, 0.1),
              LayoutBox(4, 0.3, 0.3, 0.0, 0.2), LayoutBox(5, 0.0, 0.0, 1.0, 1.0)],
    "halves": [LayoutBox(9, 0.5, 0.5, 0.5, 0.5), LayoutBox(10, 1 / 178, 3 / 178, 0.5, 0.25)],
}


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize("spec", [OPENIMAGES_LAYOUT, COCO_LAYOUT, LayoutSpec(num_classes=400, max_objects=4),
                                  LayoutSpec(num_classes=340, max_objects=6, vocab_size=1024, encode_crop=False)],
                         ids=["openimages", "coco", "4 objects", "no crop, 1024"])
def test_matches_the_taming_rules(name, spec):
    boxes = LAYOUTS[name]
    expected = taming_reference(boxes, spec.num_classes, spec.max_objects, spec.vocab_size,
                                encode_crop=spec.encode_crop, group=spec.use_group_flag,
                                additional=spec.use_additional_flags)
    assert layout_tokens(boxes, spec) == expected
    assert len(expected) == spec.seq_len


def test_crop_matches_the_taming_rules():
    boxes = LAYOUTS["scene"] + LAYOUTS["edges"] + LAYOUTS["flags"]
    crop = (0.2, 0.1, 0.5, 0.6)
    for spec in (OPENIMAGES_LAYOUT, LayoutSpec(num_classes=340, max_objects=12, encode_crop=False)):
        expected = taming_reference(boxes, spec.num_classes, spec.max_objects, spec.vocab_size, crop=crop,
                                    encode_crop=spec.encode_crop, group=spec.use_group_flag,
                                    additional=spec.use_additional_flags)
        assert layout_tokens(boxes, spec, crop) == expected


def test_random_layouts_match_the_taming_rules():
    rng = random.Random(7)
    spec = OPENIMAGES_LAYOUT
    for _ in range(200):
        boxes = [LayoutBox(rng.randrange(spec.num_classes), rng.uniform(-0.2, 1.1), rng.uniform(-0.2, 1.1),
                           rng.uniform(0, 0.9), rng.uniform(0, 0.9), *(rng.random() < 0.2 for _ in range(4)))
                 for _ in range(rng.randint(0, 34))]
        assert layout_tokens(boxes, spec) == taming_reference(boxes, 340, 30, 8192, group=True, additional=True)


def test_worked_example_of_the_released_model():
    # grid 90, points 1/89 apart: (0.1, 0.2) -> column round(8.9) = 9, row round(17.8) = 18;
    # (0.4, 0.6) -> column round(35.6) = 36, row round(53.4) = 53; the whole-image crop -> 0, 89·90 + 89.
    spec = OPENIMAGES_LAYOUT
    assert (spec.grid, spec.pad_token, spec.seq_len) == (90, 8191, 92)
    tokens = layout_tokens([(3, 0.1, 0.2, 0.3, 0.4)], spec)
    assert tokens[:3] == [3, 18 * 90 + 9, 53 * 90 + 36]
    assert tokens[3:90] == [8191] * 87 and tokens[90:] == [0, 8099]
    # flags: group-of adds 1 × 340, occluded 2 × 340, depiction 4 × 340, inside 8 × 340
    flagged = layout_tokens([LayoutBox(3, 0.1, 0.2, 0.3, 0.4, group_of=True, inside=True)], spec)
    assert flagged[0] == 3 + 340 * 9 and flagged[1:] == tokens[1:]


def test_halves_round_to_even():
    # 0.5 · 89 = 44.5 -> 44 (Python's round, as in taming), 1.0 -> 89
    assert layout_tokens([(0, 0.5, 0.5, 0.5, 0.5)], OPENIMAGES_LAYOUT)[1:3] == [44 * 90 + 44, 8099]


def test_no_boxes_is_all_padding():
    assert layout_tokens([], OPENIMAGES_LAYOUT) == [8191] * 90 + [0, 8099]
    assert layout_tokens([], LayoutSpec(num_classes=5, max_objects=2, encode_crop=False)) == [8191] * 6


def test_more_boxes_than_slots_keeps_the_first(caplog):
    spec = LayoutSpec(num_classes=50, max_objects=3)
    boxes = [(i, 0.1 * i, 0.1, 0.05, 0.05) for i in range(5)]
    with caplog.at_level(logging.WARNING, logger="ldm.text.layout_tokens"):
        tokens = layout_tokens(boxes, spec)
    assert tokens[0::3][:3] == [0, 1, 2] and "5 boxes" in caplog.text
    # taming cuts before dropping boxes outside the image: an outside box still takes a slot's place
    outside_first = [(9, 2.0, 2.0, 0.1, 0.1)] + boxes
    assert [t for t in layout_tokens(outside_first, spec)[0:9:3]] == [0, 1, spec.pad_token]


def test_boxes_past_the_edges_are_clamped_as_taming_does():
    spec = OPENIMAGES_LAYOUT
    (left, right), _ = boxes_from_tokens(layout_tokens([(1, -0.2, 0.3, 0.6, 0.2), (2, 0.8, 0.9, 0.5, 0.5)], spec),
                                         spec)
    # starts left of the image: moved to x = 0 with its width kept (taming's clamp), not cut to 0.4
    assert left.x == 0 and left.w == pytest.approx(0.6, abs=0.5 / 89)
    # ends past the right and bottom: cut at the edges
    assert (right.x + right.w, right.y + right.h) == (1.0, 1.0)


def test_boxes_without_area_in_the_image_are_dropped():
    spec = OPENIMAGES_LAYOUT
    dropped = [(3, 1.2, 0.1, 0.1, 0.1), (4, 0.3, 0.3, 0.0, 0.2), (5, 0.3, 0.3, 0.2, 0.0), (6, 1.0, 0.2, 0.3, 0.3)]
    assert layout_tokens(dropped, spec) == layout_tokens([], spec)
    # a tiny box inside one grid cell is kept, its two corners on the same grid point
    tiny = layout_tokens([(8, 0.501, 0.501, 0.001, 0.001)], spec)
    assert tiny[0] == 8 and tiny[1] == tiny[2]


@pytest.mark.parametrize("box, message", [
    ((1, float("nan"), 0.1, 0.2, 0.2), "not finite"),
    ((1, 0.1, 0.1, float("inf"), 0.2), "not finite"),
    ((1, 0.1, 0.1, -0.2, 0.2), "negative"),
    ((340, 0.1, 0.1, 0.2, 0.2), "outside"),
    ((-1, 0.1, 0.1, 0.2, 0.2), "outside"),
    ((1.5, 0.1, 0.1, 0.2, 0.2), "integer"),
    ((1, 0.1, 0.1, 0.2), "class_id, x, y, w, h"),
])
def test_impossible_boxes_are_refused(box, message):
    with pytest.raises(ValueError, match=message):
        layout_tokens([box], OPENIMAGES_LAYOUT)


def test_flags_past_the_vocabulary_are_refused():
    spec = LayoutSpec(num_classes=600, max_objects=2, vocab_size=8192, use_group_flag=True, use_additional_flags=True)
    with pytest.raises(ValueError, match="past the vocabulary"):
        layout_tokens([LayoutBox(599, 0.1, 0.1, 0.2, 0.2, True, True, True, True)], spec)


def test_disabled_flags_do_not_reach_the_tokens():
    spec = LayoutSpec(num_classes=10, max_objects=1)
    assert layout_tokens([LayoutBox(4, 0.1, 0.1, 0.2, 0.2, group_of=True, occluded=True)], spec)[0] == 4
    grouped = LayoutSpec(num_classes=10, max_objects=1, use_group_flag=True)
    assert layout_tokens([LayoutBox(4, 0.1, 0.1, 0.2, 0.2, group_of=True, occluded=True)], grouped)[0] == 14


def test_round_trip_within_the_grid():
    rng = random.Random(3)
    spec = OPENIMAGES_LAYOUT
    step = 1 / (spec.grid - 1)
    boxes = []
    for _ in range(spec.max_objects):
        x, y = rng.uniform(0, 0.9), rng.uniform(0, 0.9)
        boxes.append(LayoutBox(rng.randrange(spec.num_classes), x, y, rng.uniform(0.01, 1 - x),
                               rng.uniform(0.01, 1 - y), *(rng.random() < 0.3 for _ in range(4))))
    decoded, crop = boxes_from_tokens(layout_tokens(boxes, spec), spec)
    assert crop == (0.0, 0.0, 1.0, 1.0)
    assert len(decoded) == len(boxes)
    for box, back in zip(boxes, decoded, strict=True):
        assert (back.class_id, back.group_of, back.occluded, back.depiction, back.inside) == \
               (box.class_id, box.group_of, box.occluded, box.depiction, box.inside)
        for ours, theirs in ((back.x, box.x), (back.y, box.y), (back.x + back.w, box.x + box.w),
                             (back.y + back.h, box.y + box.h)):
            assert abs(ours - theirs) <= step / 2 + 1e-12
    assert boxes_from_tokens(layout_tokens([], spec), spec) == ([], (0.0, 0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="91 tokens"):
        boxes_from_tokens([0] * 91, spec)


def test_spec_from_the_encoder_sizes():
    assert LayoutSpec.for_encoder(8192, 92, 340, use_group_flag=True, use_additional_flags=True) == OPENIMAGES_LAYOUT
    assert LayoutSpec.for_encoder(8192, 11, 5).max_objects == 3
    with pytest.raises(ValueError, match="3 tokens per object"):
        LayoutSpec.for_encoder(8192, 78, 340)
    with pytest.raises(ValueError, match="at least one class"):
        LayoutSpec(num_classes=0)


def test_class_lists():
    openimages, coco = class_names("openimages"), class_names("coco")
    assert len(openimages) == OPENIMAGES_LAYOUT.num_classes == 340 and len(set(openimages)) == 340
    assert len(coco) == COCO_LAYOUT.num_classes == 171 and len(set(coco)) == 171
    # sorted MIDs with /m/01s55n (Suitcase) last; COCO ids sorted as strings ("1", "10", "100", …)
    assert (openimages[0], openimages[-1]) == ("Tortoise", "Suitcase")
    assert coco[:3] == ["person", "traffic light", "cardboard"]
    # names merged into another class by taming's mapping are not classes of their own
    assert "Person" in openimages and not {"Man", "Woman", "Boy", "Girl", "Wall clock"} & set(openimages)
    assert class_ids("openimages")["Suitcase"] == 339 and class_ids("coco")["person"] == 0
    with pytest.raises(ValueError, match="no class list"):
        class_names("imagenet")


# --------------------------------------------------------------------------- the encoder

@pytest.fixture(scope="module")
def handle() -> LayoutHandle:
    return build_layout_handle(tiny_layout_bert_state_dict(seed=11))


def test_context_shape_and_batching(handle):
    assert handle.spec == OPENIMAGES_LAYOUT
    context = handle.encode_layout(LAYOUTS["scene"])
    assert context.shape == (1, 92, TINY_LAYOUT_BERT.width) and context.dtype == torch.float32
    batch = handle.encode_layouts([LAYOUTS["scene"], LAYOUTS["one box"], []])
    assert batch.shape == (3, 92, TINY_LAYOUT_BERT.width)
    torch.testing.assert_close(batch[:1], context, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batch[2:], handle.encode_layout([]), rtol=1e-5, atol=1e-6)


def test_different_layouts_give_different_contexts(handle):
    base = handle.encode_layout([(3, 0.1, 0.2, 0.3, 0.4)])
    for other in ([(4, 0.1, 0.2, 0.3, 0.4)], [(3, 0.5, 0.2, 0.3, 0.4)], [(3, 0.1, 0.2, 0.3, 0.4)] * 2, []):
        assert (handle.encode_layout(other) - base).abs().max() > 1e-3


def test_encoder_matches_diffusers_at_the_layout_sizes():
    state = tiny_layout_bert_state_dict(seed=12)
    ids = torch.tensor([layout_tokens(LAYOUTS[name], OPENIMAGES_LAYOUT) for name in ("scene", "flags", "edges")])
    reference = diffusers_model(state, TINY_LAYOUT_BERT)
    with torch.no_grad():
        expected = reference(ids)[0]
    got = build_layout_handle(state).encode_tokens(ids.tolist())
    assert got.shape == (3, 92, 32)
    assert relative_error(got, expected) <= 1e-4


def test_spec_must_fit_the_encoder():
    state = tiny_layout_bert_state_dict()
    bare = {key.removeprefix("cond_stage_model.transformer."): tensor for key, tensor in state.items()}
    assert build_layout_handle(bare, num_classes=171).spec.num_classes == 171
    with pytest.raises(ValueError, match="does not fit"):
        LayoutHandle(build_ldm_bert(state), LayoutSpec(num_classes=340, max_objects=20))
    handle = build_layout_handle(state)
    with pytest.raises(ValueError, match="rows of 92 tokens"):
        handle.encode_tokens([[0] * 77])
