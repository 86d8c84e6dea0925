import json
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from graph.registry import NodeRegistry
from nodes import image_save as S

PROMPT = {"3": {"class_type": "SaveAnimatedPNG", "inputs": {}}}
WORKFLOW = {"nodes": [], "version": 0.4}


def test_module_registers_cleanly():
    registry = NodeRegistry()
    assert registry.register_mappings(S.NODE_CLASS_MAPPINGS, S.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    for name, display in (("SaveAnimatedPNG", "Save Animated PNG"), ("SaveAnimatedWEBP", "Save Animated WEBP")):
        definition = registry.get(name)
        assert (definition.category, definition.display_name, definition.output_node) == ("image", display, True)
        assert definition.return_types == ("IMAGE",) and definition.return_names == ("images",)
    assert S.SaveAnimatedWEBP.INPUT_TYPES()["required"]["method"] == (["default", "fastest", "slowest"],)
    load = registry.get("LoadImageOutput")
    assert (load.category, load.display_name, load.return_types) == ("image", "Load Image (from Outputs)",
                                                                    ("IMAGE", "MASK"))
    spec = S.LoadImageOutput.INPUT_TYPES()["required"]["image"]
    assert spec[0] == "COMBO" and spec[1]["image_folder"] == "output"
    assert spec[1]["remote"]["route"] == "/internal/files/output"


def frames_8bit(images):
    return [np.clip(255.0 * image.numpy(), 0, 255).astype(np.uint8) for image in images]


def comf_chunks(data: bytes) -> dict[str, str]:
    """The private ``comf`` chunks of a PNG, read by walking the chunk list."""
    found, position = {}, 8
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[position + 8 + length:position + 12 + length])[0]
        if kind == b"comf":
            key, text = body.split(b"\0", 1)
            found[key.decode("latin-1")] = text.decode("latin-1")
        position += 12 + length
    return found


def test_animated_png_reads_back_frame_by_frame(node_services):
    images = torch.rand(3, 5, 6, 3)
    out = S.SaveAnimatedPNG().save_images(images, 8.0, 4, "anim/clip", PROMPT, {"workflow": WORKFLOW})
    assert out["result"] == (images,)
    assert out["ui"] == {"images": [{"filename": "clip_00001_.png", "subfolder": "anim", "type": "output"}],
                         "animated": (True,)}
    path = node_services.folders.output / "anim" / "clip_00001_.png"
    with Image.open(path) as saved:
        assert saved.format == "PNG" and saved.n_frames == 3 and saved.is_animated
        for frame, expected in zip(ImageSequence.Iterator(saved), frames_8bit(images)):
            assert frame.info["duration"] == 125
            np.testing.assert_array_equal(np.asarray(frame.convert("RGB")), expected)
    chunks = comf_chunks(path.read_bytes())
    assert json.loads(chunks["prompt"]) == PROMPT and json.loads(chunks["workflow"]) == WORKFLOW
    second = S.SaveAnimatedPNG().save_images(images[:1], 6.0, 9, "anim/clip")
    assert second["ui"] == {"images": [{"filename": "clip_00002_.png", "subfolder": "anim", "type": "output"}]}


def test_animated_png_without_metadata(node_services):
    node_services.options.disable_metadata = True
    S.SaveAnimatedPNG().save_images(torch.rand(2, 4, 4, 3), 6.0, 1, "plain", PROMPT, {"workflow": WORKFLOW})
    assert comf_chunks((node_services.folders.output / "plain_00001_.png").read_bytes()) == {}


def test_animated_webp_lossless_reads_back_frame_by_frame(node_services):
    images = torch.rand(4, 6, 5, 3)
    out = S.SaveAnimatedWEBP().save_images(images, 10.0, "clip", True, 80, "fastest", PROMPT,
                                           {"workflow": WORKFLOW})
    assert out["ui"]["images"] == [{"filename": "clip_00001_.webp", "subfolder": "", "type": "output"}]
    assert out["ui"]["animated"] == (True,)
    with Image.open(node_services.folders.output / "clip_00001_.webp") as saved:
        assert saved.format == "WEBP" and saved.n_frames == 4
        for frame, expected in zip(ImageSequence.Iterator(saved), frames_8bit(images)):
            np.testing.assert_array_equal(np.asarray(frame.convert("RGB")), expected)
            assert frame.info["duration"] == 100  # known once the frame is decoded
        exif = saved.getexif()
        assert exif[0x0110] == "prompt:" + json.dumps(PROMPT)
        assert exif[0x010F] == "workflow:" + json.dumps(WORKFLOW)


