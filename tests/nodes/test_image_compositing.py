"""nodes.image_compositing (padding, layer stacks, the compositor, the box editor): ComfyUI's
signatures, and behaviour against numpy's pad, Pillow, hand-worked layouts, and a prompt run
through the executor."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance

from graph.registry import NodeRegistry
from ldm.imaging import box_elements, layer_stack, operations as imaging
from nodes import image_compositing as L
from tests.nodes.conftest import make_services
from tests.nodes.prompt_support import run_prompt

RNG = np.random.default_rng(3)


def registered():
    registry = NodeRegistry()
    assert registry.register_mappings(L.NODE_CLASS_MAPPINGS, L.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    return registry


def has(spec, options: dict) -> bool:
    """Whether an input spec's options include ``options``."""
    return spec[1].items() >= options.items()


def picture(height=5, width=7, channels=3, batch=1) -> torch.Tensor:
    return torch.from_numpy(RNG.integers(0, 256, (batch, height, width, channels)).astype(np.float32) / 255.0)


# -- schema --------------------------------------------------------------------------------------

def test_names_categories_flags_and_outputs_are_comfyuis():
    info = registered().object_info()
    expected = {
        "PadImageNode": ("image/transform", "Pad Image", ["IMAGE"], ["image"], False),
        "AddLayer": ("image", "Add Layer", ["LAYERS"], ["LAYERS"], False),
        "LayersFromBoundingBoxes": ("image", "Layers From Bounding Boxes", ["LAYERS"], ["LAYERS"], False),
        "ImageCompositor": ("image", "Create Layered Image", ["IMAGE", "MASK"], ["IMAGE", "MASK"], True),
        "CreateBoundingBoxes": ("utilities", "Create Bounding Boxes", ["IMAGE", "BOUNDING_BOX", "ARRAY"],
                                ["preview", "bboxes", "elements"], True),
    }
    for name, (category, display, outputs, names, output_node) in expected.items():
        node = info[name]
        assert (node["category"], node["display_name"], node["output"], node["output_name"],
                node["output_node"]) == (category, display, outputs, names, output_node), name
    assert all(info[name]["experimental"] for name in expected if name != "PadImageNode")


def test_inputs_are_comfyuis():
    info = registered().object_info()
    pad = info["PadImageNode"]["input"]
    assert list(pad["required"]) == ["image", "padding_type", "padding_style"]
    assert pad["required"]["padding_type"][0] == ["pad dimensions", "pad by multiplier", "pad to multiple"]
    assert pad["required"]["padding_style"][0] == ["color", "mirror image"]
    assert has(pad["optional"]["padding_type.multiplier"], {"default": 1.0, "min": 1.0, "max": 8.0, "step": 0.01})
    assert has(pad["optional"]["padding_type.multiple"], {"default": 32, "min": 1, "max": 16384})
    assert has(pad["optional"]["padding_type.left"], {"default": 0, "min": 0, "max": 16384})
    assert pad["optional"]["padding_style.color"][0] == "COLOR"
    assert pad["optional"]["padding_style.color"][1]["default"] == "#000000"
    add = info["AddLayer"]["input"]
    assert list(add["required"]) == ["image"]
    assert list(add["optional"]) == ["layers", "mask", "name", "x", "y", "opacity", "blend_mode", "rotation", "width",
                                     "height", "z_index", "flip_h", "flip_v"]
    modes = add["optional"]["blend_mode"][0]
    assert len(modes) == 26 and modes[0] == "normal" and {"soft-light", "color-dodge", "luminosity"} <= set(modes)
    assert has(add["optional"]["x"], {"default": 0, "min": -16384, "max": 16384})
    assert has(add["optional"]["rotation"], {"default": 0.0, "min": -360.0, "max": 360.0, "step": 1.0})
    assert has(add["optional"]["z_index"], {"min": -1000, "max": 1000})
    boxes = info["LayersFromBoundingBoxes"]["input"]
    assert boxes["required"]["bboxes"][0] == "BOUNDING_BOX,ARRAY,STRING"
    assert boxes["optional"]["crop_to_content"][1]["default"] is True
    editor = info["CreateBoundingBoxes"]["input"]
    assert list(editor["required"]) == ["width", "height", "editor_state"]
    assert has(editor["required"]["width"], {"default": 1024, "min": 64, "max": 16384, "step": 16})
    assert editor["required"]["editor_state"][0] == "BOUNDING_BOXES"
    assert set(editor["optional"]) == {"background", "bboxes", "last_incoming"}
    assert info["ImageCompositor"]["input"]["optional"]["compositor"][0] == "COMPOSITOR"


