import numpy as np
import pytest
import torch
from PIL import Image

from graph.registry import NodeRegistry
from nodes import image_tools as T
from nodes import register_builtin_nodes
from tests.nodes.prompt_support import run_prompt


def test_module_registers_cleanly():
    registry = NodeRegistry()
    assert registry.register_mappings(T.NODE_CLASS_MAPPINGS, T.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    preview, shader = registry.get("MaskPreview"), registry.get("GLSLShader")
    assert (preview.category, preview.display_name, preview.output_node) == ("image/mask", "Preview Mask", True)
    assert preview.return_types == ("MASK",) and preview.return_names == ("mask",)
    assert (shader.category, shader.display_name, shader.output_node) == ("image/shader", "GLSL Shader", False)
    assert shader.return_names == ("IMAGE0", "IMAGE1", "IMAGE2", "IMAGE3")


def test_glsl_inputs_are_comfyui_prompt_keys():
    spec = T.GLSLShader.INPUT_TYPES()
    assert list(spec["required"]) == ["fragment_shader", "size_mode", "images.image0"]
    assert spec["required"]["size_mode"][0] == ["from_input", "custom"]
    optional = spec["optional"]
    assert [key for key in optional if key.startswith("images.")] == [f"images.image{i}" for i in range(1, 5)]
    assert len([key for key in optional if key.startswith("floats.u_float")]) == 20
    assert len([key for key in optional if key.startswith("ints.u_int")]) == 20
    assert len([key for key in optional if key.startswith("bools.u_bool")]) == 10
    assert [key for key in optional if key.startswith("curves.")] == [f"curves.u_curve{i}" for i in range(4)]
    assert optional["size_mode.width"] == ("INT", {"default": 512, "min": 1, "max": 16384, "step": 1})
    assert optional["floats.u_float0"] == ("FLOAT", {"default": 0.0, "forceInput": True})


def test_mask_preview_shows_the_mask_as_a_grey_image_in_temp(node_services):
    mask = torch.rand(2, 5, 7)
    out = T.MaskPreview().execute(mask)
    assert out["result"][0] is mask
    ui = out["ui"]
    assert ui["animated"] == (False,) and len(ui["images"]) == 2
    for index, entry in enumerate(ui["images"]):
        assert entry["type"] == "temp" and entry["subfolder"] == ""
        assert entry["filename"].startswith("ComfyUI_temp_") and entry["filename"].endswith("_.png")
        with Image.open(node_services.folders.temp / entry["filename"]) as saved:
            assert saved.mode == "RGB" and saved.size == (7, 5)
            assert "prompt" not in saved.info  # ComfyUI's PreviewMask writes no metadata
            pixels = np.asarray(saved)
        expected = np.clip(mask[index].numpy() * 255, 0, 255).astype(np.uint8)
        for channel in range(3):
            np.testing.assert_array_equal(pixels[..., channel], expected)


INVERT = ("#version 300 es\nprecision highp float;\nuniform sampler2D u_image0;\nuniform float u_float1;\n"
          "in vec2 v_texCoord;\nlayout(location = 0) out vec4 fragColor0;\n"
          "layout(location = 1) out vec4 fragColor1;\n"
          "void main() { vec4 c = texture(u_image0, v_texCoord);\n"
          "  fragColor0 = vec4(1.0 - c.rgb, c.a); fragColor1 = vec4(u_float1); }\n")


def test_glsl_shader_runs_a_comfyui_api_prompt(node_services, monkeypatch):
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(node_services.folders.input / "in.png")
    image = torch.from_numpy(pixels).float() / 255
    prompt = {
        "1": {"class_type": "PrimitiveFloat", "inputs": {"value": 0.75}},
        "2": {"class_type": "GLSLShader", "inputs": {
            "fragment_shader": INVERT, "size_mode": "from_input", "images.image0": ["3", 0],
            "floats.u_float1": ["1", 0]}},
        "3": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    captured = {}
    monkeypatch.setattr(T.glsl, "render", _recording(T.glsl.render, captured))
    outcome = run_prompt(registry, prompt, node_services)
    inverted, constant = captured["outputs"][:2]
    torch.testing.assert_close(inverted[0, ..., :3], 1.0 - image, atol=2e-3, rtol=0)
    assert torch.all(constant == 0.75)  # u_float1 came from the linked node; u_float0 was filled with 0
    assert captured["uniforms"].floats == [0.0, 0.75]
    ui = outcome.outputs["2"]
    assert [entry["type"] for entry in ui["input_images"] + ui["images"]] == ["temp", "temp"]
    with Image.open(node_services.folders.temp / ui["images"][0]["filename"]) as saved:
        assert saved.size == (5, 6)


def _recording(render, captured):
    def wrapper(source, images, width, height, uniforms=None):
        captured["uniforms"] = uniforms
        captured["outputs"] = render(source, images, width, height, uniforms)
        return captured["outputs"]
    return wrapper


def test_glsl_shader_custom_size_and_compile_errors(node_services):
    node = T.GLSLShader()
    image = torch.rand(2, 3, 3, 3)
    outputs = node.execute(T.glsl.DEFAULT_FRAGMENT_SHADER, "custom", **{
        "images.image0": image, "size_mode.width": 4, "size_mode.height": 2})["result"]
    assert [tuple(output.shape) for output in outputs] == [(2, 2, 4, 4)] * 4
    with pytest.raises(T.glsl.ShaderCompileError, match="nonsense"):
        node.execute("#version 300 es\nvoid main() { nonsense; }", "from_input", **{"images.image0": image})


def test_glsl_shader_reads_curves_and_bools(node_services):
    source = ("#version 300 es\nprecision highp float;\nuniform sampler2D u_curve0;\nuniform bool u_bool0;\n"
              "in vec2 v_texCoord;\nlayout(location = 0) out vec4 fragColor0;\n"
              "void main() {\n"
              "  fragColor0 = vec4(texture(u_curve0, vec2(0.5, 0.5)).r, u_bool0 ? 1.0 : 0.0, 0.0, 1.0); }\n")
    curve = {"points": [[0, 0.2], [1, 0.2]], "interpolation": "linear"}
    out = T.GLSLShader().execute(source, "from_input", **{
        "images.image0": torch.rand(1, 2, 2, 3), "curves.u_curve0": curve, "bools.u_bool0": True})["result"][0]
    assert torch.allclose(out[..., 0], torch.full((1, 2, 2), 0.2), atol=2e-3)  # lowp sampler
    assert torch.all(out[..., 1] == 1.0)


# -- ImageCompare, Painter, TextOverlay, WebcamCapture --------------------------------------------------

def test_schemas_of_the_editor_widget_nodes():
    registry = NodeRegistry()
    registry.register_mappings(T.NODE_CLASS_MAPPINGS, T.NODE_DISPLAY_NAME_MAPPINGS, core=True)
    compare = registry.get("ImageCompare")
    assert (compare.category, compare.output_node, compare.return_types) == ("image", True, ())
    painter = registry.get("Painter")
    assert painter.return_types == ("IMAGE", "MASK") and painter.category == "image"
    spec = T.Painter.INPUT_TYPES()
    assert spec["required"]["mask"][1]["widgetType"] == "PAINTER"
    assert spec["required"]["width"][1] == {"default": 512, "min": 64, "max": 4096, "step": 64, "socketless": True,
                                            "hidden": True}
    assert spec["required"]["bg_color"] == ("COLOR", {"default": "#000000"})
    overlay = registry.get("TextOverlay")
    assert (overlay.category, overlay.display_name, overlay.return_names) == ("text", "Draw Text Overlay",
                                                                              ("images",))
    webcam = registry.get("WebcamCapture")
    assert (webcam.category, webcam.display_name, webcam.return_types) == ("image", "Webcam Capture", ("IMAGE",))
    assert T.WebcamCapture.INPUT_TYPES()["required"]["image"] == ("WEBCAM", {})


def test_image_compare_previews_both_sides(node_services):
    a, b = torch.rand(2, 4, 4, 3), torch.rand(1, 4, 4, 3)
    ui = T.ImageCompare().execute(None, a, b)["ui"]
    assert len(ui["a_images"]) == 2 and len(ui["b_images"]) == 1
    assert ui["a_images"][0]["filename"].startswith("comfy.compare.a_temp_")
    assert ui["b_images"][0]["type"] == "temp"
    with Image.open(node_services.folders.temp / ui["b_images"][0]["filename"]) as saved:
        np.testing.assert_array_equal(np.asarray(saved), np.clip(b[0].numpy() * 255, 0, 255).astype(np.uint8))
    assert T.ImageCompare().execute(None, None, None)["ui"] == {"a_images": [], "b_images": []}


def test_painter_without_a_drawing_is_the_background(node_services):
    out = T.Painter().execute("", 128, 64, "#ff8000")
    image, mask = out["result"]
    assert image.shape == (1, 64, 128, 3) and mask.shape == (1, 64, 128)
    assert torch.allclose(image[0, 0, 0], torch.tensor([1.0, 128 / 255, 0.0]))
    assert torch.count_nonzero(mask) == 0
    assert T.hex_to_rgb("not a colour") == (0.0, 0.0, 0.0)


def test_painter_composites_the_drawing_by_its_alpha(node_services):
    drawing = np.zeros((4, 6, 4), dtype=np.uint8)
    drawing[1:3, 2:5] = (255, 0, 0, 255)  # opaque red stroke
    drawing[0, 0] = (0, 0, 255, 128)  # half-covered blue pixel
    (node_services.folders.input / "painter").mkdir()
    Image.fromarray(drawing, "RGBA").save(node_services.folders.input / "painter" / "d.png")
    base = torch.full((2, 4, 6, 3), 0.5)
    image, mask = T.Painter().execute("painter/d.png", 512, 512, "#000000", base)["result"]
    alpha = drawing[..., 3:].astype(np.float32) / 255
    expected = drawing[..., :3] / 255.0 * alpha + 0.5 * (1 - alpha)
    np.testing.assert_allclose(image[0].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(mask[0].numpy(), alpha[..., 0])
    assert image.shape[0] == 1  # the first base image only
    first = T.Painter.IS_CHANGED("painter/d.png", 512, 512)
    assert first == __import__("hashlib").sha256((node_services.folders.input / "painter" / "d.png")
                                                 .read_bytes()).hexdigest()
    with pytest.raises(FileNotFoundError):
        T.Painter().execute("../outside.png", 64, 64, "#000000")


def test_painter_resizes_a_drawing_of_another_size(node_services):
    Image.new("RGBA", (8, 8), (0, 255, 0, 255)).save(node_services.folders.input / "small.png")
    image, mask = T.Painter().execute("small.png", 64, 128, "#000000")["result"]
    assert image.shape == (1, 128, 64, 3) and torch.allclose(mask, torch.ones(1, 128, 64))
    assert torch.allclose(image[..., 1], torch.ones(1, 128, 64))


def test_text_overlay_draws_white_text_in_the_top_band(node_services):
    images = torch.zeros(2, 100, 200, 3)
    out = T.TextOverlay().execute(images, "Hello", 10.0, "#ffffff", "top", "left", False)
    result = out["result"][0]
    assert result.shape == images.shape and torch.equal(result[0], result[1])
    drawn = result[0].sum(dim=-1) > 0
    rows, cols = torch.nonzero(drawn, as_tuple=True)
    assert rows.min() >= 1 and rows.max() < 20 and cols.min() >= 1 and cols.max() < 100
    assert result.max() > 0.9  # white, anti-aliased
    assert out["ui"]["source_images"][0]["filename"].startswith("comfy.textoverlay.source_temp_")


def test_text_overlay_matches_the_layer_composite_and_positions(node_services):
    images = torch.rand(1, 60, 80, 3)
    out = T.TextOverlay().execute(images, "Ab\\nCd", 12.0, "#00ff00", "bottom", "right", True)["result"][0]
    rgb, alpha = T.text_overlay.render_layer(80, 60, "Ab\nCd", 12.0, "#00ff00", "bottom", "right", True)
    torch.testing.assert_close(out[0], images[0] * (1 - alpha) + rgb * alpha)
    rows, cols = torch.nonzero(alpha[..., 0] > 0, as_tuple=True)
    assert rows.min() > 25 and cols.max() > 60  # bottom right
    assert torch.all(rgb[alpha[..., 0] == 1.0][:, 0] == 0.0)  # green text, black outline: no red


def test_text_overlay_blank_text_and_rgba(node_services):
    images = torch.rand(1, 40, 40, 4)
    assert T.TextOverlay().execute(images, "  ", 5.0, "#ffffff", "top", "left", True)["result"][0] is images
    transparent = torch.zeros(1, 40, 40, 4)
    out = T.TextOverlay().execute(transparent, "X", 40.0, "#ff0000", "top", "center", False)["result"][0]
    covered = out[0, ..., 3] > 0.99
    assert covered.any() and torch.allclose(out[0][covered][:, :3], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.all(out[0][out[0, ..., 3] == 0][:, :3] == 0)


def test_text_overlay_wraps_long_lines_within_the_margins():
    from PIL import ImageFont
    font = ImageFont.load_default(size=12)
    lines = T.text_overlay.wrap_lines("one two three four five six seven", font, 60)
    assert len(lines) > 1 and all(font.getlength(line) <= 60 for line in lines)
    assert " ".join(lines) == "one two three four five six seven"
    assert all(font.getlength(piece) <= 20 for piece in T.text_overlay.wrap_lines("abcdefghij", font, 20))


def test_webcam_capture_loads_the_uploaded_frame(node_services):
    (node_services.folders.temp / "webcam").mkdir()
    pixels = np.random.default_rng(2).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(node_services.folders.temp / "webcam" / "1.png")
    (image,) = T.WebcamCapture().load_capture("webcam/1.png [temp]", 0, 0, True)
    np.testing.assert_allclose(image[0].numpy(), pixels / 255.0, atol=1e-6)
    assert T.WebcamCapture.IS_CHANGED("webcam/1.png [temp]", 0, 0, True) == T.LoadImage.IS_CHANGED(
        "webcam/1.png [temp]")


CURVE_SHADER = ("#version 300 es\nprecision highp float;\nuniform sampler2D u_image0;\nuniform sampler2D u_curve0;\n"
                "in vec2 v_texCoord;\nlayout(location = 0) out vec4 fragColor0;\n"
                "void main() { vec4 c = texture(u_image0, v_texCoord);\n"
                "  fragColor0 = vec4(texture(u_curve0, vec2(clamp(c.r, 0.0, 1.0), 0.5)).r, c.g, c.b, 1.0); }\n")


def test_template_shape_histogram_curve_shader_and_mask_preview(node_services):
    """The chain ComfyUI's shared templates use: a histogram feeds the curve editor, whose curve
    a shader samples; the loaded mask is previewed."""
    registry = NodeRegistry()
    register_builtin_nodes(registry)
    pixels = np.zeros((4, 4, 4), dtype=np.uint8)
    pixels[..., 0] = 64
    pixels[..., 3] = 255
    pixels[0, 0, 3] = 0
    Image.fromarray(pixels, "RGBA").save(node_services.folders.input / "in.png")
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
        "2": {"class_type": "ImageHistogram", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "CurveEditor", "inputs": {
            "curve": {"points": [[0, 1], [1, 0]], "interpolation": "linear"}, "histogram": ["2", 2]}},
        "4": {"class_type": "GLSLShader", "inputs": {
            "fragment_shader": CURVE_SHADER, "size_mode": "from_input", "images.image0": ["1", 0],
            "curves.u_curve0": ["3", 0]}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
        "6": {"class_type": "MaskPreview", "inputs": {"mask": ["1", 1]}},
    }
    outcome = run_prompt(registry, prompt, node_services)
    red_histogram = outcome.outputs["3"]["histogram"]
    assert red_histogram[64] == 16 and sum(red_histogram) == 16
    with Image.open(node_services.folders.temp / outcome.outputs["5"]["images"][0]["filename"]) as shaded:
        red = np.asarray(shaded)[..., 0]
    assert np.all(np.abs(red.astype(int) - int(255 * (1 - 64 / 255))) <= 2)  # the curve inverted red
    with Image.open(node_services.folders.temp / outcome.outputs["6"]["images"][0]["filename"]) as preview:
        mask = np.asarray(preview)[..., 0]
    assert mask[0, 0] == 255 and mask[1, 1] == 0  # LoadImage's mask is 1 - alpha


def test_glsl_shader_curves_keep_their_names_across_a_gap(node_services):
    source = ("#version 300 es\nprecision highp float;\nuniform sampler2D u_curve1;\n"
              "in vec2 v_texCoord;\nlayout(location = 0) out vec4 fragColor0;\n"
              "void main() { fragColor0 = vec4(texture(u_curve1, vec2(0.5, 0.5)).r); }\n")
    flat = {"points": [[0, 0.6], [1, 0.6]], "interpolation": "linear"}
    out = T.GLSLShader().execute(source, "from_input", **{
        "images.image0": torch.rand(1, 2, 2, 3), "curves.u_curve1": flat})["result"][0]
    assert torch.allclose(out, torch.full((1, 2, 2, 4), 0.6), atol=2e-3)
