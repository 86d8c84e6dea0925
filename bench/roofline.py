"""A roofline for one UNet CFG step: where the time goes, per op class, against the device's peaks.

    python -m bench.roofline                  # SD1.5 at this device's plan size (CPU 256², GPU 512²)
    python -m bench.roofline --quick          # toy sizes: checks the script, numbers meaningless
    python -m bench.roofline --family sd15 --size 256

First the device's practical peaks (best of a few repeats): a large matmul and a large 3×3
convolution in fp32 and the half dtype (bf16 on the CPU, fp16 and bf16 on a GPU), and memory
bandwidth (a large copy and a large add, bytes moved per second). Then one UNet CFG step of each side
(``bench.sides``: same checkpoint, same inputs) under ``torch.profiler``; every aten op's self time
(CPU) or kernel time (GPU) goes to the class of its outermost classified caller (``aten::linear``'s
``aten::t`` and ``aten::addmm`` are both "linear"), and the work of each class is counted once, at
that outermost op, from its recorded shapes: FLOPs for convolution, linear/matmul and attention;
bytes moved (read once + written once, in the step's dtype) for normalisation and elementwise.

Writes ``bench/results/roofline-<device>.json`` and the table in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from bench.models import FAMILIES, checkpoint_file
from bench.report import replace_block
from bench.run import device_label, environment
from bench.sides import DiffusersSide, WeftSide, sync, weft_memory_options
from ldm.devices import detect_compute

HERE = Path(__file__).resolve().parent

CONVOLUTION, LINEAR, ATTENTION, NORMALISATION, ELEMENTWISE, OTHER = (
    "convolution", "linear/matmul", "attention", "normalisation", "elementwise", "other")
CLASSES = (CONVOLUTION, LINEAR, ATTENTION, NORMALISATION, ELEMENTWISE, OTHER)
#: Classes whose work is arithmetic (FLOPs against a compute peak); the others move memory.
COMPUTE_CLASSES = (CONVOLUTION, LINEAR, ATTENTION)
MEMORY_CLASSES = (NORMALISATION, ELEMENTWISE)

_CONVOLUTION_OPS = {"conv1d", "conv2d", "conv3d", "convolution", "_convolution", "mkldnn_convolution",
                    "cudnn_convolution", "conv_transpose2d"}
_LINEAR_OPS = {"linear", "matmul", "mm", "addmm", "_addmm_activation", "einsum"}
# In a UNet the batched products appear only inside attention (scores and the weighted sum of values).
_ATTENTION_OPS = {"scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
                  "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
                  "_scaled_dot_product_cudnn_attention", "_efficient_attention_forward", "bmm", "baddbmm",
                  "softmax", "_softmax", "_safe_softmax"}
_NORMALISATION_OPS = {"group_norm", "native_group_norm", "layer_norm", "native_layer_norm", "batch_norm",
                      "native_batch_norm", "rms_norm", "_fused_rms_norm", "instance_norm"}
_ELEMENTWISE_OPS = {
    "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "neg", "pow", "sqrt", "rsqrt", "exp", "log",
    "sin", "cos", "tanh", "sigmoid", "silu", "silu_", "gelu", "gelu_", "relu", "relu_", "clamp", "clamp_",
    "where", "lerp", "addcmul", "fill_", "zero_", "copy_", "clone", "contiguous", "to", "_to_copy", "cat",
    "stack", "chunk_cat", "repeat", "masked_fill", "masked_fill_", "upsample_nearest2d", "upsample_bilinear2d",
    "_upsample_nearest_exact2d"}
_CLASS_OF = {**{n: CONVOLUTION for n in _CONVOLUTION_OPS}, **{n: LINEAR for n in _LINEAR_OPS},
             **{n: ATTENTION for n in _ATTENTION_OPS}, **{n: NORMALISATION for n in _NORMALISATION_OPS},
             **{n: ELEMENTWISE for n in _ELEMENTWISE_OPS}}


#: Ops outside ``aten``: oneDNN's convolution and linear with packed weights (``ldm.networks.onednn``).
_OTHER_NAMESPACE_OPS = {"mkldnn::_convolution_pointwise": CONVOLUTION, "mkldnn::_linear_pointwise": LINEAR}


def op_class(name: str) -> str | None:
    """The class of an aten op by name; None for ops that only take the class of their caller
    (views, allocations, anything unlisted) — those count as "other" where nothing calls them."""
    if name in _OTHER_NAMESPACE_OPS:
        return _OTHER_NAMESPACE_OPS[name]
    if not name.startswith("aten::"):
        return None
    return _CLASS_OF.get(name.removeprefix("aten::"))


# --- work per op, from the recorded shapes ---------------------------------------------------------

def _numel(shape: Sequence[int]) -> int:
    return math.prod(shape) if shape else 0


def _pair(value, count: int) -> list[int]:
    if isinstance(value, (list, tuple)):
        return list(value) * count if len(value) == 1 else list(value)
    return [int(value)] * count


def conv_flops(input_shape: Sequence[int], weight_shape: Sequence[int], stride=1, padding=0, dilation=1,
               transposed: bool = False) -> int:
    """2·N·Cout·(output positions)·(Cin/groups)·(kernel positions): one multiply-add per weight per
    output position. ``weight_shape`` is [Cout, Cin/groups, *k] ([Cin, Cout/groups, *k] transposed)."""
    n, spatial = input_shape[0], list(input_shape[2:])
    kernel = list(weight_shape[2:])
    if transposed:  # every input position meets every weight once
        return 2 * n * _numel(spatial) * weight_shape[0] * _numel(weight_shape[1:])
    dims = len(kernel)
    if isinstance(padding, str):
        padding = [0] * dims if padding == "valid" else [(d * (k - 1)) // 2 for d, k in
                                                         zip(_pair(dilation, dims), kernel, strict=True)]
    stride, padding, dilation = _pair(stride, dims), _pair(padding, dims), _pair(dilation, dims)
    out = [(size + 2 * p - d * (k - 1) - 1) // s + 1
           for size, p, d, k, s in zip(spatial, padding, dilation, kernel, stride, strict=True)]
    return 2 * n * weight_shape[0] * _numel(out) * _numel(weight_shape[1:])


def matmul_flops(a: Sequence[int], b: Sequence[int]) -> int:
    """2·batch·M·N·K for ``a @ b`` with torch.matmul's broadcasting (1-D operands included)."""
    a, b = list(a), list(b)
    a_m = a if len(a) > 1 else [1] + a
    b_m = b if len(b) > 1 else b + [1]
    m, k, n = a_m[-2], a_m[-1], b_m[-1]
    batch = torch.broadcast_shapes(torch.Size(a_m[:-2]), torch.Size(b_m[:-2]))
    return 2 * _numel(batch) * m * n * k if batch else 2 * m * n * k


