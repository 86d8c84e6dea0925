import io
import json
import struct
import zlib

import av
import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from graph.registry import NodeRegistry
from ldm.imaging import av_stills, avif
from ldm.imaging.color_spaces import hlg_to_linear
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

def option(**values):
    return {f"format.{key}": value for key, value in values.items()}


def test_save_image_advanced_schema():
    registry = NodeRegistry()
    registry.register_mappings(S.NODE_CLASS_MAPPINGS, S.NODE_DISPLAY_NAME_MAPPINGS, core=True)
    definition = registry.get("SaveImageAdvanced")
    assert (definition.category, definition.display_name, definition.output_node) == (
        "image", "Save Image (Advanced)", True)
    assert definition.return_names == ("images",)
    spec = S.SaveImageAdvanced.INPUT_TYPES()
    assert spec["required"]["format"][0] == ["png", "exr", "avif"]
    optional = spec["optional"]
    assert optional["format.bit_depth"][0] == ["8-bit", "16-bit", "16-bit float", "32-bit float", "auto",
                                               "8-bit YUV420", "10-bit YUV420"]
    assert optional["format.input_color_space"][0] == ["sRGB", "HDR", "linear", "linear ACEScg", "HDR PQ"]
    assert {key: value for key, value in optional["format.crf"][1].items() if key != "tooltip"} == {
        "default": 18, "min": 1, "max": 63, "advanced": True}
    assert optional["format.save_mode"][0] == ["still images", "animated"]
    assert optional["format.save_mode.fps"][1] == {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01}
    assert optional["format.save_mode.loop_count"][1]["default"] == 0
    assert S.SaveImageAdvanced.FORMATS["exr"][0][0] == "16-bit float"  # each format's default comes first
    assert S.SaveImageAdvanced.FORMATS["avif"][0][0] == "auto"
    assert spec["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}


def test_save_image_advanced_8bit_png(node_services):
    images = torch.rand(2, 4, 5, 3)
    out = S.SaveImageAdvanced().execute(images, "adv/x", "png", PROMPT, {"workflow": WORKFLOW},
                                        **option(bit_depth="8-bit", input_color_space="sRGB"))
    assert out["result"] == (images,)
    assert out["ui"] == {"images": [{"filename": f"x_0000{n}.png", "subfolder": "adv", "type": "output"}
                                    for n in (1, 2)]}
    for index, entry in enumerate(out["ui"]["images"]):
        with Image.open(node_services.folders.output / "adv" / entry["filename"]) as saved:
            np.testing.assert_array_equal(np.asarray(saved), frames_8bit(images)[index])
            assert json.loads(saved.text["prompt"]) == PROMPT and json.loads(saved.text["workflow"]) == WORKFLOW
            assert "srgb" in saved.info and saved.info["gamma"] == pytest.approx(0.45455)


def test_save_image_advanced_16bit_png(node_services):
    grey = torch.rand(1, 3, 4, 1)
    S.SaveImageAdvanced().execute(grey, "deep", "png", **option(bit_depth="16-bit"))
    with Image.open(node_services.folders.output / "deep_00001.png") as saved:
        assert saved.mode == "I;16"
        expected = np.clip(grey[0, ..., 0].double().numpy() * 65535, 0, 65535).astype(np.uint16)
        np.testing.assert_array_equal(np.asarray(saved), expected)
    rgba = torch.rand(1, 3, 4, 4)
    S.SaveImageAdvanced().execute(rgba, "deep", "png", **option(bit_depth="16-bit"))
    data = (node_services.folders.output / "deep_00002.png").read_bytes()
    assert data[24:26] == bytes([16, 6])  # IHDR: bit depth 16, colour type RGBA
    with Image.open(node_services.folders.output / "deep_00002.png") as saved:  # Pillow keeps the high bytes
        high = np.clip(rgba[0].double().numpy() * 65535, 0, 65535).astype(np.uint16) >> 8
        np.testing.assert_array_equal(np.asarray(saved), high.astype(np.uint8))


def read_exr(path):
    data = path.read_bytes()
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
    return av_stills.read_exr_header(data)[0], frame


@pytest.mark.parametrize("bit_depth,pixel_format", [("32-bit float", "gbrpf32le"), ("16-bit float", "gbrpf16le")])
def test_save_image_advanced_exr(node_services, bit_depth, pixel_format):
    images = torch.rand(2, 3, 4, 3)
    out = S.SaveImageAdvanced().execute(images, "hdr/shot", "exr", PROMPT, {"workflow": WORKFLOW},
                                        **option(bit_depth=bit_depth, input_color_space="HDR"))
    assert out["ui"] == {"images": [{"filename": f"shot_0000{n}.exr", "subfolder": "hdr", "type": "output"}
                                    for n in (1, 2)]}
    attributes, frame = read_exr(node_services.folders.output / "hdr" / "shot_00002.exr")
    assert frame.format.name == pixel_format and (frame.width, frame.height) == (4, 3)
    if bit_depth == "32-bit float":
        np.testing.assert_allclose(frame.to_ndarray(), hlg_to_linear(images[1]).numpy(), rtol=1e-6)
    assert json.loads(attributes["prompt"][1]) == PROMPT and json.loads(attributes["workflow"][1]) == WORKFLOW
    primaries = struct.unpack("<8f", attributes["chromaticities"][1])
    np.testing.assert_allclose(primaries, (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290), rtol=1e-6)


def test_save_image_advanced_exr_defaults_and_acescg(node_services):
    images = torch.rand(1, 2, 2, 4) * 3
    S.SaveImageAdvanced().execute(images, "cg", "exr", **option(input_color_space="linear ACEScg"))
    attributes, frame = read_exr(node_services.folders.output / "cg_00001.exr")
    assert frame.format.name == "gbrapf16le"  # 16-bit float by default
    np.testing.assert_allclose(struct.unpack("<8f", attributes["chromaticities"][1])[6:], (0.32168, 0.33767),
                               rtol=1e-6)
    assert "prompt" not in attributes


def avif_frames(path) -> list:
    with av.open(str(path)) as container:
        return list(container.decode(container.streams.video[-1]))


def smooth(frames: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0.1, 0.9, 32), torch.linspace(0.1, 0.9, 32), indexing="ij")
    return torch.stack([torch.stack([x, y, (x + y) / 2], dim=-1) * (1 - 0.1 * n) for n in range(frames)])


