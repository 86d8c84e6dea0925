"""server.py's device, memory and precision flags build the matching engine."""

from __future__ import annotations

import torch

from ldm.memory import VramMode
from server import build_engine, parse_args, vram_mode


def test_vram_flags():
    assert vram_mode(parse_args([])) is VramMode.NORMAL
    for flag, mode in (("--gpu-only", VramMode.GPU_ONLY), ("--highvram", VramMode.HIGH),
                       ("--lowvram", VramMode.LOW), ("--novram", VramMode.NONE), ("--cpu", VramMode.CPU)):
        assert vram_mode(parse_args([flag])) is mode


def test_engine_from_flags_on_this_machine():
    args = parse_args(["--lowvram", "--reserve-vram", "1.5", "--disable-smart-memory", "--fp8_e4m3fn-unet",
                       "--fp32-vae", "--lowvram-weights", "0.5", "--text-cache", "3"])
    engine = build_engine(args)
    options = engine.options
    if not torch.cuda.is_available():  # no GPU: everything on the CPU whatever the VRAM flag
        assert options.mode is VramMode.CPU and engine.compute.device.type == "cpu"
    assert options.reserve_bytes == int(1.5 * 1024 ** 3) and not options.smart_memory
    assert options.low_vram_weights == 512 * 1024 ** 2
    assert engine.compute.weight_dtype == torch.float8_e4m3fn and engine.compute.vae_dtype == torch.float32
    assert engine.text_cache.max_entries == 3


def test_compile_and_force_fp32_flags():
    engine = build_engine(parse_args(["--cpu", "--force-fp32", "--compile"]))
    assert engine.compile_mode == "default" and engine.compute.dtype == torch.float32
    assert build_engine(parse_args(["--compile", "reduce-overhead"])).compile_mode == "reduce-overhead"
