"""GLSL ES 3.00 fragment shaders over images, on a headless EGL context (Mesa llvmpipe here)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from ldm.imaging import glsl
from ldm.imaging.curves import curve_from_value

# ES samplers default to lowp; llvmpipe honours that with ~11-bit texture reads
TEXTURE_TOLERANCE = 2e-3

HEADER = "#version 300 es\nprecision highp float;\nin vec2 v_texCoord;\n"


def shader(body: str, declarations: str = "uniform sampler2D u_image0;\n"
                                          "layout(location = 0) out vec4 fragColor0;\n") -> str:
    return HEADER + declarations + "void main() {\n" + body + "\n}\n"


def test_passthrough_returns_the_image_with_opaque_alpha():
    image = torch.rand(2, 5, 7, 3)
    outputs = glsl.render(glsl.DEFAULT_FRAGMENT_SHADER, [image], 7, 5)
    assert len(outputs) == glsl.MAX_OUTPUTS
    assert all(output.shape == (2, 5, 7, 4) for output in outputs)
    torch.testing.assert_close(outputs[0][..., :3], image, atol=TEXTURE_TOLERANCE, rtol=0)
    assert torch.all(outputs[0][..., 3] == 1.0)
    assert all(torch.count_nonzero(output) == 0 for output in outputs[1:])  # unused targets are black


def test_rows_keep_their_order():
    """GL's first texture row is the bottom one; the upload and read-back flips must cancel."""
    image = torch.zeros(1, 4, 3, 3)
    image[0, 0] = 1.0  # top row white
    out = glsl.render(glsl.DEFAULT_FRAGMENT_SHADER, [image], 3, 4)[0]
    assert torch.allclose(out[0, 0, :, :3], torch.ones(3, 3), atol=TEXTURE_TOLERANCE)
    assert torch.allclose(out[0, 1:, :, :3], torch.zeros(3, 3, 3), atol=TEXTURE_TOLERANCE)


def test_inverting_shader_inverts_colour_and_keeps_alpha():
    image = torch.rand(1, 6, 4, 4)
    source = shader("vec4 c = texture(u_image0, v_texCoord);\nfragColor0 = vec4(1.0 - c.rgb, c.a);")
    out = glsl.render(source, [image], 4, 6)[0]
    torch.testing.assert_close(out[..., :3], 1.0 - image[..., :3], atol=TEXTURE_TOLERANCE, rtol=0)
    torch.testing.assert_close(out[..., 3], image[..., 3], atol=TEXTURE_TOLERANCE, rtol=0)


def test_uniforms_arrive():
    declarations = ("uniform float u_float0; uniform float u_float19; uniform int u_int3; uniform bool u_bool1;\n"
                    "uniform vec2 u_resolution; uniform sampler2D u_image0;\n"
                    "layout(location = 0) out vec4 fragColor0;\nlayout(location = 1) out vec4 fragColor1;\n")
    body = ("fragColor0 = vec4(u_float0, u_float19, float(u_int3), u_bool1 ? 1.0 : 0.0);\n"
            "fragColor1 = vec4(u_resolution, 0.0, 1.0);")
    uniforms = glsl.ShaderUniforms(floats=[0.25] + [0.0] * 18 + [-2.5], ints=[0, 0, 0, 7], bools=[False, True])
    first, second, *rest = glsl.render(shader(body, declarations), [torch.rand(1, 2, 2, 3)], 9, 3, uniforms)
    assert first.shape == (1, 3, 9, 4)
    assert torch.all(first == torch.tensor([0.25, -2.5, 7.0, 1.0]))
    assert torch.all(second == torch.tensor([9.0, 3.0, 0.0, 1.0]))
    assert all(torch.count_nonzero(output) == 0 for output in rest)


def test_several_images_and_a_curve():
    dark, bright = torch.full((1, 2, 2, 3), 0.2), torch.full((1, 2, 2, 3), 0.6)
    declarations = ("uniform sampler2D u_image0; uniform sampler2D u_image1; uniform sampler2D u_curve0;\n"
                    "layout(location = 0) out vec4 fragColor0;\n")
    body = ("float a = texture(u_image0, v_texCoord).r; float b = texture(u_image1, v_texCoord).r;\n"
            "fragColor0 = vec4(a + b, texture(u_curve0, vec2(0.25, 0.5)).r, 0.0, 1.0);")
    curve = curve_from_value({"points": [[0, 1], [1, 0]], "interpolation": "linear"})
    out = glsl.render(shader(body, declarations), [dark, bright], 2, 2,
                      glsl.ShaderUniforms(curves=[curve.lookup_table()]))[0]
    assert torch.allclose(out[..., 0], torch.full((1, 2, 2), 0.8), atol=TEXTURE_TOLERANCE)
    assert torch.allclose(out[..., 1], torch.full((1, 2, 2), 0.75), atol=TEXTURE_TOLERANCE)