def linear_flops(input_shape: Sequence[int], weight_shape: Sequence[int]) -> int:
    """2·(rows)·out·in for ``F.linear``: weight is [out, in]."""
    return 2 * _numel(input_shape[:-1]) * weight_shape[0] * weight_shape[1]


def sdpa_flops(q: Sequence[int], k: Sequence[int], v: Sequence[int]) -> int:
    """QKᵀ (2·B·H·Lq·Lk·D) plus the weighted sum of V (2·B·H·Lq·Lk·Dv): 4·B·H·Lq·Lk·D when Dv = D."""
    batch, lq, d = _numel(q[:-2]), q[-2], q[-1]
    lk, dv = k[-2], v[-1]
    return 2 * batch * lq * lk * d + 2 * batch * lq * lk * dv


def _tensor_shapes(shapes: Sequence) -> list[list[int]]:
    """The non-scalar tensor shapes among an op's recorded inputs (tensor lists flattened)."""
    found = []
    for shape in shapes:
        if shape and isinstance(shape[0], (list, tuple)):
            found.extend(list(s) for s in shape if s)
        elif shape:
            found.append(list(shape))
    return found


def moved_bytes(name: str, shapes: Sequence, element_size: int, upsampled: Sequence[int] | None = None) -> int:
    """Bytes an elementwise or normalisation op must at least move: inputs read once, output written
    once (the output has the broadcast shape; ``copy_`` writes its first input and reads its second;
    ``cat``/``stack`` write what they read; an upsample writes ``upsampled``, its output's spatial size)."""
    op = name.removeprefix("aten::")
    tensors = _tensor_shapes(shapes)
    if not tensors:
        return 0
    if op in _NORMALISATION_OPS:
        return 2 * _numel(tensors[0]) * element_size
    if op == "copy_":
        return sum(_numel(s) for s in tensors[:2]) * element_size
    read = sum(_numel(s) for s in tensors)
    if op.startswith(("upsample", "_upsample")):  # (x, output_size, scale_factors): writes the larger map
        return (read + _numel(tensors[0][:2]) * _numel(upsampled or [])) * element_size
    if op in ("cat", "stack", "chunk_cat"):
        return 2 * read * element_size
    try:
        written = _numel(torch.broadcast_shapes(*(torch.Size(s) for s in tensors)))
    except RuntimeError:  # not broadcastable (e.g. where's index inputs): the first input's size
        written = _numel(tensors[0])
    return (read + written) * element_size


