"""Run a GLSL ES 3.00 fragment shader over images, as ComfyUI's GLSLShader node does.

The conventions are ComfyUI's (``comfy_extras/nodes_glsl.py``), so shaders written for its
editor preview (WebGL 2) run unchanged: a full-screen triangle drawn by a fixed vertex shader
that hands ``v_texCoord`` (0..1, origin bottom-left) to the fragment shader; input images bound
as ``u_image0..4`` (RGBA32F textures, linear filtering, clamp to edge), then the curves as
``u_curve0..3`` (one-row R32F textures on the units after the images); ``u_float<i>``,
``u_int<i>``, ``u_bool<i>``, ``u_resolution`` (output size) and ``u_pass``; up to four outputs
``fragColor0..3`` (multiple render targets, counted from the highest index the source names);
``#pragma passes N`` renders N times, passes before the last reading the previous pass's
``fragColor0`` through ``u_image0``.

The context: ComfyUI renders through ANGLE's EGL (the ``comfy-angle`` wheel). Weft uses
moderngl on an EGL context of the system's Mesa (llvmpipe without a GPU), which needs no
display and no process-wide environment variable; Mesa's desktop core profile compiles
``#version 300 es`` shaders natively (GL_ARB_ES3_compatibility), so the source is never
rewritten and ES rules (precision qualifiers included) hold as in the browser. A context is
bound to the thread that made it current, and nodes run on the worker thread, so each render
makes its own context and releases it (about 0.2 s with llvmpipe).
"""

from __future__ import annotations

import importlib.util
import logging
import re
from dataclasses import dataclass, field

import numpy as np
import torch

log = logging.getLogger(__name__)

MAX_IMAGES = 5
MAX_UNIFORMS = 20
MAX_BOOLS = 10
MAX_CURVES = 4
MAX_OUTPUTS = 4

# The runtime libraries by their versioned names, so the -dev packages need not be installed.
_LIBRARIES = {"libgl": "libGL.so.1", "libegl": "libEGL.so.1"}

VERTEX_SHADER = """#version 300 es
out vec2 v_texCoord;
void main() {
    // one triangle over the whole viewport; the parts outside it are clipped
    vec2 corners[3] = vec2[](vec2(-1.0, -1.0), vec2(3.0, -1.0), vec2(-1.0, 3.0));
    vec2 corner = corners[gl_VertexID];
    v_texCoord = corner * 0.5 + 0.5;
    gl_Position = vec4(corner, 0.0, 1.0);
}
"""

DEFAULT_FRAGMENT_SHADER = """#version 300 es
precision highp float;

uniform sampler2D u_image0;
uniform vec2 u_resolution;

in vec2 v_texCoord;
layout(location = 0) out vec4 fragColor0;

void main() {
    fragColor0 = texture(u_image0, v_texCoord);
}
"""


class GLSLUnavailableError(RuntimeError):
    """No OpenGL context could be made (moderngl missing, or no EGL/Mesa on the system)."""


class ShaderCompileError(ValueError):
    """The fragment shader did not compile or link; the message carries the driver's log."""


@dataclass(frozen=True)
class ShaderUniforms:
    """The user values a shader reads: ``u_float<i>``, ``u_int<i>``, ``u_bool<i>``, and the
    curves as 1-D lookup tables (float arrays sampled over x in 0..1) for ``u_curve<i>``, None
    where a curve is not given."""
    floats: list[float] = field(default_factory=list)
    ints: list[int] = field(default_factory=list)
    bools: list[bool] = field(default_factory=list)
    curves: list[np.ndarray | None] = field(default_factory=list)


def output_count(source: str) -> int:
    """How many render targets the shader writes: one past the highest ``fragColor<i>`` named."""
    indices = [int(index) for index in re.findall(r"fragColor(\d+)", source)]
    return min(max(indices) + 1, MAX_OUTPUTS) if indices else 1


def pass_count(source: str) -> int:
    """The N of a ``#pragma passes N`` line, 1 without one."""
    found = re.search(r"#pragma\s+passes\s+(\d+)", source)
    return max(1, int(found.group(1))) if found else 1


def _load_triton_first() -> None:
    """Loads triton's compiler library, when installed, before Mesa loads its own LLVM.

    Mesa's software rasteriser (llvmpipe) links LLVM as a shared library; triton (which torch's
    compiler stack imports, e.g. on ``import torchvision.ops``) carries another LLVM. Loaded in the
    order Mesa first, triton second, the process dies with a segmentation fault when triton
    initialises — a GLSLShader run followed by an upscale-model run took the whole server down.
    Triton first, Mesa second works (tests/ldm/imaging/test_glsl.py runs both orders' use in a child).
    """
    if importlib.util.find_spec("triton") is None:
        return
    try:
        import triton  # noqa: F401  (loaded for its side effect: its LLVM before Mesa's)
    except Exception:
        log.warning("triton is installed but failed to import; a later import may crash once Mesa is loaded",
                    exc_info=True)


def _create_context():
    try:
        import moderngl
    except ImportError as exc:
        raise GLSLUnavailableError("GLSL shaders need the moderngl package (pip install moderngl)") from exc
    _load_triton_first()
    try:
        return moderngl.create_context(standalone=True, backend="egl", require=330, **_LIBRARIES)
    except Exception as exc:
        raise GLSLUnavailableError(
            f"could not create a headless OpenGL context through EGL ({exc}); on Debian/Ubuntu "
            "install libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri") from exc