def test_save_image_advanced_avif_stills(node_services):
    images = smooth(2)
    out = S.SaveImageAdvanced().execute(images, "av", "avif", PROMPT, {"workflow": WORKFLOW},
                                        **option(bit_depth="auto", input_color_space="HDR PQ", crf=18,
                                                 save_mode="still images"))
    assert out["ui"] == {"images": [{"filename": f"av_0000{n}.avif", "subfolder": "", "type": "output"}
                                    for n in (1, 2)]}
    for index, entry in enumerate(out["ui"]["images"]):
        path = node_services.folders.output / entry["filename"]
        (frame,) = avif_frames(path)
        assert frame.format.name == "yuv420p10le"  # auto: 10-bit for HDR
        assert (int(frame.color_primaries), int(frame.color_trc), int(frame.colorspace)) == (9, 16, 9)
        assert np.abs(frame.to_ndarray(format="rgb48le") / 65535.0 - images[index].numpy()).mean() < 0.008
        with Image.open(path) as saved:
            exif = saved.getexif()
            assert json.loads(exif[0x0110].removeprefix("prompt:")) == PROMPT
            assert json.loads(exif[0x010F].removeprefix("workflow:")) == WORKFLOW


def test_save_image_advanced_animated_avif(node_services):
    images = smooth(3)
    out = S.SaveImageAdvanced().execute(images, "anim", "avif", PROMPT, {"workflow": WORKFLOW},
                                        **option(bit_depth="8-bit YUV420", input_color_space="sRGB", crf=18,
                                                 save_mode="animated", **{"save_mode.fps": 12.0,
                                                                          "save_mode.loop_count": 0}))
    assert out["ui"] == {"images": [{"filename": "anim_00001.avif", "subfolder": "", "type": "output"}],
                         "animated": (True,)}
    frames = avif_frames(node_services.folders.output / "anim_00001.avif")
    assert len(frames) == 3 and frames[0].format.name == "yuv420p"
    assert (int(frames[0].color_primaries), int(frames[0].color_trc), int(frames[0].colorspace)) == (1, 13, 1)
    one = S.SaveImageAdvanced().execute(images[:1], "anim", "avif", **option(save_mode="animated"))
    assert "animated" not in one["ui"]  # one image is not flagged animated


def test_save_image_advanced_without_metadata(node_services):
    node_services.options.disable_metadata = True
    execute = S.SaveImageAdvanced().execute
    execute(torch.rand(1, 2, 2, 3), "plain", "png", PROMPT, {"workflow": WORKFLOW})
    with Image.open(node_services.folders.output / "plain_00001.png") as saved:
        assert "prompt" not in saved.info and "workflow" not in saved.info and "srgb" in saved.info
    execute(torch.rand(1, 2, 2, 3), "plain", "exr", PROMPT, {"workflow": WORKFLOW})
    (exr,) = node_services.folders.output.glob("plain_*.exr")
    attributes, _ = read_exr(exr)
    assert "prompt" not in attributes and "chromaticities" in attributes
    execute(smooth(1), "plain", "avif", PROMPT, {"workflow": WORKFLOW})
    (saved_avif,) = node_services.folders.output.glob("plain_*.avif")
    assert avif.read_exif_item(saved_avif.read_bytes()) is None


@pytest.mark.parametrize("format,options,message", [
    ("jpeg", {}, "Unsupported format"),
    ("png", option(bit_depth="32-bit float"), "bit depth"),
    ("png", option(input_color_space="HDR"), "input color space"),
    ("exr", option(bit_depth="16-bit"), "bit depth"),
    ("exr", option(input_color_space="HDR PQ"), "input color space"),
    ("avif", option(bit_depth="16-bit float"), "bit depth"),
    ("avif", option(input_color_space="linear"), "input color space"),
    ("avif", option(save_mode="video"), "save mode"),
])
def test_save_image_advanced_refuses_what_comfyui_refuses(node_services, format, options, message):
    with pytest.raises(ValueError, match=message):
        S.SaveImageAdvanced().execute(torch.rand(1, 2, 2, 3), "x", format, **options)
    assert not any(node_services.folders.output.iterdir())


@pytest.mark.parametrize("format,channels", [("avif", 4), ("png", 2), ("exr", 2)])
def test_save_image_advanced_refuses_channel_counts(node_services, format, channels):
    with pytest.raises(ValueError, match=f"{channels}-channel"):
        S.SaveImageAdvanced().execute(torch.rand(1, 16, 16, channels), "x", format)


def test_save_image_advanced_never_replaces_a_file(node_services):
    """A name taken by a file the counter scan does not see (another batch number) moves on."""
    taken = node_services.folders.output / "b0_00001.png"
    taken.write_bytes(b"keep")
    out = S.SaveImageAdvanced().execute(torch.rand(2, 4, 5, 3), "b%batch_num%", "png")
    assert [entry["filename"] for entry in out["ui"]["images"]] == ["b0_00002.png", "b1_00003.png"]
    assert taken.read_bytes() == b"keep"
