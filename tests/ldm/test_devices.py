"""ldm.devices: compute device and dtype from CPU flags, built on request."""

from __future__ import annotations

import torch

from ldm.devices import ComputeSettings, cpu_has_fast_bf16, detect_compute, read_cpu_flags


def test_cpu_flags_decide_bf16(tmp_path):
    with_bf16 = tmp_path / "cpuinfo_bf16"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n")
    without = tmp_path / "cpuinfo_plain"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    amx = tmp_path / "cpuinfo_amx"
    amx.write_text("flags\t\t: amx_tile amx_bf16\n")
    assert cpu_has_fast_bf16(read_cpu_flags(with_bf16))
    assert cpu_has_fast_bf16(read_cpu_flags(amx))
    assert not cpu_has_fast_bf16(read_cpu_flags(without))
    assert read_cpu_flags(tmp_path / "missing") == frozenset()
    settings = detect_compute("cpu", cpuinfo_path=with_bf16)
    assert isinstance(settings, ComputeSettings) and settings.dtype == torch.bfloat16
    assert detect_compute("cpu", cpuinfo_path=without).dtype == torch.float32
    assert detect_compute("cpu", cpuinfo_path=with_bf16, force_dtype=torch.float32).dtype == torch.float32