# -- Pad Image -----------------------------------------------------------------------------------

def pad(image, padding_type, padding_style="color", **options):
    prefixed = {(f"padding_style.{k}" if k in ("color", "feathering") else f"padding_type.{k}"): v
                for k, v in options.items()}
    if padding_style == "color":
        prefixed.setdefault("padding_style.color", "#000000")
        prefixed.setdefault("padding_style.feathering", 0)
    return L.PadImageNode().pad(image, padding_type, padding_style, **prefixed)[0]


def test_pad_dimensions_with_a_color_is_numpys_constant_pad():
    image = picture()
    out = pad(image, "pad dimensions", left=2, top=1, right=0, bottom=3, color="#ff8000")
    expected = np.stack([np.pad(image[0, ..., c].numpy(), ((1, 3), (2, 0)), constant_values=value)
                         for c, value in enumerate((1.0, 128 / 255, 0.0))], axis=-1)
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-7)


@pytest.mark.parametrize("left, top, right, bottom", [(2, 1, 3, 0), (15, 0, 0, 11), (1, 9, 20, 4)])
def test_mirror_image_is_numpys_reflect_even_past_the_image_size(left, top, right, bottom):
    image = picture(4, 5, channels=4, batch=2)
    out = pad(image, "pad dimensions", "mirror image", left=left, top=top, right=right, bottom=bottom)
    expected = np.pad(image.numpy(), ((0, 0), (top, bottom), (left, right), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("size, multiplier, margins", [(8, 1.5, (2, 2)), (7, 1.5, (1, 2)), (10, 1.0, (0, 0)),
                                                       (5, 2.0, (2, 3))])
def test_multiplier_splits_the_growth_with_the_odd_pixel_after(size, multiplier, margins):
    image = torch.zeros((1, size, size, 3))
    image[:, 0, 0] = 1.0
    out = pad(image, "pad by multiplier", multiplier=multiplier)
    grown = size + sum(margins)
    assert out.shape == (1, grown, grown, 3)
    assert out[0, margins[0], margins[0]].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("width, height, multiple, left, right, top, bottom",
                         [(50, 64, 32, 7, 7, 0, 0), (45, 33, 32, 9, 10, 15, 16), (8, 8, 3, 0, 1, 0, 1)])
def test_pad_to_multiple(width, height, multiple, left, right, top, bottom):
    image = torch.rand((1, height, width, 3))
    out = pad(image, "pad to multiple", "mirror image", multiple=multiple)
    expected = np.pad(image.numpy(), ((0, 0), (top, bottom), (left, right), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(out.numpy(), expected)
    assert out.shape[1] % multiple == 0 and out.shape[2] % multiple == 0


def test_a_colors_alpha_digits_are_ignored():
    out = pad(picture(2, 2), "pad dimensions", left=1, top=0, right=0, bottom=0, color="#00ff0080")
    assert out[0, 0, 0].tolist() == [0.0, 1.0, 0.0]


def test_no_padding_returns_the_input_itself():
    image = picture()
    assert pad(image, "pad to multiple", multiple=1) is image
    assert pad(image, "pad dimensions", "mirror image", left=0, top=0, right=0, bottom=0) is image


def test_feathering_fades_padded_sides_only_by_the_feather_mask_ramp():
    image = torch.ones((1, 6, 8, 4))
    out = pad(image, "pad dimensions", left=2, top=0, right=1, bottom=0, color="#000000", feathering=3)
    inner = out[0, :, 2:10]
    weights = imaging.feather_edges(torch.ones((1, 6, 8)), 3, 0, 3, 0)[0]  # ComfyUI's FeatherMask
    torch.testing.assert_close(inner[..., 0], weights)
    assert torch.all(out[..., 3] == 1.0)  # alpha pads opaque and is not faded
    assert torch.all(out[0, :, :2, :3] == 0) and torch.all(out[0, :, 10:, :3] == 0)


def test_a_chosen_option_without_its_inputs_is_an_error():
    with pytest.raises(ValueError, match="padding_type.multiple"):
        L.PadImageNode().pad(picture(), "pad to multiple", "mirror image")


# -- Add Layer / Layers From Bounding Boxes ------------------------------------------------------

def test_add_layer_writes_only_what_differs_from_the_defaults():
    image = picture()
    (document,) = L.AddLayer().execute(image)
    assert document == {"version": 1, "layers": [{"image": image, "type": "raster", "x": 0, "y": 0, "z_index": 0}]}
    mask = torch.zeros((1, 5, 7))
    (document,) = L.AddLayer().execute(image, layers={**document, "canvas": (40, 30)}, mask=mask, name="top", x=3,
                                       y=-2, opacity=0.5, blend_mode="multiply", rotation=90.0, width=10, height=0,
                                       z_index=-1, flip_v=True)
    top = document["layers"][1]
    assert document["canvas"] == (40, 30) and len(document["layers"]) == 2
    assert top["mask"] is mask and top["rotation"] == pytest.approx(math.pi / 2)
    assert {k: v for k, v in top.items() if k not in ("image", "mask", "rotation")} == {
        "type": "raster", "x": 3, "y": -2, "z_index": -1, "name": "top", "opacity": 0.5, "blend_mode": "multiply",
        "w": 10, "flip_v": True}


def test_layers_from_boxes_place_scale_and_stack_above_existing_layers():
    frames = picture(4, 4, batch=3)
    (base,) = L.AddLayer().execute(picture(), z_index=7)
    boxes = [{"x": 5, "y": 6, "width": 8, "height": 0, "metadata": {"desc": "cat", "z_index": 2}},
             {"x": 1, "y": 2, "width": 0, "height": 0, "metadata": {"name": "dog", "desc": "ignored"}}]
    (document,) = L.LayersFromBoundingBoxes().execute(frames, json.dumps(boxes), layers=base)
    first, second, third = document["layers"][1:]
    assert (first["x"], first["y"], first["w"], first["z_index"], first["name"]) == (5, 6, 8, 2, "cat")
    assert "h" not in first and (second["x"], second["z_index"], second["name"]) == (1, 9, "dog")
    assert (third["x"], third["y"], third["z_index"]) == (0, 0, 10)  # no box: the origin
    assert torch.equal(third["image"], frames[2:3])


def test_content_rect_crops_the_frame_and_offsets_it():
    frames, mask = picture(6, 8, batch=1), torch.rand((1, 6, 8))
    box = {"x": 10, "y": 20, "width": 50, "height": 50, "metadata": {"content_rect": [2, 1, 3, 4]}}
    (document,) = L.LayersFromBoundingBoxes().execute(frames, [box], mask=mask, canvas_width=64, canvas_height=48)
    (item,) = document["layers"]
    assert torch.equal(item["image"], frames[:, 1:5, 2:5]) and torch.equal(item["mask"], mask[:, 1:5, 2:5])
    assert (item["x"], item["y"], "w" in item, document["canvas"]) == (12, 21, False, (64, 48))
    (uncropped,) = L.LayersFromBoundingBoxes().execute(frames, [box], crop_to_content=False)[0]["layers"]
    assert (uncropped["x"], uncropped["w"], uncropped["image"].shape) == (10, 50, frames.shape)


def test_elements_need_a_canvas_and_resolve_on_it():
    element = {"type": "obj", "bbox": [100, 250, 500, 750], "desc": "sun"}
    with pytest.raises(ValueError, match="canvas_width"):
        L.LayersFromBoundingBoxes().execute(picture(), [element])
    (document,) = L.LayersFromBoundingBoxes().execute(picture(), [element], canvas_width=200, canvas_height=100)
    item = document["layers"][0]
    assert (item["x"], item["y"], item["w"], item["h"], item["name"]) == (50, 10, 100, 40, "sun")


# -- Create Layered Image ------------------------------------------------------------------------

def solid(rgb, height, width) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float32).expand(1, height, width, 3).clone()


def test_compositor_places_layers_and_reports_transparency(node_services):
    (document,) = L.AddLayer().execute(solid((1, 0, 0), 2, 3), x=1, y=1)
    (document,) = L.AddLayer().execute(solid((0, 0, 1), 2, 2), layers=document, x=3, y=2, z_index=-1)
    out = L.ImageCompositor().execute(document)
    image, mask = out["result"]
    assert image.shape == (1, 4, 5, 4)  # canvas = extent of the placed layers; holes keep alpha
    expected_alpha = np.zeros((4, 5))
    expected_alpha[1:3, 1:4] = 1
    expected_alpha[2:4, 3:5] = 1
    np.testing.assert_array_equal(image[0, ..., 3].numpy(), expected_alpha)
    np.testing.assert_array_equal(mask[0].numpy(), 1 - expected_alpha)
    assert image[0, 2, 3, :3].tolist() == pytest.approx([1.0, 0.0, 0.0])  # red is above: blue's z_index is lower
    assert image[0, 3, 4, :3].tolist() == pytest.approx([0.0, 0.0, 1.0])
    ui = out["ui"]
    assert ui["compositor_canvas"] == [{"w": 5, "h": 4}] and len(ui["compositor_layers"]) == 2
    assert [entry["x"] for entry in ui["compositor_bboxes"]] == [3, 1] and "compositor_state_stale" not in ui
    assert len(ui["images"]) == 1 and len(ui["compositor_inputs"]) == 2


def test_an_opaque_composite_is_rgb_with_an_empty_mask(node_services):
    (document,) = L.AddLayer().execute(solid((0.2, 0.4, 0.6), 3, 3))
    (document,) = L.AddLayer().execute(solid((1, 1, 1), 3, 3), layers=document, blend_mode="multiply")
    image, mask = L.ImageCompositor().execute(document)["result"]
    assert image.shape == (1, 3, 3, 3) and not mask.any()
    # multiply by white changes nothing (up to the 8-bit layer pixels)
    torch.testing.assert_close(image, solid((0.2, 0.4, 0.6), 3, 3), atol=1 / 255, rtol=0)


def test_masks_and_explicit_canvas(node_services):
    mask = torch.zeros((1, 2, 2))
    mask[0, 0, 0] = 1.0  # LoadImage convention: 1 = transparent
    (document,) = L.AddLayer().execute(solid((0, 1, 0), 2, 2), mask=mask)
    image, out_mask = L.ImageCompositor().execute({**document, "canvas": (3, 2)})["result"]
    assert image.shape == (1, 2, 3, 4)
    np.testing.assert_array_equal(out_mask[0].numpy(), [[1, 0, 1], [0, 0, 1]])


def test_a_matching_saved_state_replays_and_a_stale_one_is_flagged(node_services):
    (document,) = L.AddLayer().execute(solid((1, 1, 1), 2, 2))
    first = L.ImageCompositor().execute(document)
    state = {"version": 1, "canvas": {"w": 4, "h": 3}, "inputs": first["ui"]["compositor_inputs"],
             "layers": [{"opacity": 1.0, "transform": {"x": 2, "y": 1, "w": 2, "h": 2, "rotation": 0}}],
             "background": {"color": "#000", "opacity": 1.0, "visible": True}}
    replayed = L.ImageCompositor().execute(document, json.dumps(state))
    image, mask = replayed["result"]
    assert image.shape == (1, 3, 4, 3) and not mask.any()  # the black background makes it opaque
    assert image[0, 1:3, 2:4].min() > 0.9999 and image[0, 0].max() == 0.0 and image[0, :, :2].max() == 0.0
    assert replayed["ui"]["compositor_canvas"] == [{"w": 4, "h": 3}]
    assert "compositor_state_stale" not in replayed["ui"]
    (moved,) = L.AddLayer().execute(solid((1, 1, 1), 2, 2), x=1)
    stale = L.ImageCompositor().execute(moved, state)
    assert stale["ui"]["compositor_state_stale"] == [True] and stale["result"][0].shape == (1, 2, 3, 4)


def test_fingerprints_are_comfyuis_digest_of_pixels_and_placement():
    frame = layer_stack.expand_frames([{"image": solid((0.5, 0.5, 0.5), 2, 2), "x": 1}])
    digest = layer_stack.fingerprints(frame, [None])
    # the layout ComfyUI's editor saves: shape repr, 8-bit RGB, then the placement tuple's repr
    placement = (1, 0, 2, 2, 0.0, 1.0, "normal", True, False, False)
    expected = hashlib.sha256(repr((1, 2, 2, 3)).encode() + bytes([128] * 12) + repr(placement).encode())
    assert digest == [expected.hexdigest()[:16]]
    with_alpha = layer_stack.fingerprints(frame, [torch.ones((1, 2, 2))])
    assert with_alpha != digest
    moved = layer_stack.expand_frames([{"image": solid((0.5, 0.5, 0.5), 2, 2), "x": 2}])
    assert layer_stack.fingerprints(moved, [None]) != digest


def test_empty_stacks_limits_and_unsupported_documents(node_services):
    image, mask = L.ImageCompositor().execute({"version": 1, "layers": []})["result"]
    assert image.shape == (1, 64, 64, 3) and not image.any() and not mask.any()
    with pytest.raises(ValueError, match="version"):
        L.ImageCompositor().execute({"version": 2, "layers": []})
    with pytest.raises(ValueError, match="type"):
        L.ImageCompositor().execute({"layers": [{"type": "text", "image": solid((0, 0, 0), 1, 1)}]})
    with pytest.raises(ValueError, match="blend_mode"):
        L.ImageCompositor().execute({"layers": [{"image": solid((0, 0, 0), 1, 1), "blend_mode": "soft_light"}]})
    with pytest.raises(ValueError, match="at most 50"):
        L.ImageCompositor().execute({"layers": [{"image": torch.zeros((51, 1, 1, 3))}]})


# -- Create Bounding Boxes -----------------------------------------------------------------------

EDITOR = [{"x": 64, "y": 32, "width": 128, "height": 64,
           "metadata": {"type": "text", "text": "Hi", "desc": "title", "palette": ["#ff0000", "#00ff00"]}},
          {"x": 0, "y": 0, "width": 256, "height": 128, "metadata": {"type": "obj", "desc": "sky"}}]


def test_editor_boxes_become_pixel_boxes_and_elements(node_services):
    out = L.CreateBoundingBoxes().execute(256, 128, editor_state=EDITOR)
    preview, boxes, elements = out["result"]
    assert boxes == [[{"x": 64, "y": 32, "width": 128, "height": 64}, {"x": 0, "y": 0, "width": 256, "height": 128}]]
    assert elements == [{"type": "text", "bbox": [250, 250, 750, 750], "text": "Hi", "desc": "title",
                         "color_palette": ["#FF0000", "#00FF00"]},
                        {"type": "obj", "bbox": [0, 0, 1000, 1000], "desc": "sky"}]
    assert preview.shape == (1, 128, 256, 3) and out["ui"] == {"dims": [256, 128]}
    # the first box's outline is drawn in its first palette colour, on the dimmed grey canvas
    assert preview[0, 80, 64].tolist() == [1.0, 0.0, 0.0]
    assert preview[0, 100, 30].tolist() == pytest.approx([32 / 255] * 3)


def test_a_new_upstream_value_replaces_the_canvas_edits(node_services):
    upstream = json.dumps([{"type": "obj", "bbox": [0, 0, 500, 500], "desc": "a"}])
    editor = L.CreateBoundingBoxes()
    fresh = editor.execute(200, 100, editor_state=EDITOR, bboxes=upstream)
    assert fresh["result"][1] == [[{"x": 0, "y": 0, "width": 100, "height": 50}]]
    incoming = fresh["ui"]["input_bboxes"]
    kept = editor.execute(200, 100, editor_state=EDITOR, bboxes=upstream, last_incoming=incoming)
    assert len(kept["result"][1][0]) == 2  # already applied: the canvas edits stay
    assert L.CreateBoundingBoxes().execute(200, 100, editor_state=[])["result"][1] == []


def test_background_is_dimmed_and_fitted(node_services):
    background = torch.ones((1, 2048, 1024, 3))
    preview = L.CreateBoundingBoxes().execute(64, 64, editor_state=[], background=background)["result"][0]
    assert preview.shape == (1, 1024, 512, 3)
    dimmed = ImageEnhance.Brightness(Image.new("RGB", (1, 1), (255, 255, 255))).enhance(0.25).getpixel((0, 0))
    assert preview[0, 500, 200].tolist() == pytest.approx([value / 255 for value in dimmed])
    assert dimmed[0] < 255


# -- through the executor ------------------------------------------------------------------------

class Picture:
    CATEGORY = "test"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return (solid((0.0, 0.5, 1.0), 4, 6),)


def test_a_layered_prompt_runs(tmp_path):
    registry = registered()
    registry.register_mappings({"Picture": Picture})
    prompt = {
        "1": {"class_type": "Picture", "inputs": {}},
        "2": {"class_type": "PadImageNode", "inputs": {"image": ["1", 0], "padding_type": "pad to multiple",
                                                      "padding_type.multiple": 8, "padding_style": "color",
                                                      "padding_style.color": "#ffffff",
                                                      "padding_style.feathering": 0}},
        "3": {"class_type": "AddLayer", "inputs": {"image": ["2", 0], "blend_mode": "screen", "opacity": 1.0}},
        "4": {"class_type": "AddLayer", "inputs": {"image": ["1", 0], "layers": ["3", 0], "x": 1, "y": 2,
                                                   "z_index": -5}},
        "5": {"class_type": "ImageCompositor", "inputs": {"layers": ["4", 0]}},
    }
    outcome = run_prompt(registry, prompt, make_services(tmp_path))
    output = outcome.outputs["5"]
    assert output["compositor_canvas"] == [{"w": 8, "h": 8}] and len(output["compositor_layers"]) == 2
    saved = Image.open(tmp_path / "temp" / output["images"][0]["filename"])
    pixels = np.asarray(saved)
    # screen clips to the picture below it: transparent where only the white padding lies, and
    # the picture screened with itself (in sRGB: 1 - (1 - c)²) where they overlap
    assert saved.mode == "RGBA" and pixels[0, 0].tolist() == [0, 0, 0, 0]
    assert np.abs(pixels[3, 3].astype(int) - [0, 192, 255, 255]).max() <= 1


@pytest.mark.parametrize("value, expected", [
    ({"x": 1, "y": 2, "width": 3, "height": 4}, [{"x": 1, "y": 2, "width": 3, "height": 4}]),
    ([[{"x": 5, "y": 0, "width": 1, "height": 1}], [{"x": 9, "y": 9, "width": 9, "height": 9}]],
     [{"x": 5, "y": 0, "width": 1, "height": 1}]),  # a list per frame: the first frame
    ('{"type": "text", "bbox": [0, 0, 250, 500], "text": "A", "color_palette": ["#abc"]}',
     [{"x": 0, "y": 0, "width": 100, "height": 25,
       "metadata": {"type": "text", "text": "A", "desc": "", "palette": ["#abc"]}}]),
    ("  ", []), (None, []), ([], []),
])
def test_box_inputs_of_every_shape(value, expected):
    assert box_elements.boxes_from_input(value, 200, 100) == expected


@pytest.mark.parametrize("value, message", [("{oops", "not valid JSON"), ([1, 2], "got int"),
                                            ({"x": 1}, "bounding box"), ([{"bbox": [1, 2]}], "bounding boxes"),
                                            ([{"bbox": [0, "a", 1, 1]}], "four numbers"), (7, "got int")])
def test_malformed_box_inputs_say_what_was_expected(value, message):
    with pytest.raises(ValueError, match=message):
        box_elements.boxes_from_input(value, 100, 100)


def test_a_region_with_a_negative_extent_starts_at_its_other_corner():
    region = {"x": 0.5, "y": 0.5, "w": -0.25, "h": 0.25}
    assert box_elements.region_pixels(region, 200, 100) == {"x": 50, "y": 50, "width": 50, "height": 25}
    assert box_elements.region_element(region)["bbox"] == [500, 250, 750, 500]
