import pytest
import torch

from graph.registry import NodeRegistry
from nodes import latent as L


def latent(batch=1, height=8, width=8, **extra):
    samples = torch.arange(batch * 4 * height * width, dtype=torch.float32).reshape(batch, 4, height, width)
    return {"samples": samples, **extra}


def spec(node_class, name):
    inputs = node_class.INPUT_TYPES()
    for section in ("required", "optional"):
        if name in inputs.get(section, {}):
            return section, inputs[section][name]
    raise KeyError(name)


def test_module_registers_cleanly():
    registry = NodeRegistry()
    assert registry.register_mappings(L.NODE_CLASS_MAPPINGS, L.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    assert set(registry.names()) == {
        "EmptyLatentImage", "LatentUpscale", "LatentUpscaleBy", "LatentComposite", "LatentCompositeMasked",
        "LatentBlend", "LatentFromBatch", "RepeatLatentBatch", "LatentCrop", "LatentFlip", "LatentRotate",
        "SetLatentNoiseMask"}
    info = registry.object_info()
    assert info["LatentFromBatch"]["display_name"] == "Get Latent From Batch"
    assert info["LatentCompositeMasked"]["display_name"] == "Latent Composite Masked"


@pytest.mark.parametrize("node, category, inputs", [
    (L.EmptyLatentImage, "model/latent", {"width": ("INT", 1024, 16, 16384, 8),
                                          "height": ("INT", 1024, 16, 16384, 8),
                                          "batch_size": ("INT", 1, 1, 4096, None)}),
    (L.LatentUpscale, "model/latent", {"width": ("INT", 512, 0, 16384, 8), "height": ("INT", 512, 0, 16384, 8)}),
    (L.LatentUpscaleBy, "model/latent", {"scale_by": ("FLOAT", 1.5, 0.01, 8.0, 0.01)}),
    (L.LatentComposite, "model/latent", {"x": ("INT", 0, 0, 16384, 8), "feather": ("INT", 0, 0, 16384, 8)}),
    (L.LatentCompositeMasked, "model/latent", {"y": ("INT", 0, 0, 16384, 8)}),
    (L.LatentBlend, "experimental", {"blend_factor": ("FLOAT", 0.5, 0, 1, 0.01)}),
    (L.LatentFromBatch, "model/latent/batch", {"batch_index": ("INT", 0, -16384, 16384, None),
                                               "length": ("INT", 1, 1, 64, None)}),
    (L.RepeatLatentBatch, "model/latent/batch", {"amount": ("INT", 1, 1, 64, None)}),
    (L.LatentCrop, "model/latent/transform", {"width": ("INT", 512, 64, 16384, 8), "x": ("INT", 0, 0, 16384, 8)}),
    (L.LatentFlip, "model/latent/transform", {}),
    (L.LatentRotate, "model/latent/transform", {}),
    (L.SetLatentNoiseMask, "model/latent", {}),
])
def test_schema_matches_comfyui(node, category, inputs):
    assert node.CATEGORY == category
    assert node.RETURN_TYPES == ("LATENT",)
    for name, (kind, default, minimum, maximum, step) in inputs.items():
        _, (declared, options) = spec(node, name)
        assert declared == kind
        assert (options["default"], options["min"], options["max"], options.get("step")) == \
            (default, minimum, maximum, step)


def test_combo_choices_match_comfyui():
    assert spec(L.LatentUpscale, "upscale_method")[1][0] == ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
    assert spec(L.LatentUpscale, "crop")[1][0] == ["disabled", "center"]
    assert spec(L.LatentFlip, "flip_method")[1][0] == ["x-axis: vertically", "y-axis: horizontally"]
    assert spec(L.LatentRotate, "rotation")[1][0] == ["none", "90 degrees", "180 degrees", "270 degrees"]
    assert spec(L.LatentCompositeMasked, "resize_source")[1] == ("BOOLEAN", {"default": False})
    assert spec(L.LatentCompositeMasked, "mask") == ("optional", ("MASK",))


def test_empty_latent_image():
    (out,) = L.EmptyLatentImage().generate(72, 48, 3)
    assert set(out) == {"samples", "downscale_ratio_spacial"} and out["downscale_ratio_spacial"] == 8
    assert out["samples"].shape == (3, 4, 6, 9) and out["samples"].dtype == torch.float32
    assert out["samples"].abs().sum() == 0


def test_latent_upscale_sizes_and_copies():
    source = latent(height=8, width=16, noise_mask=torch.ones(1, 1, 8, 16))
    (same,) = L.LatentUpscale().upscale(source, "bilinear", 0, 0, "disabled")
    assert same is source
    (out,) = L.LatentUpscale().upscale(source, "nearest-exact", 256, 128, "disabled")
    assert out["samples"].shape == (1, 4, 16, 32)
    assert out["noise_mask"] is source["noise_mask"] and source["samples"].shape == (1, 4, 8, 16)
    (kept,) = L.LatentUpscale().upscale(source, "bislerp", 0, 128, "disabled")  # width from the aspect
    assert kept["samples"].shape == (1, 4, 16, 32)
    (small,) = L.LatentUpscale().upscale(source, "area", 8, 0, "center")  # never below 64 pixels
    assert small["samples"].shape == (1, 4, 8, 8)
    (cropped,) = L.LatentUpscale().upscale(source, "nearest-exact", 64, 64, "center")
    assert torch.equal(cropped["samples"], source["samples"][..., 4:12])


def test_latent_upscale_by():
    (out,) = L.LatentUpscaleBy().upscale(latent(height=8, width=6), "bicubic", 1.5)
    assert out["samples"].shape == (1, 4, 12, 9)
    (tiny,) = L.LatentUpscaleBy().upscale(latent(height=8, width=6), "bislerp", 0.01)
    assert tiny["samples"].shape == (1, 4, 1, 1)


def test_latent_composite_positions_in_pixels():
    to = {"samples": torch.zeros(2, 4, 8, 8), "batch_index": [5, 6]}
    source = {"samples": torch.ones(1, 4, 4, 4)}
    (out,) = L.LatentComposite().composite(to, source, 48, 16, feather=0)
    assert out["batch_index"] == [5, 6]
    region = out["samples"][:, :, 2:6, 6:8]
    assert torch.all(region == 1) and out["samples"].sum() == 2 * 4 * 4 * 2
    (feathered,) = L.LatentComposite().composite(to, source, 16, 16, feather=16)
    # feather 16 px = 2 latent px: edge rows/columns x 1/2, the next ones x 2/2, corners multiply
    assert feathered["samples"][0, 0, 2, 2:6].tolist() == pytest.approx([0.25, 0.5, 0.5, 0.25])
    assert feathered["samples"][0, 0, 3, 2:6].tolist() == pytest.approx([0.5, 1.0, 1.0, 0.5])


def test_latent_composite_masked():
    destination = {"samples": torch.zeros(1, 4, 4, 4)}
    source = {"samples": torch.ones(1, 4, 2, 2)}
    (out,) = L.LatentCompositeMasked().composite(destination, source, 8, 8, False)
    assert out["samples"][0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    mask = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    (masked,) = L.LatentCompositeMasked().composite(destination, source, 0, 0, False, mask)
    assert masked["samples"][0, 0, :2, :2].tolist() == [[0, 1], [1, 0]]
    (resized,) = L.LatentCompositeMasked().composite(destination, source, 0, 0, True)
    assert torch.equal(resized["samples"], torch.ones(1, 4, 4, 4))


def test_latent_blend_weights_the_first_input():
    first, second = {"samples": torch.full((2, 4, 4, 4), 1.0)}, {"samples": torch.full((1, 4, 2, 2), 3.0)}
    (out,) = L.LatentBlend().blend(first, second, 0.25)
    assert out["samples"].shape == (2, 4, 4, 4)
    assert torch.allclose(out["samples"], torch.full((2, 4, 4, 4), 0.25 + 3 * 0.75))
    with pytest.raises(ValueError):
        L.LatentBlend().blend(first, second, 0.5, blend_mode="screen")


def test_latent_from_batch():
    source = latent(batch=4, noise_mask=torch.arange(2.0).reshape(2, 1, 1, 1))
    (out,) = L.LatentFromBatch().frombatch(source, 1, 2)
    assert torch.equal(out["samples"], source["samples"][1:3])
    assert out["batch_index"] == [1, 2]
    assert out["noise_mask"].flatten().tolist() == [1.0, 0.0]
    (again,) = L.LatentFromBatch().frombatch(out, 1, 5)
    assert again["batch_index"] == [2] and torch.equal(again["samples"], source["samples"][2:3])
    (clamped,) = L.LatentFromBatch().frombatch(latent(batch=2), 63, 64)
    assert clamped["batch_index"] == [1]
    # a negative index counts from the end of the batch, then clamps like any other
    (last,) = L.LatentFromBatch().frombatch(source, -1, 3)
    assert last["batch_index"] == [3] and torch.equal(last["samples"], source["samples"][3:4])
    assert last["noise_mask"].flatten().tolist() == [1.0]
    (two,) = L.LatentFromBatch().frombatch(source, -3, 2)
    assert two["batch_index"] == [1, 2] and torch.equal(two["samples"], source["samples"][1:3])
    (first,) = L.LatentFromBatch().frombatch(source, -16384, 1)
    assert first["batch_index"] == [0]
    assert "batch_index" not in source


def test_repeat_latent_batch():
    source = latent(batch=2, batch_index=[4, 5])
    (out,) = L.RepeatLatentBatch().repeat(source, 3)
    assert out["samples"].shape == (6, 4, 8, 8)
    assert torch.equal(out["samples"][4:], source["samples"])
    assert out["batch_index"] == [4, 5, 6, 7, 8, 9]
    (plain,) = L.RepeatLatentBatch().repeat(latent(batch=1), 2)
    assert "batch_index" not in plain and plain["samples"].shape[0] == 2


def test_latent_crop():
    source = latent(height=16, width=16)
    (out,) = L.LatentCrop().crop(source, 64, 128, 32, 8)
    assert torch.equal(out["samples"], source["samples"][..., 1:17, 4:12])
    (late,) = L.LatentCrop().crop(source, 512, 512, 1000, 1000)  # starts 8 latent pixels before the edge
    assert torch.equal(late["samples"], source["samples"][..., 8:, 8:])


def test_flip_and_rotate():
    samples = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).expand(1, 4, 2, 2)
    (flipped,) = L.LatentFlip().flip({"samples": samples}, "x-axis: vertically")
    assert flipped["samples"][0, 0].tolist() == [[3, 4], [1, 2]]
    (mirrored,) = L.LatentFlip().flip({"samples": samples}, "y-axis: horizontally")
    assert mirrored["samples"][0, 0].tolist() == [[2, 1], [4, 3]]
    expected = {"none": [[1, 2], [3, 4]], "90 degrees": [[3, 1], [4, 2]],
                "180 degrees": [[4, 3], [2, 1]], "270 degrees": [[2, 4], [1, 3]]}
    for rotation, grid in expected.items():
        (turned,) = L.LatentRotate().rotate({"samples": samples}, rotation)
        assert turned["samples"][0, 0].tolist() == grid


def test_set_latent_noise_mask():
    source = latent()
    (out,) = L.SetLatentNoiseMask().set_mask(source, torch.ones(8, 8))
    assert out["noise_mask"].shape == (1, 1, 8, 8)
    (batch,) = L.SetLatentNoiseMask().set_mask(source, torch.ones(3, 8, 8))
    assert batch["noise_mask"].shape == (3, 1, 8, 8)
    assert "noise_mask" not in source
