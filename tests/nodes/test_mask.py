import pytest
import torch

from graph.registry import NodeRegistry
from nodes import mask as M


def test_module_registers_cleanly_with_comfyui_names_and_categories():
    registry = NodeRegistry()
    assert registry.register_mappings(M.NODE_CLASS_MAPPINGS, M.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    assert set(registry.names()) == {"SolidMask", "InvertMask", "CropMask", "MaskComposite", "FeatherMask",
                                     "GrowMask", "ThresholdMask", "ImageToMask", "MaskToImage", "ImageColorToMask"}
    for name in registry.names():
        definition = registry.get(name)
        assert definition.category == "image/mask"
        assert definition.return_types == (("IMAGE",) if name == "MaskToImage" else ("MASK",))
    assert registry.get("ImageToMask").display_name == "Convert Image to Mask"
    assert {name: registry.get(name).display_name for name in ("SolidMask", "MaskComposite", "ImageColorToMask")} == {
        "SolidMask": "Create Solid Mask", "MaskComposite": "Combine Masks",
        "ImageColorToMask": "Convert Image Color to Mask"}


def test_input_specs_match_comfyui():
    required = lambda node: node.INPUT_TYPES()["required"]  # noqa: E731
    assert required(M.SolidMask)["value"] == ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})
    assert required(M.SolidMask)["width"] == ("INT", {"default": 512, "min": 1, "max": 16384, "step": 1})
    assert required(M.CropMask)["x"] == ("INT", {"default": 0, "min": 0, "max": 16384, "step": 1})
    assert required(M.MaskComposite)["operation"] == (["multiply", "add", "subtract", "and", "or", "xor"],)
    assert required(M.GrowMask)["expand"] == ("INT", {"default": 0, "min": -16384, "max": 16384, "step": 1})
    assert required(M.GrowMask)["tapered_corners"] == ("BOOLEAN", {"default": True, "advanced": True})
    assert required(M.ThresholdMask)["value"] == ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01})
    assert required(M.ImageToMask)["channel"] == (["red", "green", "blue", "alpha"],)
    assert required(M.ImageColorToMask)["color"] == (
        "INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1, "display": "number"})
    assert list(required(M.FeatherMask)) == ["mask", "left", "top", "right", "bottom"]


def test_solid_and_invert():
    (solid,) = M.SolidMask().solid(0.25, 3, 2)
    assert solid.shape == (1, 2, 3) and torch.all(solid == 0.25)
    (inverted,) = M.InvertMask().invert(solid)
    assert torch.all(inverted == 0.75)


def test_crop_mask_accepts_2d_and_clips():
    mask = torch.arange(12.0).reshape(3, 4)
    (out,) = M.CropMask().crop(mask, 1, 1, 2, 5)
    assert out.tolist() == [[[5, 6], [9, 10]]]
    (empty,) = M.CropMask().crop(mask, 10, 0, 2, 2)
    assert empty.shape == (1, 2, 0)


def test_mask_composite_node():
    destination = torch.zeros(1, 3, 3)
    (out,) = M.MaskComposite().combine(destination, torch.ones(2, 2), 1, 1, "add")
    assert out[0].tolist() == [[0, 0, 0], [0, 1, 1], [0, 1, 1]]
    (subtracted,) = M.MaskComposite().combine(out, torch.ones(1, 1), 2, 2, "subtract")
    assert subtracted[0, 2, 2] == 0 and subtracted[0, 1, 1] == 1


def test_feather_grow_threshold():
    (feathered,) = M.FeatherMask().feather(torch.ones(1, 2, 4), 4, 0, 0, 0)
    assert feathered[0, 0].tolist() == pytest.approx([0.25, 0.5, 0.75, 1.0])
    dot = torch.zeros(1, 3, 3)
    dot[0, 1, 1] = 1
    (grown,) = M.GrowMask().expand_mask(dot, 1, False)
    assert torch.equal(grown, torch.ones(1, 3, 3))
    (shrunk,) = M.GrowMask().expand_mask(grown, -1, True)
    assert torch.equal(shrunk, torch.ones(1, 3, 3))  # the border repeats outwards, nothing erodes
    (binary,) = M.ThresholdMask().image_to_mask(torch.tensor([[[0.2, 0.5, 0.51]]]), 0.5)
    assert binary.tolist() == [[[0.0, 0.0, 1.0]]]


def test_image_mask_conversions():
    image = torch.rand(2, 3, 4, 3)
    for index, channel in enumerate(["red", "green", "blue"]):
        (mask,) = M.ImageToMask().image_to_mask(image, channel)
        assert torch.equal(mask, image[..., index])
    (alpha,) = M.ImageToMask().image_to_mask(image, "alpha")
    assert torch.equal(alpha, torch.ones(2, 3, 4))
    rgba = torch.rand(1, 2, 2, 4)
    assert torch.equal(M.ImageToMask().image_to_mask(rgba, "alpha")[0], rgba[..., 3])
    (back,) = M.MaskToImage().mask_to_image(image[..., 0])
    assert back.shape == (2, 3, 4, 3) and torch.equal(back[..., 2], image[..., 0])
    assert M.MaskToImage().mask_to_image(torch.ones(5, 6))[0].shape == (1, 5, 6, 3)


def test_image_color_to_mask():
    image = torch.zeros(1, 1, 3, 3)
    image[0, 0, 1] = torch.tensor([1.0, 128 / 255, 0.0])
    (mask,) = M.ImageColorToMask().image_to_mask(image, 0xFF8000)
    assert mask.tolist() == [[[0.0, 1.0, 0.0]]]
