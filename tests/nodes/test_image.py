import hashlib
import json
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from graph import output_files
from graph.folders import UnsafePathError
from graph.png_metadata import add_text_chunks, read_text
from graph.registry import NodeRegistry
from ldm.imaging import image_io
from nodes import image as I

PROMPT = {"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}}
WORKFLOW = {"last_node_id": 9, "nodes": [{"id": 9, "type": "SaveImage"}], "version": 0.4}


def write_rgba(path, size=(3, 2), alpha=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA", size, (255, 0, 0, alpha)).save(path)
    return path


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


# -- schema ------------------------------------------------------------------------------------------

def test_module_registers_cleanly():
    registry = NodeRegistry()
    assert registry.register_mappings(I.NODE_CLASS_MAPPINGS, I.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    expected = {"LoadImage": "image", "LoadImageMask": "image", "SaveImage": "image", "PreviewImage": "image",
                "ImageScale": "image/upscaling", "ImageScaleBy": "image/upscaling",
                "ImageScaleToTotalPixels": "image/upscaling", "ImageInvert": "image/color",
                "ImageBatch": "image/batch", "ImageCrop": "image/transform",
                "ImagePadForOutpaint": "image/transform", "ImageCompositeMasked": "image/compositing",
                "ImageBlend": "image/filters", "ImageBlur": "image/filters",
                "ImageSharpen": "image/filters", "EmptyImage": "image"}
    assert {name: registry.get(name).category for name in registry.names()} == expected
    assert registry.get("SaveImage").output_node and registry.get("PreviewImage").output_node
    assert registry.get("ImagePadForOutpaint").return_types == ("IMAGE", "MASK")
    assert registry.get("LoadImage").return_types == ("IMAGE", "MASK")
    assert registry.get("SaveImage").return_types == registry.get("PreviewImage").return_types == ("IMAGE",)
    info = registry.object_info()
    assert info["ImageBatch"]["deprecated"] and info["ImageCrop"]["deprecated"]
    assert {name: info[name]["display_name"] for name in ("ImageInvert", "ImageBatch", "ImageCrop", "EmptyImage",
                                                         "ImageCompositeMasked", "ImageBlend", "ImageBlur",
                                                         "ImageSharpen", "ImageScaleToTotalPixels")} == {
        "ImageInvert": "Invert Image Colors", "ImageBatch": "Batch Images (DEPRECATED)",
        "ImageCrop": "Crop Image (DEPRECATED)", "EmptyImage": "Empty Image",
        "ImageCompositeMasked": "Image Composite Masked", "ImageBlend": "Blend Images", "ImageBlur": "Blur Image",
        "ImageSharpen": "Sharpen Image", "ImageScaleToTotalPixels": "Scale Image to Total Pixels"}


def test_input_specs_match_comfyui():
    save = I.SaveImage.INPUT_TYPES()
    assert save["required"]["filename_prefix"][1]["default"] == "ComfyUI"
    assert save["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert I.SaveImage.RETURN_TYPES == ("IMAGE",) and I.SaveImage.RETURN_NAMES == ("images",)
    assert list(I.PreviewImage.INPUT_TYPES()["required"]) == ["images"]
    scale = I.ImageScale.INPUT_TYPES()["required"]
    assert scale["upscale_method"] == (["nearest-exact", "bilinear", "area", "bicubic", "lanczos"],)
    assert scale["width"] == ("INT", {"default": 512, "min": 0, "max": 16384, "step": 1})
    assert scale["crop"] == (["disabled", "center"],)
    assert I.ImageScaleBy.INPUT_TYPES()["required"]["scale_by"][1] == {"default": 1.0, "min": 0.01, "max": 8.0,
                                                                        "step": 0.01}
    total = I.ImageScaleToTotalPixels.INPUT_TYPES()
    assert total["required"]["megapixels"][1] == {"default": 1.0, "min": 0.01, "max": 16.0, "step": 0.01}
    assert total["required"]["resolution_steps"][1] == {"default": 1, "min": 1, "max": 256, "advanced": True}
    pad = I.ImagePadForOutpaint.INPUT_TYPES()["required"]
    assert pad["left"][1] == {"default": 0, "min": 0, "max": 16384, "step": 8}
    assert pad["feathering"][1] == {"default": 40, "min": 0, "max": 16384, "step": 1, "advanced": True}
    blend = I.ImageBlend.INPUT_TYPES()["required"]
    assert blend["blend_mode"] == (["normal", "multiply", "screen", "overlay", "soft_light", "difference"],)
    assert I.ImageBlur.INPUT_TYPES()["required"]["blur_radius"][1] == {"default": 1, "min": 1, "max": 31, "step": 1}
    assert I.ImageSharpen.INPUT_TYPES()["required"]["alpha"][1] == {"default": 1.0, "min": 0.0, "max": 5.0,
                                                                     "step": 0.01, "advanced": True}
    empty = I.EmptyImage.INPUT_TYPES()["required"]
    assert empty["color"][1] == {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1, "display": "color"}
    composite = I.ImageCompositeMasked.INPUT_TYPES()
    assert composite["required"]["x"][1]["step"] == 1 and composite["optional"] == {"mask": ("MASK",)}
    assert I.LoadImageMask.INPUT_TYPES()["required"]["channel"] == (["alpha", "red", "green", "blue"],)


def test_load_image_lists_top_level_images(node_services):
    folder = node_services.folders.input
    for name in ["b.png", "A.jpg", "c.webp", "notes.txt", ".hidden.png"]:
        (folder / name).write_bytes(b"x")
    write_rgba(folder / "sub" / "deep.png")
    (folder / "dir.png").mkdir()
    spec = I.LoadImage.INPUT_TYPES()["required"]["image"]
    assert spec == (["A.jpg", "b.png", "c.webp"], {"image_upload": True})
    assert I.LoadImageMask.INPUT_TYPES()["required"]["image"][0] == ["A.jpg", "b.png", "c.webp"]


def test_load_image_lists_nothing_outside_a_running_server():
    assert I.LoadImage.INPUT_TYPES()["required"]["image"] == ([], {"image_upload": True})
    assert I.LoadImage.VALIDATE_INPUTS("anything.png") is True  # checked again when it runs


# -- LoadImage / LoadImageMask -----------------------------------------------------------------------

def test_load_image_returns_image_and_inverted_alpha(node_services):
    write_rgba(node_services.folders.input / "a.png", alpha=51)
    image, mask = I.LoadImage().load_image("a.png")
    assert image.shape == (1, 2, 3, 3) and mask.shape == (1, 2, 3)
    assert torch.allclose(mask, torch.full((1, 2, 3), 0.8))


def test_load_image_from_subfolders_and_annotated_folders(node_services):
    folders = node_services.folders
    write_rgba(folders.input / "clipspace" / "m.png", size=(4, 4))
    write_rgba(folders.output / "o.png", size=(5, 5))
    write_rgba(folders.temp / "t.png", size=(6, 6))
    assert I.LoadImage().load_image("clipspace/m.png [input]")[0].shape[1] == 4
    assert I.LoadImage().load_image("o.png [output]")[0].shape[1] == 5
    assert I.LoadImage().load_image("t.png [temp]")[0].shape[1] == 6
    assert I.LoadImage.VALIDATE_INPUTS("o.png [output]") is True


@pytest.mark.parametrize("name", ["missing.png", "../x.png", "/etc/hostname", "a\\b.png", "x\x00.png",
                                  "sub/../../x.png", "../output/o.png [input]"])
def test_load_image_refuses_missing_and_hostile_names(node_services, name, tmp_path):
    (tmp_path / "x.png").write_bytes(b"outside")
    assert I.LoadImage.VALIDATE_INPUTS(name) == f"Invalid image file: {name}"
    with pytest.raises(FileNotFoundError, match="Invalid image file"):
        I.LoadImage().load_image(name)


def test_load_image_refuses_names_that_are_not_strings(node_services):
    assert I.LoadImage.VALIDATE_INPUTS(5) == "Invalid image file: 5"
    with pytest.raises(FileNotFoundError):
        I.LoadImage().load_image(["1", 0])


def test_load_image_of_a_broken_file(node_services):
    (node_services.folders.input / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="Invalid image file: broken.png"):
        I.LoadImage().load_image("broken.png")


def test_is_changed_is_the_file_sha256(node_services):
    path = write_rgba(node_services.folders.input / "a.png")
    first = I.LoadImage.IS_CHANGED("a.png")
    assert first == hashlib.sha256(path.read_bytes()).hexdigest()
    assert I.LoadImageMask.IS_CHANGED("a.png", "alpha") == first
    write_rgba(path, alpha=3)
    assert I.LoadImage.IS_CHANGED("a.png") != first
    with pytest.raises(FileNotFoundError):
        I.LoadImage.IS_CHANGED("gone.png")


def test_load_image_mask_channel(node_services):
    Image.new("RGBA", (2, 2), (0, 51, 0, 255)).save(node_services.folders.input / "m.png")
    assert torch.allclose(I.LoadImageMask().load_image("m.png", "green")[0], torch.full((1, 2, 2), 0.2))
    assert torch.equal(I.LoadImageMask().load_image("m.png", "alpha")[0], torch.zeros(1, 2, 2))
    assert I.LoadImageMask.VALIDATE_INPUTS("nope.png") == "Invalid image file: nope.png"


# -- SaveImage / PreviewImage ------------------------------------------------------------------------

def test_save_image_round_trip(node_services):
    images = torch.rand(2, 4, 5, 3, generator=torch.Generator().manual_seed(0))
    result = I.SaveImage().save_images(images, "ComfyUI", PROMPT, {"workflow": WORKFLOW})
    assert result["ui"] == {"images": [
        {"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"},
        {"filename": "ComfyUI_00002_.png", "subfolder": "", "type": "output"}]}
    assert set(result) == {"ui", "result"} and result["result"][0] is images  # the images pass through
    for index, entry in enumerate(result["ui"]["images"]):
        path = node_services.folders.output / entry["filename"]
        with Image.open(path) as saved:
            assert saved.mode == "RGB" and saved.size == (5, 4)
            assert np.array_equal(np.asarray(saved), image_io.to_8bit(images[index]))
            assert json.loads(saved.text["prompt"]) == PROMPT
            assert json.loads(saved.text["workflow"]) == WORKFLOW
        assert read_text(path)["prompt"] == json.dumps(PROMPT)  # ComfyUI's json.dumps spacing
    assert files_under(node_services.folders.output) == ["ComfyUI_00001_.png", "ComfyUI_00002_.png"]


def test_save_image_counter_continues_from_the_highest_file(node_services):
    output = node_services.folders.output
    for name in ["ComfyUI_00041_.png", "ComfyUI_00007_.png", "Other_00099_.png"]:
        (output / name).write_bytes(b"")
    result = I.SaveImage().save_images(torch.zeros(1, 2, 2, 3), "ComfyUI")
    assert result["ui"]["images"][0]["filename"] == "ComfyUI_00042_.png"
    again = I.SaveImage().save_images(torch.zeros(1, 2, 2, 3), "ComfyUI")
    assert again["ui"]["images"][0]["filename"] == "ComfyUI_00043_.png"


def test_save_image_subfolders_and_variables(node_services):
    images = torch.zeros(2, 3, 7, 3)
    result = I.SaveImage().save_images(images, "runs/%width%x%height%/shot_%batch_num%")
    entries = result["ui"]["images"]
    assert [e["filename"] for e in entries] == ["shot_0_00001_.png", "shot_1_00002_.png"]
    assert {e["subfolder"] for e in entries} == {"runs/7x3"}
    assert (node_services.folders.output / "runs" / "7x3" / "shot_1_00002_.png").is_file()
    later = I.SaveImage().save_images(images[:1], "runs/%width%x%height%/shot_%batch_num%")
    assert later["ui"]["images"][0]["filename"] == "shot_0_00003_.png"  # never overwrites a batch


def test_save_image_date_variables(node_services):
    result = I.SaveImage().save_images(torch.zeros(1, 1, 1, 3), "%year%/%month%%day%-%hour%%minute%%second%")
    entry = result["ui"]["images"][0]
    assert re.fullmatch(r"20\d\d", entry["subfolder"])
    assert re.fullmatch(r"\d{4}-\d{6}_00001_\.png", entry["filename"])


@pytest.mark.parametrize("prefix", ["../x", "../../etc/x", "/abs/x", "a\\b", "a\x00b", "sub/../../x", "", "C:/x"])
def test_save_image_never_writes_outside_the_output_folder(node_services, tmp_path, prefix):
    before = files_under(tmp_path)
    with pytest.raises(UnsafePathError):
        I.SaveImage().save_images(torch.zeros(1, 2, 2, 3), prefix, PROMPT)
    assert files_under(tmp_path) == before


def test_save_image_refuses_symlinks_out_of_the_output_folder(node_services, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (node_services.folders.output / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        I.SaveImage().save_images(torch.zeros(1, 2, 2, 3), "link/x")
    assert list(outside.iterdir()) == []


def test_save_image_disable_metadata(node_services):
    node_services.options.disable_metadata = True
    result = I.SaveImage().save_images(torch.zeros(1, 2, 2, 3), "plain", PROMPT, {"workflow": WORKFLOW})
    path = node_services.folders.output / result["ui"]["images"][0]["filename"]
    assert read_text(path) == {}
    with Image.open(path) as saved:
        assert saved.text == {}


def test_save_image_metadata_skips_keys_png_cannot_hold(node_services):
    result = I.SaveImage().save_images(torch.zeros(1, 2, 2, 3), "k", None,
                                       {"workflow": WORKFLOW, "": 1, "x" * 80: 2, "ok key": [1]})
    text = read_text(node_services.folders.output / result["ui"]["images"][0]["filename"])
    assert text == {"workflow": json.dumps(WORKFLOW), "ok key": "[1]"}  # no prompt chunk without a prompt


def test_save_image_failure_leaves_no_partial_file(node_services, monkeypatch):
    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(output_files.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        I.SaveImage().save_images(torch.zeros(2, 2, 2, 3), "ComfyUI", PROMPT)
    assert files_under(node_services.folders.output) == []


def test_save_image_edge_batches(node_services):
    empty = torch.zeros(0, 2, 2, 3)
    assert I.SaveImage().save_images(empty, "ComfyUI") == {"ui": {"images": []}, "result": (empty,)}
    with pytest.raises(ValueError):
        I.SaveImage().save_images(torch.zeros(1, 0, 2, 3), "ComfyUI")
    assert files_under(node_services.folders.output) == []
    single = I.SaveImage().save_images(torch.ones(2, 3, 3), "single")  # [H, W, C] without a batch
    assert [e["filename"] for e in single["ui"]["images"]] == ["single_00001_.png"]
    rgba = I.SaveImage().save_images(torch.ones(1, 2, 2, 4), "alpha")
    with Image.open(node_services.folders.output / rgba["ui"]["images"][0]["filename"]) as saved:
        assert saved.mode == "RGBA"


def test_preview_image_writes_fast_pngs_to_temp(node_services):
    node = I.PreviewImage()
    images = torch.rand(1, 3, 3, 3, generator=torch.Generator().manual_seed(2))
    result = node.save_images(images, prompt=PROMPT, extra_pnginfo={"workflow": WORKFLOW})
    (entry,) = result["ui"]["images"]
    assert entry["type"] == "temp" and entry["subfolder"] == ""
    assert re.fullmatch(r"ComfyUI_temp_[a-z]{5}_00001_\.png", entry["filename"])
    path = node_services.folders.temp / entry["filename"]
    expected = add_text_chunks(image_io.png_bytes(images[0], compress_level=1),
                               {"prompt": json.dumps(PROMPT), "workflow": json.dumps(WORKFLOW)})
    assert path.read_bytes() == expected
    assert files_under(node_services.folders.output) == []
    second = node.save_images(images)["ui"]["images"][0]["filename"]
    assert second == entry["filename"].replace("00001", "00002")  # same node, same suffix


# -- transforms ----------------------------------------------------------------------------------------

def test_image_scale():
    image = torch.rand(2, 4, 8, 3)
    (same,) = I.ImageScale().upscale(image, "bilinear", 0, 0, "disabled")
    assert same is image
    assert I.ImageScale().upscale(image, "bicubic", 16, 0, "disabled")[0].shape == (2, 8, 16, 3)
    assert I.ImageScale().upscale(image, "area", 0, 2, "disabled")[0].shape == (2, 2, 4, 3)
    assert I.ImageScale().upscale(image, "lanczos", 5, 5, "center")[0].shape == (2, 5, 5, 3)
    (cropped,) = I.ImageScale().upscale(image, "nearest-exact", 4, 4, "center")
    assert torch.equal(cropped, image[:, :, 2:6])


def test_image_scale_by_and_total_pixels():
    image = torch.rand(1, 10, 20, 3)
    assert I.ImageScaleBy().upscale(image, "bilinear", 1.5)[0].shape == (1, 15, 30, 3)
    assert I.ImageScaleBy().upscale(image, "nearest-exact", 0.01)[0].shape == (1, 1, 1, 3)
    (total,) = I.ImageScaleToTotalPixels().upscale(image, "bilinear", 0.01)
    assert total.shape == (1, 72, 145, 3)
    (stepped,) = I.ImageScaleToTotalPixels().upscale(image, "bilinear", 0.01, resolution_steps=16)
    assert stepped.shape == (1, 80, 144, 3)  # 72.4 / 16 rounds to 5 steps


def test_invert_batch_crop():
    image = torch.rand(1, 4, 4, 3)
    assert torch.allclose(I.ImageInvert().invert(image)[0], 1 - image)
    rgba = torch.rand(1, 2, 2, 4)
    assert torch.equal(I.ImageInvert().invert(rgba)[0][..., 3], rgba[..., 3])
    (batch,) = I.ImageBatch().batch(image, torch.ones(2, 8, 8, 3))
    assert batch.shape == (3, 4, 4, 3) and torch.allclose(batch[1:], torch.ones(2, 4, 4, 3))
    assert I.ImageBatch().batch(image, torch.ones(1, 4, 4, 4))[0].shape == (2, 4, 4, 4)
    (crop,) = I.ImageCrop().crop(image, 2, 3, 1, 1)
    assert torch.equal(crop, image[:, 1:4, 1:3])
    (corner,) = I.ImageCrop().crop(image, 512, 512, 100, 100)
    assert torch.equal(corner, image[:, 3:, 3:])


def test_pad_for_outpaint_node():
    image = torch.rand(1, 16, 16, 3)
    padded, mask = I.ImagePadForOutpaint().expand_image(image, 8, 0, 0, 8, 4)
    assert padded.shape == (1, 24, 24, 3) and mask.shape == (1, 24, 24)
    assert torch.all(padded[:, 16:, :, :] == 0.5) and torch.all(mask[:, 16:] == 1) and torch.all(mask[:, :, :8] == 1)
    assert mask[0, 0, 8].item() == pytest.approx(1.0)  # left edge of the old image: d = 0
    assert mask[0, 0, 23].item() == 0.0  # far from any padded side
    assert mask[0, 15, 23].item() == pytest.approx(((4 - 1) / 4) ** 2)  # bottom: d = 16 - 15


def test_image_composite_masked():
    destination = torch.zeros(1, 4, 4, 3)
    source = torch.ones(1, 2, 2, 3)
    (out,) = I.ImageCompositeMasked().composite(destination, source, 1, 2, False)
    assert out[0, :, :, 0].tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0]]
    (masked,) = I.ImageCompositeMasked().composite(destination, source, 0, 0, True, torch.full((1, 4, 4), 0.25))
    assert torch.allclose(masked, torch.full((1, 4, 4, 3), 0.25))
    (rgba,) = I.ImageCompositeMasked().composite(destination, torch.ones(1, 2, 2, 4), 0, 0, False)
    assert rgba.shape == (1, 4, 4, 4) and torch.all(rgba[..., 3] == 1)


def test_blend_blur_sharpen_nodes():
    image = torch.rand(1, 6, 6, 3, generator=torch.Generator().manual_seed(3))
    (blended,) = I.ImageBlend().blend_images(image, torch.zeros(1, 6, 6, 3), 0.5, "multiply")
    assert torch.allclose(blended, image * 0.5)
    (blurred,) = I.ImageBlur().blur(image, 1, 1.0)
    assert blurred.shape == image.shape and blurred.std() < image.std()
    (sharpened,) = I.ImageSharpen().sharpen(image, 1, 1.0, 1.0)
    assert sharpened.shape == image.shape and sharpened.min() >= 0 and sharpened.max() <= 1


def test_empty_image():
    (image,) = I.EmptyImage().generate(3, 2, 4, 0xFF0080)
    assert image.shape == (4, 2, 3, 3)
    assert image[3, 1, 2].tolist() == pytest.approx([1.0, 0.0, 128 / 255])


# -- an API prompt as ComfyUI's frontend sends it ---------------------------------------------------

def run_api_prompt(prompt, registry, extra_pnginfo):
    """Evaluate every output node of an API prompt depth-first (a stand-in for the executor:
    links are [node_id, output_index], hidden inputs are injected by their declared kind)."""
    results = {}

    def evaluate(node_id):
        if node_id not in results:
            entry = prompt[node_id]
            definition = registry.get(entry["class_type"])
            kwargs = {name: evaluate(value[0])[value[1]] if isinstance(value, list) else value
                      for name, value in entry["inputs"].items()}
            hidden = definition.node_class.INPUT_TYPES().get("hidden", {})
            kwargs.update({name: {"PROMPT": prompt, "EXTRA_PNGINFO": extra_pnginfo}[kind]
                           for name, kind in hidden.items()})
            out = getattr(definition.node_class(), definition.function)(**kwargs)
            results[node_id] = out["ui"] if isinstance(out, dict) else out
        return results[node_id]

    return {node_id: evaluate(node_id) for node_id, entry in prompt.items()
            if registry.get(entry["class_type"]).output_node}


def test_comfyui_api_prompt_runs_unchanged(node_services):
    from nodes import register_builtin_nodes

    registry = NodeRegistry()
    register_builtin_nodes(registry)
    write_rgba(node_services.folders.input / "example.png", size=(24, 16), alpha=255)
    prompt = {
        "10": {"class_type": "LoadImage", "inputs": {"image": "example.png"}, "_meta": {"title": "Load Image"}},
        "11": {"class_type": "ImageScale", "inputs": {"upscale_method": "nearest-exact", "width": 32, "height": 0,
                                                      "crop": "disabled", "image": ["10", 0]}},
        "12": {"class_type": "ImagePadForOutpaint", "inputs": {"left": 8, "top": 0, "right": 8, "bottom": 0,
                                                               "feathering": 4, "image": ["11", 0]}},
        "13": {"class_type": "GrowMask", "inputs": {"expand": 2, "tapered_corners": True, "mask": ["12", 1]}},
        "14": {"class_type": "MaskToImage", "inputs": {"mask": ["13", 0]}},
        "15": {"class_type": "ImageBlend", "inputs": {"blend_factor": 0.5, "blend_mode": "screen",
                                                      "image1": ["12", 0], "image2": ["14", 0]}},
        "16": {"class_type": "SaveImage", "inputs": {"filename_prefix": "api/out", "images": ["15", 0]}},
        "17": {"class_type": "PreviewImage", "inputs": {"images": ["14", 0]}},
    }
    outputs = run_api_prompt(prompt, registry, {"workflow": WORKFLOW})
    saved = outputs["16"]["images"][0]
    assert saved == {"filename": "out_00001_.png", "subfolder": "api", "type": "output"}
    with Image.open(node_services.folders.output / "api" / "out_00001_.png") as image:
        assert image.size == (48, 21)  # 24x16 scaled to width 32 keeps the aspect: 32x21, then 8 + 8 wider
        assert json.loads(image.text["prompt"]) == prompt
    assert outputs["17"]["images"][0]["type"] == "temp"