def op_work(name: str, shapes: Sequence, concrete: Sequence | None, element_size: int) -> tuple[int, int]:
    """(FLOPs, bytes moved) of one outermost op of a class, from its recorded input shapes and
    concrete scalar/list arguments (``concrete`` may be None: defaults are assumed)."""
    op = name.removeprefix("aten::").removeprefix("mkldnn::")
    concrete = list(concrete or []) + [None] * 10
    kind = op_class(name)

    def arg(index: int, default):
        return default if concrete[index] is None else concrete[index]

    if op in ("conv1d", "conv2d", "conv3d"):  # (x, w, b, stride, padding, dilation, groups)
        return conv_flops(shapes[0], shapes[1], arg(3, 1), arg(4, 0), arg(5, 1)), 0
    if op in ("convolution", "_convolution", "cudnn_convolution"):  # (x, w, b, stride, padding, dilation, transposed)
        return conv_flops(shapes[0], shapes[1], arg(3, 1), arg(4, 0), arg(5, 1), bool(arg(6, False))), 0
    if op in ("mkldnn_convolution", "_convolution_pointwise"):  # (x, w, b, padding, stride, dilation, groups)
        return conv_flops(shapes[0], shapes[1], arg(4, 1), arg(3, 0), arg(5, 1)), 0
    if op == "conv_transpose2d":
        return conv_flops(shapes[0], shapes[1], transposed=True), 0
    if op in ("linear", "_linear_pointwise"):  # (x, w, b, ...)
        return linear_flops(shapes[0], shapes[1]), 0
    if op in ("matmul", "mm", "bmm"):
        return matmul_flops(shapes[0], shapes[1]), 0
    if op in ("addmm", "baddbmm", "_addmm_activation"):  # (bias, a, b)
        return matmul_flops(shapes[1], shapes[2]), 0
    if op.startswith("_scaled_dot_product") or op in ("scaled_dot_product_attention",
                                                       "_efficient_attention_forward"):
        return sdpa_flops(shapes[0], shapes[1], shapes[2]), 0
    if op.startswith(("upsample", "_upsample")):
        output_size = concrete[1]
        if not output_size and concrete[2]:  # scale factors instead of a size
            output_size = [int(size * scale) for size, scale in zip(shapes[0][2:], concrete[2], strict=True)]
        return 0, moved_bytes(name, shapes, element_size, output_size)
    if kind in (ELEMENTWISE, NORMALISATION) or op in ("softmax", "_softmax", "_safe_softmax"):
        return 0, moved_bytes(name, shapes, element_size)
    return 0, 0  # einsum and "other": no count (their time still shows)


# --- one step under the profiler -------------------------------------------------------------------

@dataclass
class ClassTotals:
    seconds: float = 0.0
    flops: int = 0
    bytes: int = 0
    calls: int = 0  # outermost ops of this class


