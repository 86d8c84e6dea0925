"""bench.roofline: op classes, the work formulas, one profiled call per side, the table."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bench import roofline as r
from bench.report import replace_block

CPU = torch.device("cpu")


def test_ops_are_classified_by_aten_name():
    assert r.op_class("aten::conv2d") == r.CONVOLUTION
    assert r.op_class("aten::mkldnn_convolution") == r.CONVOLUTION
    assert r.op_class("mkldnn::_convolution_pointwise") == r.CONVOLUTION  # packed weights (ldm.networks.onednn)
    assert r.op_class("mkldnn::_linear_pointwise") == r.LINEAR
    assert r.op_class("aten::addmm") == r.LINEAR and r.op_class("aten::linear") == r.LINEAR
    assert r.op_class("aten::scaled_dot_product_attention") == r.ATTENTION
    assert r.op_class("aten::bmm") == r.ATTENTION and r.op_class("aten::softmax") == r.ATTENTION
    assert r.op_class("aten::native_group_norm") == r.NORMALISATION
    assert r.op_class("aten::layer_norm") == r.NORMALISATION
    for name in ("aten::add_", "aten::silu", "aten::gelu", "aten::copy_", "aten::cat", "aten::upsample_nearest2d"):
        assert r.op_class(name) == r.ELEMENTWISE, name
    # views and allocations take their caller's class; outside any caller they are "other"
    assert r.op_class("aten::view") is None and r.op_class("aten::empty") is None
    assert r.op_class("conv2d") is None  # not an aten op


def test_flop_formulas_against_hand_counts():
    # conv: 2·N·Cout·Hout·Wout·(Cin/groups)·kh·kw with Hout = (16 + 2 − 3) // 2 + 1 = 8
    assert r.conv_flops([2, 8, 16, 16], [16, 8, 3, 3], stride=2, padding=1) == 2 * 2 * 16 * 8 * 8 * 8 * 3 * 3
    assert r.conv_flops([1, 8, 10, 10], [8, 2, 3, 3], padding="same") == 2 * 8 * 10 * 10 * 2 * 9  # groups 4
    # linear: 2·(rows)·out·in
    assert r.linear_flops([3, 5, 8], [12, 8]) == 2 * 15 * 12 * 8
    assert r.matmul_flops([4, 7, 3], [3, 5]) == 2 * 4 * 7 * 5 * 3
    # SDPA: 4·B·H·Lq·Lk·D
    assert r.sdpa_flops([2, 4, 32, 8], [2, 4, 20, 8], [2, 4, 20, 8]) == 4 * 2 * 4 * 32 * 20 * 8
    # bytes: group_norm reads and writes its input; add reads two and writes one; copy_ reads one, writes one
    assert r.moved_bytes("aten::group_norm", [[2, 8, 4, 4], [], [], [], [], []], 2) == 2 * 256 * 2
    assert r.moved_bytes("aten::add", [[2, 8], [1, 8], []], 4) == (16 + 8 + 16) * 4
    assert r.moved_bytes("aten::copy_", [[2, 8], [2, 8], []], 4) == 2 * 16 * 4
    assert r.moved_bytes("aten::cat", [[[2, 3], [2, 5]], []], 2) == 2 * 16 * 2


class _Block(torch.nn.Module):
    """conv → group norm → silu → linear → self-attention, like one piece of a UNet."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.norm = torch.nn.GroupNorm(4, 16)
        self.proj = torch.nn.Linear(16, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm(self.conv(x)))  # [2, 16, 8, 8]
        tokens = self.proj(h.flatten(2).transpose(1, 2))  # [2, 64, 32]
        q = tokens.view(2, 64, 4, 8).transpose(1, 2)  # [2, 4, 64, 8]
        return F.scaled_dot_product_attention(q, q, q)


