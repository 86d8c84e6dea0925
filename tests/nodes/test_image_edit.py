"""nodes.image_edit: ComfyUI's signatures, and each node's behaviour against PIL, numpy, scipy or
small tensors worked out by hand; a few prompts run through the executor (list inputs and
outputs, bounding-box literals, previews)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from graph.registry import NodeRegistry
from nodes import image_edit as E
from nodes import image_layers as L
from tests.nodes import prompt_support
from tests.nodes.conftest import make_services


def registered():
    registry = NodeRegistry()
    for module in (E, L):
        assert registry.register_mappings(module.NODE_CLASS_MAPPINGS, module.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    return registry


# -- schema --------------------------------------------------------------------------------------

def test_names_categories_and_display_names_are_comfyuis():
    info = registered().object_info()
    expected = {
        "ImageFlip": ("image/transform", "Flip Image"), "ImageRotate": ("image/transform", "Rotate Image"),
        "ImageCropV2": ("image/transform", "Crop Image"), "ImageStitch": ("image/transform", "Stitch Images"),
        "ResizeAndPadImage": ("image/transform", "Resize And Pad Image"),
        "ImageScaleToMaxDimension": ("image/upscaling", "Scale Image to Max Dimension"),
        "ResizeImageMaskNode": ("image/transform", "Resize Image/Mask"),
        "RepeatImageBatch": ("image/batch", "Repeat Image Batch"),
        "ImageFromBatch": ("image/batch", "Get Image from Batch"), "RebatchImages": ("image/batch", "Rebatch Images"),
        "BatchImagesNode": ("image/batch", "Batch Images"), "BatchMasksNode": ("image/mask", "Batch Masks"),
        "GetImageSize": ("image", "Get Image Size"),
        "SplitImageToTileList": ("image/batch", "Split Image into List of Tiles"),
        "ImageMergeTileList": ("image/batch", "Merge List of Tiles to Image"),
        "ImageGrid": ("image/batch", "Make Image Grid"), "ImageDeduplication": ("image/batch", "Deduplicate Images"),
        "JoinImageWithAlpha": ("mask/compositing", "Join Image with Alpha"),
        "SplitImageWithAlpha": ("mask/compositing", "Split Image with Alpha"),
        "PorterDuffImageComposite": ("mask/compositing", "Porter-Duff Image Composite"),
        "Morphology": ("image/filters", "Apply Morphology"),
        "ImageCropToMask": ("image/transform", "Crop Image to Mask"),
        "PrimitiveBoundingBox": ("utilities/primitive", "Bounding Box"),
        "CropByBBoxes": ("image/transform", "Crop By Bounding Boxes"), "DrawBBoxes": ("detection/", "Draw BBoxes"),
    }
    assert {name: (info[name]["category"], info[name]["display_name"]) for name in expected} == expected
    assert set(info) == set(expected)


def test_key_inputs_and_outputs():
    info = registered().object_info()
    stitch = info["ImageStitch"]["input"]
    assert stitch["required"]["direction"][0] == ["right", "down", "left", "up"]
    assert stitch["required"]["spacing_width"][1] == {"default": 0, "min": 0, "max": 1024, "step": 2, "advanced": True}
    assert list(stitch["optional"]) == ["image2"]
    assert info["PorterDuffImageComposite"]["input"]["required"]["mode"][1]["default"] == "DST"
    assert len(info["PorterDuffImageComposite"]["input"]["required"]["mode"][0]) == 18
    assert info["Morphology"]["input"]["required"]["operation"][0] == [
        "erode", "dilate", "open", "close", "gradient", "bottom_hat", "top_hat"]
    assert info["GetImageSize"]["output_name"] == ["width", "height", "batch_size"]
    assert info["SplitImageToTileList"]["output_is_list"] == [True]
    assert info["RebatchImages"]["output_is_list"] == [True] and E.RebatchImages.INPUT_IS_LIST
    assert info["ImageDeduplication"]["output_is_list"] == [True] and info["ImageDeduplication"]["experimental"]
    assert E.ImageMergeTileList.INPUT_IS_LIST and E.ImageGrid.INPUT_IS_LIST and E.ImageDeduplication.INPUT_IS_LIST
    resize = info["ResizeImageMaskNode"]
    assert resize["input"]["required"]["input"][0] == "IMAGE,MASK"
    assert resize["output"] == ["IMAGE,MASK"] and resize["output_name"] == ["resized"]
    assert resize["input"]["required"]["resize_type"][0][0] == "scale dimensions"
    assert "resize_type.longer_size" in resize["input"]["optional"]
    batch = info["BatchImagesNode"]["input"]
    assert list(batch["required"]) == ["images.image0"] and len(batch["optional"]) == 49
    assert list(info["BatchMasksNode"]["input"]["required"]) == ["masks.mask0"]
    crop = info["ImageCropV2"]["input"]["required"]["crop_region"]
    assert crop[0] == "BOUNDING_BOX" and crop[1]["component"] == "ImageCrop"
    assert info["PrimitiveBoundingBox"]["output"] == ["BOUNDING_BOX"]
    assert list(info["CropByBBoxes"]["input"]["required"]["bboxes"]) == ["BOUNDING_BOX", {"forceInput": True}]
    assert info["CropByBBoxes"]["input"]["required"]["keep_aspect"][0] == ["stretch", "pad"]
    assert list(info["DrawBBoxes"]["input"]["optional"]) == ["image"]


# -- transforms ----------------------------------------------------------------------------------

def to_pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray((image.numpy() * 255).round().astype(np.uint8))


def from_pil(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture).astype(np.float32) / 255.0


@pytest.fixture
def picture():
    return (torch.randint(0, 256, (2, 3, 5, 3), generator=torch.Generator().manual_seed(0)) / 255.0).float()


@pytest.mark.parametrize("method, transpose", [("x-axis: vertically", Image.Transpose.FLIP_TOP_BOTTOM),
                                               ("y-axis: horizontally", Image.Transpose.FLIP_LEFT_RIGHT)])
def test_flip_matches_pil(picture, method, transpose):
    (out,) = E.ImageFlip().flip(picture, method)
    for index in range(2):
        np.testing.assert_allclose(out[index].numpy(), from_pil(to_pil(picture[index]).transpose(transpose)), atol=1e-6)


@pytest.mark.parametrize("rotation, transpose", [("90 degrees", Image.Transpose.ROTATE_270),
                                                 ("180 degrees", Image.Transpose.ROTATE_180),
                                                 ("270 degrees", Image.Transpose.ROTATE_90)])
def test_rotate_is_clockwise_like_pil(picture, rotation, transpose):
    # PIL's ROTATE_n turn counter-clockwise; ComfyUI's "90 degrees" turns clockwise
    (out,) = E.ImageRotate().rotate(picture, rotation)
    for index in range(2):
        np.testing.assert_allclose(out[index].numpy(), from_pil(to_pil(picture[index]).transpose(transpose)), atol=1e-6)
    assert torch.equal(E.ImageRotate().rotate(picture, "none")[0], picture)


def test_crop_v2_clamps_the_start_and_previews(node_services, picture):
    result = E.ImageCropV2().crop(picture, {"x": 2, "y": 1, "width": 2, "height": 10})
    (cropped,) = result["result"]
    assert torch.equal(cropped, picture[:, 1:, 2:4])
    assert [entry["type"] for entry in result["ui"]["images"]] == ["temp", "temp"]
    assert all((node_services.folders.temp / e["subfolder"] / e["filename"]).is_file() for e in result["ui"]["images"])
    (edge,) = E.ImageCropV2().crop(picture, {"x": 50, "y": 50, "width": 4, "height": 4})["result"]
    assert torch.equal(edge, picture[:, 2:, 4:])  # starts at the last row and column


def test_stitch_without_image2_and_with_it(picture):
    assert E.ImageStitch().stitch(picture, "right", True, 0, "white")[0] is picture
    (out,) = E.ImageStitch().stitch(picture, "down", False, 2, "black", picture[:1])
    assert out.shape == (2, 8, 5, 3) and torch.all(out[:, 3:5] == 0) and torch.equal(out[1, 5:], picture[0])


def test_resize_and_pad_and_max_dimension():
    image = torch.rand(1, 4, 8, 3)
    (padded,) = E.ResizeAndPadImage().resize_and_pad(image, 16, 16, "white", "nearest-exact")
    assert padded.shape == (1, 16, 16, 3) and torch.all(padded[:, :4] == 1) and torch.all(padded[:, 12:] == 1)
    assert torch.equal(padded[0, 4:12, ::2], image[0].repeat_interleave(2, 0))
    (scaled,) = E.ImageScaleToMaxDimension().upscale(image, "lanczos", 6)
    assert scaled.shape == (1, 3, 6, 3)
    pixels = Image.fromarray((image[0].numpy() * 255).astype(np.uint8))  # 8-bit, truncated, as ComfyUI
    expected = np.asarray(pixels.resize((6, 3), Image.Resampling.LANCZOS)) / 255.0
    np.testing.assert_allclose(scaled[0].numpy(), expected, atol=1.5 / 255)


# -- resize image/mask ---------------------------------------------------------------------------

def resize(tensor, resize_type, method="nearest-exact", **options):
    return E.ResizeImageMaskNode().resize(tensor, resize_type, method,
                                          **{f"resize_type.{k}": v for k, v in options.items()})[0]


def test_resize_image_mask_rules():
    image, mask = torch.rand(2, 4, 6, 3), torch.rand(3, 4, 6)
    assert resize(mask, "scale by multiplier", multiplier=2.0).shape == (3, 8, 12)
    assert torch.equal(resize(mask, "scale by multiplier", multiplier=2.0)[:, ::2, ::2], mask)
    assert resize(image, "scale longer dimension", longer_size=12).shape == (2, 8, 12, 3)
    assert resize(image, "scale shorter dimension", shorter_size=2).shape == (2, 2, 3, 3)
    assert resize(image, "scale width", width=3).shape == (2, 2, 3, 3)
    assert resize(mask, "scale height", height=8).shape == (3, 8, 12)
    assert resize(image, "scale dimensions", width=0, height=0, crop="center") is image
    assert resize(image, "match size", match=torch.zeros(1, 2, 2), crop="disabled").shape == (2, 2, 2, 3)
    assert resize(mask, "scale total pixels", megapixels=0.01, multiple=8).shape == (3, 80, 128)
    assert resize(mask, "scale to multiple", multiple=4).shape == (3, 4, 4)
    # centre crop: a 4x6 mask to 4x4 keeps columns 1..4
    assert torch.equal(resize(mask, "scale dimensions", width=4, height=4, crop="center"), mask[:, :, 1:5])
    with pytest.raises(ValueError, match="resize_type.multiplier"):
        resize(mask, "scale by multiplier")


# -- batches -------------------------------------------------------------------------------------

def test_repeat_and_pick_from_batch():
    batch = torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 2, 2, 3)
    (repeated,) = E.RepeatImageBatch().repeat(batch[:2], 3)
    assert repeated[:, 0, 0, 0].tolist() == [0, 1, 0, 1, 0, 1]
    pick = E.ImageFromBatch().frombatch
    assert pick(batch, 1, 2)[0][:, 0, 0, 0].tolist() == [1, 2]
    assert pick(batch, -1, 5)[0][:, 0, 0, 0].tolist() == [3]
    assert pick(batch, 99, 2)[0][:, 0, 0, 0].tolist() == [3]
    assert pick(batch, -99, 1)[0][:, 0, 0, 0].tolist() == [0]


def test_rebatch_node_takes_and_gives_lists():
    batches = [torch.zeros(3, 2, 2, 3), torch.ones(2, 2, 2, 3)]
    (out,) = E.RebatchImages().rebatch(batches, [2])
    assert [b.shape[0] for b in out] == [2, 2, 1] and out[1][0].max() == 0 and out[1][1].min() == 1
    (out,) = E.RebatchImages().rebatch(batches, [4], [1], ["truncate end"])
    assert [b.shape[0] for b in out] == [4] and out[0][2].min() == 1


def test_batch_images_and_masks_take_the_grown_inputs():
    (images,) = E.BatchImagesNode().batch(**{"images.image0": torch.zeros(1, 4, 4, 3),
                                             "images.image3": torch.ones(2, 4, 4, 4)})
    assert images.shape == (3, 4, 4, 4) and torch.all(images[0, ..., 3] == 1)
    (masks,) = E.BatchMasksNode().batch(**{"masks.mask0": torch.zeros(1, 2, 2), "masks.mask1": torch.ones(4, 4)})
    assert masks.shape == (2, 2, 2) and masks[1].min() == 1


def test_get_image_size():
    assert E.GetImageSize().get_size(torch.zeros(3, 5, 7, 3)) == (7, 5, 3)


# -- tiles, grids, duplicates --------------------------------------------------------------------

def test_grid_and_deduplication_flatten_their_list_inputs():
    red = torch.tensor([1.0, 0, 0]).expand(2, 8, 8, 3)
    green = torch.tensor([0, 1.0, 0]).expand(1, 8, 8, 3)
    (grid,) = E.ImageGrid().grid([red, green], [2], [32], [32], [0])
    assert grid.shape == (1, 64, 64, 3)
    assert torch.all(grid[0, :32, :] == torch.tensor([1.0, 0, 0])) and torch.all(grid[0, 32:, :32] == torch.tensor([0, 1.0, 0]))
    noise = torch.rand(1, 8, 8, 3)
    (kept,) = E.ImageDeduplication().deduplicate([red, noise, noise.clone()], [0.95])
    assert len(kept) == 2 and torch.equal(kept[0], red[:1]) and torch.equal(kept[1], noise)


# -- alpha, compositing, morphology --------------------------------------------------------------

def test_split_then_join_alpha_round_trips():
    rgba = torch.rand(2, 3, 4, 4)
    rgb, mask = E.SplitImageWithAlpha().split(rgba)
    assert torch.allclose(mask, 1 - rgba[..., 3])
    (joined,) = E.JoinImageWithAlpha().join(rgb, mask)
    assert torch.allclose(joined, rgba)


def test_porter_duff_node_source_over_by_hand():
    source, destination = torch.full((1, 2, 2, 3), 1.0), torch.zeros((1, 2, 2, 3))
    # source alpha 0.25 over an opaque black destination: colour 0.25, opaque
    image, mask = E.PorterDuffImageComposite().composite(source, torch.full((1, 2, 2), 0.75), destination,
                                                         torch.zeros(1, 1, 1), "SRC_OVER")
    assert torch.allclose(image, torch.full((1, 2, 2, 3), 0.25)) and torch.allclose(mask, torch.zeros(1, 2, 2))


def test_morphology_node_matches_scipy():
    image = torch.rand(2, 9, 7, 3, generator=torch.Generator().manual_seed(4))
    (out,) = E.Morphology().process(image, "close", 3)
    for index in range(2):
        for channel in range(3):
            plane = image[index, ..., channel].double().numpy()
            np.testing.assert_allclose(out[index, ..., channel].numpy(),
                                       ndimage.grey_closing(plane, size=(3, 3), mode="nearest"), atol=1e-6)


def test_crop_to_mask_node_batches_masks():
    images = torch.rand(2, 32, 32, 4)
    mask = torch.zeros(1, 16, 16)
    mask[:, 4:8, 4:8] = 1.0
    (out,) = E.ImageCropToMask().crop(images, mask, 64, 64, 1.0, 0, "#ff0000")
    assert out.shape == (2, 64, 64, 3)
    with pytest.raises(ValueError, match="does not match"):
        E.ImageCropToMask().crop(images, torch.zeros(3, 32, 32), 64, 64, 1.0, 0, "#000000")


# -- bounding boxes ------------------------------------------------------------------------------

def test_crop_by_bboxes_unions_the_boxes_of_each_frame():
    image = torch.rand(2, 40, 60, 3)
    boxes = [[{"x": 10, "y": 5, "width": 10, "height": 10}, {"x": 25, "y": 10, "width": 5, "height": 15}], []]
    (out,) = L.CropByBBoxes().crop(image, boxes, 64, 64, 0, "stretch")
    assert out.shape == (1, 64, 64, 3)  # the second frame has no boxes
    region = image[:1, 5:25, 10:30].movedim(-1, 1)  # union: x 10..30, y 5..25
    expected = torch.nn.functional.interpolate(region, size=(64, 64), mode="area").movedim(1, -1)
    assert torch.allclose(out, expected, atol=1e-6)
    (padded,) = L.CropByBBoxes().crop(image, {"x": 0, "y": 0, "width": 60, "height": 20}, 64, 64, 0, "pad")
    # one box for every frame; 60x20 fitted into 64x64 is 64x21, centred: rows 21..41
    assert padded.shape == (2, 64, 64, 3) and torch.all(padded[:, :21] == 0) and torch.all(padded[:, 42:] == 0)
    assert L.CropByBBoxes().crop(image, [], 64, 64, 0, "stretch")[0] is image


def test_draw_bboxes_outlines_on_the_image_or_a_canvas():
    image = torch.zeros(1, 20, 30, 3)
    box = {"x": 5, "y": 4, "width": 10, "height": 8}
    (out,) = L.DrawBBoxes().draw(box, image)
    assert out.shape == image.shape
    red = torch.tensor([1.0, 0, 0])
    assert torch.equal(out[0, 4, 5], red) and torch.equal(out[0, 12, 15], red) and torch.equal(out[0, 8, 6], red)
    assert torch.all(out[0, 8, 9:12] == 0) and torch.all(out[0, 16:] == 0)  # inside and outside stay black
    (canvas,) = L.DrawBBoxes().draw([[box], [box, {"x": 0, "y": 0, "width": 40, "height": 2}]])
    assert canvas.shape == (2, 12, 40, 3)
    labelled = {"x": 2, "y": 2, "width": 25, "height": 15, "label": "car", "score": 0.9}  # car: label 2, blue
    (out,) = L.DrawBBoxes().draw([labelled], image)
    assert torch.equal(out[0, 2, 2], torch.tensor([0, 0, 1.0])) and out[0, 4:10, 4:26].sum() > 0  # text drawn


# -- through the executor ------------------------------------------------------------------------

class Picture:
    """A test node: a 2 x 100 x 150 RGB gradient."""

    CATEGORY = "test"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        y, x = torch.meshgrid(torch.linspace(0, 1, 100), torch.linspace(0, 1, 150), indexing="ij")
        return (torch.stack([x, y, x * y], -1).expand(2, -1, -1, -1).contiguous(),)


class Keep:
    """A test output node that records its input."""

    seen: list = []
    CATEGORY = "test"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("*", {})}}

    def run(self, value):
        Keep.seen.append(value)
        return {}


def run_prompt(prompt, tmp_path):
    registry = registered()
    registry.register_mappings({"Picture": Picture, "Keep": Keep})
    Keep.seen = []
    return prompt_support.run_prompt(registry, prompt, make_services(tmp_path))


def test_tiles_round_trip_through_lists(tmp_path):
    prompt = {
        "1": {"class_type": "Picture", "inputs": {}},
        "2": {"class_type": "SplitImageToTileList",
              "inputs": {"image": ["1", 0], "tile_width": 64, "tile_height": 64, "overlap": 16}},
        "3": {"class_type": "ImageMergeTileList",
              "inputs": {"image_list": ["2", 0], "final_width": 150, "final_height": 100, "overlap": 16}},
        "4": {"class_type": "Keep", "inputs": {"value": ["3", 0]}},
    }
    run_prompt(prompt, tmp_path)
    (merged,) = Keep.seen
    assert torch.allclose(merged, Picture().run()[0], atol=1e-5)


def test_bounding_box_literal_and_primitive_feed_the_crop(tmp_path):
    prompt = {
        "1": {"class_type": "Picture", "inputs": {}},
        "2": {"class_type": "PrimitiveBoundingBox", "inputs": {"x": 10, "y": 20, "width": 30, "height": 40}},
        "3": {"class_type": "ImageCropV2", "inputs": {"image": ["1", 0], "crop_region": ["2", 0]}},
        "4": {"class_type": "Keep", "inputs": {"value": ["3", 0]}},
        "5": {"class_type": "ImageCropV2",
              "inputs": {"image": ["1", 0], "crop_region": {"x": 10, "y": 20, "width": 30, "height": 40}}},
        "6": {"class_type": "Keep", "inputs": {"value": ["5", 0]}},
    }
    outcome = run_prompt(prompt, tmp_path)
    whole = Picture().run()[0]
    assert len(Keep.seen) == 2 and all(torch.equal(seen, whole[:, 20:60, 10:40]) for seen in Keep.seen)
    assert len(outcome.outputs["3"]["images"]) == 2  # the crop's preview reaches the history


def test_dynamic_inputs_arrive_as_the_api_prompt_carries_them(tmp_path):
    prompt = {
        "1": {"class_type": "Picture", "inputs": {}},
        "2": {"class_type": "ResizeImageMaskNode",
              "inputs": {"input": ["1", 0], "resize_type": "scale by multiplier", "resize_type.multiplier": 0.5,
                         "scale_method": "area"}},
        "3": {"class_type": "BatchImagesNode", "inputs": {"images.image0": ["2", 0], "images.image1": ["1", 0]}},
        "4": {"class_type": "Keep", "inputs": {"value": ["3", 0]}},
    }
    run_prompt(prompt, tmp_path)
    (batch,) = Keep.seen
    whole = Picture().run()[0]
    half = torch.nn.functional.interpolate(whole.movedim(-1, 1), size=(50, 75), mode="area").movedim(1, -1)
    assert batch.shape == (4, 50, 75, 3) and torch.allclose(batch[:2], half, atol=1e-6)