def _class_root(event):
    """The outermost caller of ``event`` (itself included) that has a class, or None."""
    root, node = None, event
    while node is not None:
        if op_class(node.name) is not None:
            root = node
        node = node.cpu_parent
    return root


def breakdown(events, element_size: int, device_time: bool) -> dict[str, ClassTotals]:
    """Per class: self time of every op under it, and the work of its outermost ops."""
    totals = {name: ClassTotals() for name in CLASSES}
    for event in events:
        if getattr(event, "is_user_annotation", False) or event.device_type != torch.autograd.DeviceType.CPU:
            continue  # kernels reach us through their launching op's self_device_time_total
        root = _class_root(event)
        kind = OTHER if root is None else op_class(root.name)
        seconds = (event.self_device_time_total if device_time else event.self_cpu_time_total) / 1e6
        totals[kind].seconds += seconds
        if root is event:
            flops, moved = op_work(event.name, event.input_shapes or [], getattr(event, "concrete_inputs", None),
                                   element_size)
            totals[kind].flops += flops
            totals[kind].bytes += moved
            totals[kind].calls += 1
    return totals


def profile_call(fn: Callable[[], object], device: torch.device):
    """The profiler's events for one call of ``fn`` (shapes recorded)."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sync(device)
    with profile(activities=activities, record_shapes=True) as prof:
        fn()
        sync(device)
    return prof.events()


# --- device peaks ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PeakSizes:
    matmul: int  # square side
    conv: tuple[int, int, int]  # batch, channels (in = out), side; 3×3, padding 1
    bandwidth_elements: int  # float32 elements per buffer
    repeats: int


CPU_PEAKS = PeakSizes(matmul=3072, conv=(2, 320, 64), bandwidth_elements=64 << 20, repeats=5)
GPU_PEAKS = PeakSizes(matmul=8192, conv=(8, 320, 128), bandwidth_elements=256 << 20, repeats=10)
QUICK_PEAKS = PeakSizes(matmul=256, conv=(1, 32, 16), bandwidth_elements=1 << 20, repeats=1)


def best_seconds(fn: Callable[[], object], device: torch.device, repeats: int, warm_up: bool = True) -> float:
    """The fastest of ``repeats`` calls (after one warm-up unless ``warm_up`` is False)."""
    if warm_up:
        fn()
    times = []
    for _ in range(max(1, repeats)):
        sync(device)
        started = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - started)
    return min(times)


def half_dtypes(device: torch.device) -> tuple[torch.dtype, ...]:
    return (torch.float16, torch.bfloat16) if device.type == "cuda" else (torch.bfloat16,)


def _matmul_peak(n: int, dtype: torch.dtype, device: torch.device, repeats: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n ** 3 / best_seconds(lambda: a @ b, device, repeats)


def _conv_peak(batch: int, channels: int, side: int, dtype: torch.dtype, device: torch.device,
               repeats: int) -> float:
    x = torch.randn(batch, channels, side, side, device=device, dtype=dtype)
    w = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype)
    flops = conv_flops(x.shape, w.shape, 1, 1)
    return flops / best_seconds(lambda: F.conv2d(x, w, padding=1), device, repeats)


def _bandwidth(elements: int, device: torch.device, repeats: int) -> dict:
    src = torch.randn(elements, device=device)
    other, dst = torch.randn_like(src), torch.empty_like(src)
    nbytes = src.numel() * src.element_size()
    copy = 2 * nbytes / best_seconds(lambda: dst.copy_(src), device, repeats)
    add = 3 * nbytes / best_seconds(lambda: torch.add(src, other, out=dst), device, repeats)
    return {"copy": copy, "add": add, "best": max(copy, add)}


def measure_peaks(device: torch.device, sizes: PeakSizes) -> dict:
    """Practical peaks: FLOP/s of a large matmul and 3×3 convolution per dtype; bytes/s of a copy
    (read + write) and an add (two reads + a write), the better of which is the bandwidth peak."""
    peaks: dict = {"matmul": {}, "conv": {}, "sizes": asdict(sizes)}
    with torch.inference_mode():
        for dtype in (torch.float32, *half_dtypes(device)):
            name = str(dtype).removeprefix("torch.")
            peaks["matmul"][name] = _matmul_peak(sizes.matmul, dtype, device, sizes.repeats)
            peaks["conv"][name] = _conv_peak(*sizes.conv, dtype, device, sizes.repeats)
        peaks["bandwidth"] = _bandwidth(sizes.bandwidth_elements, device, sizes.repeats)
    return peaks


def peak_for(kind: str, peaks: dict, dtype: str) -> float | None:
    """The peak a class is measured against: the conv peak for convolutions, the matmul peak for
    linear and attention (both are products of matrices), bandwidth for the memory-bound classes."""
    if kind == CONVOLUTION:
        return peaks["conv"].get(dtype)
    if kind in (LINEAR, ATTENTION):
        return peaks["matmul"].get(dtype)
    if kind in MEMORY_CLASSES:
        return peaks["bandwidth"]["best"]
    return None


# --- the two sides ---------------------------------------------------------------------------------

def side_report(totals: dict[str, ClassTotals], peaks: dict, dtype: str, step_seconds: float) -> dict:
    """Per class: time, share of the profiled time, work, achieved rate and fraction of its peak."""
    profiled = sum(t.seconds for t in totals.values())
    classes = {}
    for kind, t in totals.items():
        work = t.flops if kind in COMPUTE_CLASSES else t.bytes
        achieved = work / t.seconds if t.seconds and work else None
        peak = peak_for(kind, peaks, dtype)
        classes[kind] = {"seconds": t.seconds, "share": t.seconds / profiled if profiled else 0.0,
                         "flops": t.flops, "bytes": t.bytes, "calls": t.calls,
                         "unit": "FLOP/s" if kind in COMPUTE_CLASSES else "B/s", "achieved": achieved,
                         "peak": peak, "fraction_of_peak": achieved / peak if achieved and peak else None}
    return {"step_seconds": step_seconds, "profiled_seconds": profiled, "classes": classes}


def profile_sides(steps: dict[str, Callable[[], object]], device: torch.device, element_size: int,
                  rounds: int) -> dict[str, tuple[dict[str, ClassTotals], float]]:
    """Per side: (the class totals of its fastest profiled call, its fastest unprofiled call in
    seconds). After one warm-up each, the sides alternate for ``rounds`` rounds — an unprofiled and a
    profiled call per side per round — so load from other processes falls on both alike."""
    for step in steps.values():
        step()
    found: dict[str, tuple[dict[str, ClassTotals], float]] = {}
    for _ in range(max(1, rounds)):
        for name, step in steps.items():
            seconds = best_seconds(step, device, 1, warm_up=False)
            totals = breakdown(profile_call(step, device), element_size, device_time=device.type == "cuda")
            if name in found:
                best_totals, best_seconds_so_far = found[name]
                if sum(t.seconds for t in best_totals.values()) <= sum(t.seconds for t in totals.values()):
                    totals = best_totals
                seconds = min(seconds, best_seconds_so_far)
            found[name] = (totals, seconds)
    return found


# --- the table ---------------------------------------------------------------------------------------

def _rate(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    return f"{value / 1e9:.1f} G{'FLOP' if unit == 'FLOP/s' else 'B'}/s"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def table(results: dict) -> str:
    env, peaks, setting = results["environment"], results["peaks"], results["setting"]
    dtype = setting["dtype"]
    weft, theirs = results["sides"]["weft"], results["sides"]["diffusers"]
    load = env["load_average_at_start"]
    lines = [f"Measured {env['date']} on {env.get('gpu') or env['cpu']}; torch {env['torch']}, diffusers "
             f"{env['diffusers']}, {env['threads']} threads; {setting['family']} UNet CFG step, "
             f"{setting['size']}², batch 2, {dtype}; load average at start "
             f"{', '.join(f'{x:.1f}' for x in load)}, at end "
             f"{', '.join(f'{x:.1f}' for x in env.get('load_average_at_end', ()))}.",
             "",
             "Peaks (best of " f"{peaks['sizes']['repeats']}): "
             + "; ".join(f"matmul {name} {value / 1e9:.0f} GFLOP/s" for name, value in peaks["matmul"].items())
             + "; " + "; ".join(f"3×3 conv {name} {value / 1e9:.0f} GFLOP/s" for name, value in peaks["conv"].items())
             + f"; bandwidth {peaks['bandwidth']['best'] / 1e9:.1f} GB/s (copy {peaks['bandwidth']['copy'] / 1e9:.1f}, "
               f"add {peaks['bandwidth']['add'] / 1e9:.1f}).",
             "",
             f"Step unprofiled: Weft {weft['step_seconds']:.3f} s, diffusers {theirs['step_seconds']:.3f} s; "
             f"profiled op time: Weft {weft['profiled_seconds']:.3f} s, diffusers {theirs['profiled_seconds']:.3f} s.",
             "",
             "| op class | Weft time | share | achieved | of peak | diffusers time | share | achieved | of peak |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind in CLASSES:
        cells = []
        for side in (weft, theirs):
            c = side["classes"][kind]
            cells += [f"{1e3 * c['seconds']:.1f} ms", _percent(c["share"]), _rate(c["achieved"], c["unit"]),
                      _percent(c["fraction_of_peak"])]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- entry ---------------------------------------------------------------------------------------------

@dataclass
class Roofline:
    device: str
    environment: dict
    setting: dict
    peaks: dict = field(default_factory=dict)
    sides: dict = field(default_factory=dict)


def run(family_name: str, size: int, quick: bool, device: torch.device) -> Roofline:
    family = FAMILIES[family_name]
    compute = detect_compute(device)
    dtype = str(compute.dtype).removeprefix("torch.")
    label = "roofline-" + device_label(device) + ("-quick" if quick else "")
    result = Roofline(label, environment(device), {"family": family_name, "size": size, "dtype": dtype})
    sizes = QUICK_PEAKS if quick else (GPU_PEAKS if device.type == "cuda" else CPU_PEAKS)
    result.peaks = measure_peaks(device, sizes)
    print(f"peaks: {json.dumps({k: v for k, v in result.peaks.items() if k != 'sizes'})}", flush=True)

    path = checkpoint_file(family)
    latent = size // 8
    element_size = torch.empty((), dtype=compute.dtype).element_size()
    weft = WeftSide(family, path, compute, weft_memory_options("normalvram", device))
    theirs = DiffusersSide(family, path, device, compute.dtype)
    weft.load(), theirs.load()
    steps = {side.name: partial(side.unet_step, latent) for side in (weft, theirs)}
    for name, (totals, seconds) in profile_sides(steps, device, element_size, 1 if quick else 3).items():
        result.sides[name] = side_report(totals, result.peaks, dtype, seconds)
    weft.release(), theirs.release()
    result.environment["load_average_at_end"] = os.getloadavg()
    return result


def plan_size(family_name: str, device: torch.device, quick: bool) -> int:
    if quick:
        return 64
    return {"sd15": 256 if device.type == "cpu" else 512, "sdxl": 1024}[family_name]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="toy sizes: checks the script, numbers meaningless")
    parser.add_argument("--family", default="sd15", choices=sorted(FAMILIES))
    parser.add_argument("--size", type=int, default=None, help="image side in pixels (default: the plan's)")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite bench/README.md")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    size = args.size or plan_size(args.family, device, args.quick)
    started = time.perf_counter()
    result = run(args.family, size, args.quick, device)
    result.environment["seconds"] = round(time.perf_counter() - started)
    data = asdict(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{result.device}.json").write_text(json.dumps(data, indent=1))
    text = table(data)
    print(text)
    print(f"done in {result.environment['seconds']} s → {out / (result.device + '.json')}")
    if not args.no_readme and not args.quick:
        replace_block(HERE / "README.md", result.device, text, heading=f"### {result.device}")


if __name__ == "__main__":
    main()