def test_one_profiled_call_is_split_by_class_with_exact_work():
    block, x = _Block().eval(), torch.randn(2, 8, 16, 16)
    with torch.inference_mode():
        totals = r.breakdown(r.profile_call(lambda: block(x), CPU), element_size=4, device_time=False)
        with FlopCounterMode(display=False) as oracle:  # PyTorch's own count for conv and linear
            block(x)
    counted = {str(op): flops for op, flops in oracle.get_flop_counts()["Global"].items()}
    conv = 2 * 2 * 16 * 8 * 8 * 8 * 9
    linear = 2 * (2 * 64) * 32 * 16
    assert totals[r.CONVOLUTION].flops == conv == counted["aten.convolution"]
    assert totals[r.LINEAR].flops == linear == sum(v for k, v in counted.items() if k != "aten.convolution"), counted
    assert totals[r.ATTENTION].flops == 4 * 2 * 4 * 64 * 64 * 8
    assert totals[r.NORMALISATION].bytes == 2 * 2 * 16 * 8 * 8 * 4
    assert totals[r.CONVOLUTION].calls == totals[r.LINEAR].calls == totals[r.ATTENTION].calls == 1
    assert all(totals[kind].seconds > 0 for kind in r.COMPUTE_CLASSES + r.MEMORY_CLASSES)


def test_layers_with_packed_weights_count_the_same_work():
    from ldm.networks import onednn
    from ldm.networks.ops import Operations

    ops = Operations(dtype=torch.float32)
    conv, linear = ops.Conv2d(8, 16, 3, stride=2, padding=1), ops.Linear(16, 32)
    with torch.no_grad():
        for layer in (conv, linear):
            layer.weight.normal_()
            layer.bias.zero_()
            layer.set_packed(onednn.pack_weight(layer, layer.weight))
    x = torch.randn(2, 8, 16, 16)
    with torch.inference_mode():
        totals = r.breakdown(r.profile_call(lambda: linear(conv(x).flatten(2).transpose(1, 2)), CPU),
                             element_size=4, device_time=False)
    assert totals[r.CONVOLUTION].calls == 1 and totals[r.LINEAR].calls == 1
    assert totals[r.CONVOLUTION].flops == 2 * 2 * 16 * 8 * 8 * 8 * 9
    assert totals[r.LINEAR].flops == 2 * (2 * 64) * 32 * 16


def _quick_results() -> dict:
    peaks = r.measure_peaks(CPU, r.PeakSizes(matmul=64, conv=(1, 8, 8), bandwidth_elements=1 << 14, repeats=1))
    block, x = _Block().eval(), torch.randn(2, 8, 16, 16)
    with torch.inference_mode():
        found = r.profile_sides({"weft": lambda: block(x), "diffusers": lambda: block(x)}, CPU, element_size=4,
                                rounds=2)
    sides = {name: r.side_report(totals, peaks, "float32", seconds) for name, (totals, seconds) in found.items()}
    environment = {"date": "2026-01-01 00:00", "cpu": "Test CPU", "torch": "2", "diffusers": "0.4", "threads": 2,
                   "load_average_at_start": (1.0, 1.0, 1.0), "load_average_at_end": (1.0, 1.0, 1.0)}
    return {"device": "roofline-cpu", "environment": environment, "peaks": peaks, "sides": sides,
            "setting": {"family": "sd15", "size": 64, "dtype": "float32"}}


def test_peaks_are_positive_and_the_table_has_both_sides(tmp_path):
    results = _quick_results()
    peaks = results["peaks"]
    assert peaks["matmul"]["float32"] > 0 and peaks["conv"]["bfloat16"] > 0 and peaks["bandwidth"]["best"] > 0
    weft = results["sides"]["weft"]["classes"]
    assert abs(sum(c["share"] for c in weft.values()) - 1.0) < 1e-9
    conv = weft[r.CONVOLUTION]
    assert conv["achieved"] == conv["flops"] / conv["seconds"] and conv["peak"] == peaks["conv"]["float32"]
    assert weft[r.ELEMENTWISE]["peak"] == peaks["bandwidth"]["best"]
    text = r.table(results)
    assert "| op class | Weft time | share | achieved | of peak | diffusers time |" in text
    for kind in r.CLASSES:
        assert f"| {kind} |" in text
    readme = tmp_path / "README.md"
    readme.write_text("# bench\n")
    replace_block(readme, "roofline-cpu", text, heading="### roofline-cpu")
    replace_block(readme, "roofline-cpu", text, heading="### roofline-cpu")
    content = readme.read_text()
    assert content.count("<!-- roofline-cpu -->") == 1 and content.count("### roofline-cpu") == 1