def _compile(context, fragment_source: str):
    import moderngl
    try:
        return context.program(vertex_shader=VERTEX_SHADER, fragment_shader=fragment_source)
    except moderngl.Error as exc:
        raise ShaderCompileError(f"GLSL shader failed to compile:\n{exc}") from exc


def _set_uniform(program, name: str, value) -> None:
    """Sets a uniform the shader declares and uses; the compiler drops the others, so a value
    for an unused uniform is not an error (ComfyUI skips them the same way)."""
    if name in program:
        program[name].value = value


def _upload(context, image: np.ndarray):
    """An RGBA32F texture of one [H, W, C] image, rows flipped: GL's first row is the bottom."""
    height, width, channels = image.shape
    rgba = np.ones((height, width, 4), dtype=np.float32)
    rgba[..., :channels] = image[::-1, :, :4]  # RGB images get opaque alpha
    texture = context.texture((width, height), 4, rgba.tobytes(), dtype="f4")
    _clamped_linear(texture)
    return texture


def _clamped_linear(texture) -> None:
    import moderngl
    texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
    texture.repeat_x = False
    texture.repeat_y = False


def _read(texture, width: int, height: int) -> torch.Tensor:
    pixels = np.frombuffer(texture.read(), dtype=np.float32).reshape(height, width, 4)
    return torch.from_numpy(pixels[::-1].copy())


def render(source: str, images: list[torch.Tensor], width: int, height: int,
           uniforms: ShaderUniforms | None = None) -> list[torch.Tensor]:
    """Runs the fragment shader once per batch index of the first image.

    ``images`` are IMAGE tensors [B, H, W, C] (at most five; an image with a shorter batch
    repeats its last entry). Returns :data:`MAX_OUTPUTS` float32 tensors [B, height, width, 4],
    the ones the shader does not write black. Raises :class:`ShaderCompileError` with the
    compiler's log, :class:`GLSLUnavailableError` without an OpenGL context.
    """
    if not images:
        raise ValueError("At least one input image is required")
    if len(images) > MAX_IMAGES:
        raise ValueError(f"a shader takes at most {MAX_IMAGES} images, got {len(images)}")
    uniforms = uniforms or ShaderUniforms()
    outputs, passes = output_count(source), pass_count(source)
    context = _create_context()
    try:
        program = _compile(context, source)
        targets = [context.texture((width, height), 4, dtype="f4") for _ in range(outputs)]
        frame = context.framebuffer(color_attachments=targets)
        # two textures that alternate as target and source between passes
        ping_pong = [context.texture((width, height), 4, dtype="f4") for _ in range(2 if passes > 1 else 0)]
        for texture in ping_pong:
            _clamped_linear(texture)
        pass_frames = [context.framebuffer(color_attachments=[texture]) for texture in ping_pong]
        _set_uniforms(context, program, uniforms, len(images), width, height)
        vertex_array = context.vertex_array(program, [])
        batch = images[0].shape[0]
        results: list[list[torch.Tensor]] = [[] for _ in range(MAX_OUTPUTS)]
        for index in range(batch):
            textures = [_upload(context, image[min(index, image.shape[0] - 1)].detach().float().cpu().numpy())
                        for image in images]
            for unit, texture in enumerate(textures):
                texture.use(location=unit)
            for pass_index in range(passes):
                last = pass_index == passes - 1
                target = frame if last else pass_frames[pass_index % 2]
                if pass_index > 0:
                    ping_pong[(pass_index - 1) % 2].use(location=0)
                _set_uniform(program, "u_pass", pass_index)
                target.use()
                target.clear(0.0, 0.0, 0.0, 0.0)
                vertex_array.render(vertices=3)
            for slot in range(MAX_OUTPUTS):
                results[slot].append(_read(targets[slot], width, height) if slot < outputs
                                     else torch.zeros(height, width, 4))
            for texture in textures:
                texture.release()
        log.debug("GLSL shader ran: %d image(s) %dx%d, %d pass(es), %d output(s)",
                  batch, width, height, passes, outputs)
        return [torch.stack(slot) for slot in results]
    finally:
        context.release()


def _set_uniforms(context, program, uniforms: ShaderUniforms, image_count: int, width: int, height: int) -> None:
    for unit in range(image_count):
        _set_uniform(program, f"u_image{unit}", unit)
    _set_uniform(program, "u_resolution", (float(width), float(height)))
    for index, value in enumerate(uniforms.floats):
        _set_uniform(program, f"u_float{index}", float(value))
    for index, value in enumerate(uniforms.ints):
        _set_uniform(program, f"u_int{index}", int(value))
    for index, value in enumerate(uniforms.bools):
        _set_uniform(program, f"u_bool{index}", bool(value))
    for index, table in enumerate(uniforms.curves):
        if table is None:
            continue
        unit = MAX_IMAGES + index  # curves sit after every image unit, as ComfyUI binds them
        lut = np.ascontiguousarray(table, dtype=np.float32)
        texture = context.texture((len(lut), 1), 1, lut.tobytes(), dtype="f4")
        _clamped_linear(texture)
        texture.use(location=unit)
        _set_uniform(program, f"u_curve{index}", unit)