def test_animated_webp_lossy_is_close(node_services):
    images = torch.linspace(0, 1, 8 * 8 * 3).reshape(1, 8, 8, 3).repeat(2, 1, 1, 1)
    S.SaveAnimatedWEBP().save_images(images, 6.0, "lossy", False, 90, "default")
    with Image.open(node_services.folders.output / "lossy_00001_.webp") as saved:
        first = np.asarray(saved.convert("RGB")).astype(np.float32) / 255
    assert np.abs(first - images[0].numpy()).mean() < 0.05


def test_load_image_output_reads_annotated_output_files(node_services):
    pixels = np.random.default_rng(1).integers(0, 256, (4, 3, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(node_services.folders.output / "result.png")
    image, mask = S.LoadImageOutput().load_image("result.png [output]")
    np.testing.assert_allclose(image[0].numpy(), pixels / 255.0, atol=1e-6)
    assert mask.shape == (1, 64, 64)
    assert S.LoadImageOutput.VALIDATE_INPUTS("result.png [output]") is True
    assert "Invalid image file" in S.LoadImageOutput.VALIDATE_INPUTS("result.png")  # unannotated: input folder
    with pytest.raises(FileNotFoundError):
        S.LoadImageOutput().load_image("../escape.png [output]")


# -- SaveImageAdvanced ---------------------------------------------------------------------------------

def test_save_image_advanced_schema():
    registry = NodeRegistry()
    registry.register_mappings(S.NODE_CLASS_MAPPINGS, S.NODE_DISPLAY_NAME_MAPPINGS, core=True)
    definition = registry.get("SaveImageAdvanced")
    assert (definition.category, definition.display_name, definition.output_node) == (
        "image", "Save Image (Advanced)", True)
    assert definition.return_names == ("images",)
    spec = S.SaveImageAdvanced.INPUT_TYPES()
    assert spec["required"]["format"][0] == ["png"]
    assert spec["optional"]["format.bit_depth"][0] == ["8-bit", "16-bit"]
    assert spec["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}


def test_save_image_advanced_8bit_png(node_services):
    images = torch.rand(2, 4, 5, 3)
    out = S.SaveImageAdvanced().execute(images, "adv/x", "png", PROMPT, {"workflow": WORKFLOW},
                                        **{"format.bit_depth": "8-bit", "format.input_color_space": "sRGB"})
    assert out["result"] == (images,)
    assert out["ui"]["images"] == [{"filename": f"x_0000{n}.png", "subfolder": "adv", "type": "output"}
                                   for n in (1, 2)]
    for index, entry in enumerate(out["ui"]["images"]):
        with Image.open(node_services.folders.output / "adv" / entry["filename"]) as saved:
            np.testing.assert_array_equal(np.asarray(saved), frames_8bit(images)[index])
            assert json.loads(saved.text["prompt"]) == PROMPT and json.loads(saved.text["workflow"]) == WORKFLOW


def test_save_image_advanced_16bit_png(node_services):
    grey = torch.rand(1, 3, 4, 1)
    S.SaveImageAdvanced().execute(grey, "deep", "png", **{"format.bit_depth": "16-bit"})
    with Image.open(node_services.folders.output / "deep_00001.png") as saved:
        assert saved.mode == "I;16"
        expected = np.clip(grey[0, ..., 0].double().numpy() * 65535, 0, 65535).astype(np.uint16)
        np.testing.assert_array_equal(np.asarray(saved), expected)
    rgba = torch.rand(1, 3, 4, 4)
    S.SaveImageAdvanced().execute(rgba, "deep", "png", **{"format.bit_depth": "16-bit"})
    data = (node_services.folders.output / "deep_00002.png").read_bytes()
    assert data[24:26] == bytes([16, 6])  # IHDR: bit depth 16, colour type RGBA
    with Image.open(node_services.folders.output / "deep_00002.png") as saved:  # Pillow keeps the high bytes
        high = np.clip(rgba[0].double().numpy() * 65535, 0, 65535).astype(np.uint16) >> 8
        np.testing.assert_array_equal(np.asarray(saved), high.astype(np.uint8))


def test_save_image_advanced_never_replaces_a_file(node_services):
    """A name taken by a file the counter scan does not see (another batch number) moves on."""
    taken = node_services.folders.output / "b0_00001.png"
    taken.write_bytes(b"keep")
    out = S.SaveImageAdvanced().execute(torch.rand(2, 4, 5, 3), "b%batch_num%", "png")
    assert [entry["filename"] for entry in out["ui"]["images"]] == ["b0_00002.png", "b1_00003.png"]
    assert taken.read_bytes() == b"keep"