def test_multi_pass_reads_the_previous_pass():
    source = ("#version 300 es\n#pragma passes 3\nprecision highp float;\nuniform sampler2D u_image0;\n"
              "uniform int u_pass;\nin vec2 v_texCoord;\nlayout(location = 0) out vec4 fragColor0;\n"
              "void main() { vec4 c = texture(u_image0, v_texCoord);\n"
              "  fragColor0 = vec4(c.r + 0.125, float(u_pass), 0.0, 1.0); }\n")
    assert glsl.pass_count(source) == 3
    out = glsl.render(source, [torch.zeros(1, 2, 2, 3)], 2, 2)[0]
    assert torch.allclose(out[..., 0], torch.full((1, 2, 2), 0.375), atol=TEXTURE_TOLERANCE)
    assert torch.all(out[..., 1] == 2.0)


def test_custom_size_samples_the_input_stretched():
    image = torch.zeros(1, 2, 2, 3)
    image[:, :, 1] = 1.0  # right column white
    out = glsl.render(glsl.DEFAULT_FRAGMENT_SHADER, [image], 8, 4)[0]
    assert out.shape == (1, 4, 8, 4)
    assert torch.all(out[0, :, 0, :3] < 0.1) and torch.all(out[0, :, -1, :3] > 0.9)
    assert torch.all(out[0, 0, 1:, 0] >= out[0, 0, :-1, 0])  # linear filtering rises left to right


def test_a_shader_that_does_not_compile_names_the_compiler_log():
    broken = shader("fragColor0 = vec4(undefined_thing, 1.0);")
    with pytest.raises(glsl.ShaderCompileError, match="undefined_thing"):
        glsl.render(broken, [torch.rand(1, 2, 2, 3)], 2, 2)


def test_es_rules_hold():
    """A GLSL ES fragment shader must declare a float precision; desktop GLSL would accept it."""
    without_precision = ("#version 300 es\nin vec2 v_texCoord;\nlayout(location = 0) out vec4 fragColor0;\n"
                         "void main() { fragColor0 = vec4(v_texCoord, 0.0, 1.0); }\n")
    with pytest.raises(glsl.ShaderCompileError, match="precision"):
        glsl.render(without_precision, [torch.rand(1, 2, 2, 3)], 2, 2)


@pytest.mark.parametrize("source, count", [
    ("fragColor0 = x;", 1), ("fragColor0; fragColor2;", 3), ("no outputs named", 1), ("fragColor7", 4)])
def test_output_count(source, count):
    assert glsl.output_count(source) == count


def test_needs_an_image():
    with pytest.raises(ValueError, match="At least one input image"):
        glsl.render(glsl.DEFAULT_FRAGMENT_SHADER, [], 2, 2)


def test_shorter_batches_repeat_their_last_image():
    first = torch.rand(3, 2, 2, 3)
    second = torch.full((1, 2, 2, 3), 0.5)
    declarations = "uniform sampler2D u_image1;\nlayout(location = 0) out vec4 fragColor0;\n"
    out = glsl.render(shader("fragColor0 = texture(u_image1, v_texCoord);", declarations), [first, second], 2, 2)[0]
    assert np.allclose(out[..., :3].numpy(), 0.5, atol=TEXTURE_TOLERANCE)
    assert out.shape[0] == 3


def test_renders_from_another_thread_and_repeatedly():
    """Nodes run on the worker thread: each render makes and releases its own context there."""
    import threading
    image = torch.rand(1, 3, 3, 3)
    results = []
    worker = threading.Thread(target=lambda: results.extend(
        glsl.render(glsl.DEFAULT_FRAGMENT_SHADER, [image], 3, 3)[0] for _ in range(3)))
    worker.start()
    worker.join()
    assert len(results) == 3
    for out in results:
        torch.testing.assert_close(out[..., :3], image, atol=TEXTURE_TOLERANCE, rtol=0)


def test_torch_compiler_stack_still_loads_after_a_shader_ran():
    # Mesa's LLVM loaded before triton's crashed the process on `import torchvision.ops` (the
    # upscale-model path): a GLSLShader run followed by an upscale took the server down. In a
    # child, so a crash fails this test instead of killing the test run.
    script = textwrap.dedent("""
        import torch
        from ldm.imaging import glsl
        image = torch.rand(1, 8, 8, 3)
        source = ("#version 300 es\\nprecision highp float;\\nuniform sampler2D u_image0;\\nin vec2 v_texCoord;\\n"
                  "layout(location = 0) out vec4 fragColor0;\\n"
                  "void main() { fragColor0 = vec4(1.0) - texture(u_image0, v_texCoord); }")
        glsl.render(source, [image], 8, 8)
        import torchvision.ops  # imports torch._dynamo, which loads triton when installed
        out = glsl.render(source, [image], 8, 8)
        print(float((out[0][..., :3] - (1 - image)).abs().max()))
    """)
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"child exited {done.returncode}: {done.stderr[-2000:]}"
    assert float(done.stdout.strip().splitlines()[-1]) < 2e-3
