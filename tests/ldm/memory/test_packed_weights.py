"""Conv and linear weights packed for oneDNN on the CPU (ldm.networks.onednn): the same numbers as
the plain layers, one device copy per weight, repacked when LoRA patches change, dropped on unload,
and used by the engine only where it applies."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.memory import MemoryManager, MemoryOptions, Placement, VramMode
from ldm.networks import onednn
from ldm.networks.ops import Operations
from tests.ldm.memory.conftest import FakeDevice, patches_of, random_lora, tiny_unet_handle, unet_inputs

PLAIN_FP32 = Placement("cpu", torch.float32)
PACKED_FP32 = Placement("cpu", torch.float32, pack_weights=True)
PLAIN_BF16 = Placement("cpu", torch.bfloat16, channels_last=True)
PACKED_BF16 = Placement("cpu", torch.bfloat16, channels_last=True, pack_weights=True)
CONV_KEY = "input_blocks.1.0.in_layers.2.weight"  # a 3×3 ResBlock convolution
LINEAR_KEY = "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"  # no bias
FF_KEY = "input_blocks.1.1.transformer_blocks.0.ff.net.0.proj.weight"  # with bias


def test_this_build_packs_convolutions():
    # CI's PyTorch wheels are built with oneDNN; without it every other test here would be vacuous.
    assert onednn.packing_works(torch.float32) and onednn.packing_works(torch.bfloat16)
    assert not onednn.packing_works(torch.float16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("shape", [(2, 16, 8, 8), (1, 16, 5, 7)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_packed_convolution_computes_what_conv2d_does(dtype, stride, shape, channels_last):
    g = torch.Generator().manual_seed(0)
    layer = Operations(dtype=dtype).Conv2d(16, 24, 3, stride=stride, padding=1)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.1)
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=g))
    x = torch.randn(shape, generator=g).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = F.conv2d(x, layer.weight, layer.bias, stride=stride, padding=1)
        layer.set_packed(onednn.pack_weight(layer, layer.weight))
        got = layer(x)
    assert got.shape == expected.shape and got.dtype == dtype
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-2, "atol": 1e-2}
    torch.testing.assert_close(got, expected, **tolerance)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 16), (2, 7, 16)])
def test_packed_linear_computes_what_f_linear_does(dtype, bias, shape):
    g = torch.Generator().manual_seed(2)
    layer = Operations(dtype=dtype).Linear(16, 24, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.1)
        if bias:
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=g))
    x = torch.randn(shape, generator=g).to(dtype)
    with torch.no_grad():
        expected = F.linear(x, layer.weight, layer.bias)
        layer.set_packed(onednn.pack_weight(layer, layer.weight))
        got = layer(x)
        strided = layer(torch.randn((*shape[:-1], 32), generator=g).to(dtype)[..., ::2])
    assert got.shape == expected.shape and strided.shape == expected.shape and got.dtype == dtype
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-2, "atol": 1e-2}
    torch.testing.assert_close(got, expected, **tolerance)


def test_inputs_the_packed_kernel_cannot_take_get_the_same_numbers_the_plain_way():
    g = torch.Generator().manual_seed(1)
    layer = Operations(dtype=torch.float32).Conv2d(8, 8, 3, padding=1)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.1)
        layer.bias.zero_()
        packed = onednn.pack_weight(layer, layer.weight)
    x = torch.randn(1, 8, 6, 6, generator=g)
    expected = F.conv2d(x, layer.weight.detach(), layer.bias.detach(), padding=1)
    layer.set_packed(packed)
    x.requires_grad_(True)  # a call that records gradients: computed by F.conv2d, gradient flows
    out = layer(x)
    out.sum().backward()
    torch.testing.assert_close(out.detach(), expected, rtol=1e-5, atol=1e-5)
    assert x.grad is not None and x.grad.abs().sum() > 0
    with torch.no_grad():  # an input in another dtype than the packed weight
        other = layer(x.detach().double())
    assert other.dtype == torch.float64
    torch.testing.assert_close(other.float(), expected, rtol=1e-5, atol=1e-5)


def test_pointwise_and_non_zero_padded_convolutions_are_not_packed():
    ops = Operations(dtype=torch.float32)
    assert onednn.packable(ops.Conv2d(8, 8, 3, padding=1))
    assert onednn.packable(ops.Conv2d(8, 8, 3, stride=2, padding=1))
    assert not onednn.packable(ops.Conv2d(8, 8, 1))  # oneDNN runs these faster as plain GEMMs
    reflect = torch.nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect")
    assert not onednn.packable(reflect)
    assert onednn.packable(ops.Linear(8, 8))


def manager_with(capacity: int = 10 ** 10, mode: VramMode = VramMode.NORMAL) -> MemoryManager:
    fake = FakeDevice(capacity)
    manager = MemoryManager(MemoryOptions(mode=mode, reserve_bytes=0, min_inference_bytes=0),
                            free_memory=fake, empty_cache=lambda device: None)
    fake.manager = manager
    return manager


def run(manager, handle, placement, patches=None):
    x, t, context = unet_inputs(handle.config)
    with manager.use(handle.unet, placement, patches=patches) as entry:
        with torch.no_grad():
            out = handle.unet(x.to(placement.dtype), t, context.to(placement.dtype))
        return out.float(), entry


def test_a_resident_convolution_keeps_one_copy_the_packed_one():
    handle = tiny_unet_handle()
    _, plain = run(manager_with(), handle, PLAIN_BF16)
    plain_bytes = plain.total_bytes
    plain.unload()
    _, entry = run(manager_with(), handle, PACKED_BF16)
    packed_keys = set(entry.packed_keys)
    assert {CONV_KEY, LINEAR_KEY, FF_KEY, "input_blocks.0.0.weight"} <= packed_keys
    assert "output_blocks.2.0.skip_connection.weight" not in packed_keys  # a 1×1 convolution stays plain
    layer = entry.layer_unit(handle.unet.get_submodule(CONV_KEY.rsplit(".", 1)[0])).layer
    assert layer.packed_weight is not None and layer.packed_weight.dtype == torch.bfloat16
    assert layer.weight is entry.originals[CONV_KEY]  # the stored fp16 tensor, no second bf16 copy
    assert entry.total_bytes == plain_bytes  # the packed copy is counted where the plain one was
    entry.unload()
    assert layer.packed_weight is None and layer.weight is entry.originals[CONV_KEY]


@pytest.mark.parametrize(("plain", "packed", "tolerance"), [
    (PLAIN_FP32, PACKED_FP32, 1e-5), (PLAIN_BF16, PACKED_BF16, 2e-2)], ids=["fp32", "bf16"])
def test_a_packed_unet_computes_what_the_plain_one_does(plain, packed, tolerance):
    handle = tiny_unet_handle()
    reference, entry = run(manager_with(), handle, plain)
    entry.unload()
    ours, entry = run(manager_with(), handle, packed)
    assert entry.packed_keys
    assert ((ours - reference).norm() / reference.norm()).item() <= tolerance


def test_lora_on_a_packed_convolution_is_repacked_when_the_patches_change():
    handle = tiny_unet_handle()
    adapters = random_lora(handle.unet, (CONV_KEY, "input_blocks.0.0.weight", LINEAR_KEY, FF_KEY))
    reference_manager = manager_with()
    expected_plain, entry = run(reference_manager, handle, PLAIN_FP32)
    expected_lora, _ = run(reference_manager, handle, PLAIN_FP32, patches_of(adapters, 0.8))
    entry.unload()

    manager = manager_with()
    plain, entry = run(manager, handle, PACKED_FP32)
    lora, _ = run(manager, handle, PACKED_FP32, patches_of(adapters, 0.8))
    assert entry.repatched_keys == 4
    back, _ = run(manager, handle, PACKED_FP32)
    torch.testing.assert_close(plain, expected_plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lora, expected_lora, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(back, expected_plain, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(lora, plain, rtol=1e-3, atol=1e-3)


def test_streamed_convolutions_are_not_packed_and_compute_the_same():
    handle = tiny_unet_handle()
    full, entry = run(manager_with(), handle, PACKED_FP32)
    total = entry.total_bytes
    entry.unload()
    partial, entry = run(manager_with(total // 3), handle, PACKED_FP32)
    assert entry.streamed_units
    for unit in entry.units:
        if unit.keys[0].rsplit(".", 1)[0] + ".weight" in entry.packed_keys:
            assert (unit.layer.packed_weight is not None) == unit.resident
    torch.testing.assert_close(partial, full, rtol=1e-5, atol=1e-5)


def test_the_engine_packs_only_on_the_cpu_in_bf16_or_fp32_without_compile():
    bf16 = detect_compute("cpu", force_dtype=torch.bfloat16)
    engine = Engine(bf16, MemoryOptions(mode=VramMode.CPU))
    handle = tiny_unet_handle()
    assert engine.unet_placement(handle.unet).pack_weights
    assert not engine.unet_placement(handle.unet, compiled=True).pack_weights
    assert not Engine(replace(bf16, pack_weights=False)).unet_placement(handle.unet).pack_weights
    fp16 = detect_compute("cpu", force_dtype=torch.float16)
    assert not Engine(fp16).unet_placement(handle.unet).pack_weights
    fp32_storage = Engine(replace(bf16, weight_dtype=torch.float32))  # weights cast per call: not packed
    assert not fp32_storage.unet_placement(handle.unet).pack_weights
    assert not engine.unet_placement(handle.unet, compute_dtype=torch.float32).pack_weights
    compiled = Engine(bf16, compile_mode="default")
    assert not compiled.unet_placement(handle.unet).pack_weights
    with engine.use_unet(handle) as unet:
        x, t, context = unet_inputs(handle.config)
        out = unet(x, t, context=context)
        assert unet.module.input_blocks[0][0].packed_weight is not None
    assert out.dtype == torch.float32 and out.is_contiguous()


def test_weight_patches_written_for_a_call_reach_a_packed_convolution_and_are_undone():
    # Hook keyframes and ComfyUI's patch_model write patches into the live weights for a block
    # (ldm.lora.patches.patched); a packed layer is patched by packing the patched values.
    from ldm.lora import patches as lora

    handle = tiny_unet_handle()
    adapters = random_lora(handle.unet, (CONV_KEY, FF_KEY))
    manager = manager_with()
    x, t, context = unet_inputs(handle.config)
    expected, entry = run(manager_with(), handle, PLAIN_FP32, patches_of(adapters, 1.0))
    entry.unload()
    with manager.use(handle.unet, PACKED_FP32) as entry, torch.no_grad():
        layer = handle.unet.get_submodule(CONV_KEY.rsplit(".", 1)[0])
        packed = layer.packed_weight
        plain = handle.unet(x, t, context)
        with lora.patched(handle.unet, patches_of(adapters, 1.0)):
            assert layer.packed_weight is not packed
            patched = handle.unet(x, t, context)
        assert layer.packed_weight is packed and layer.weight is entry.originals[CONV_KEY]
        again = handle.unet(x, t, context)
    torch.testing.assert_close(patched, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again, plain, rtol=0, atol=0)
    assert not torch.allclose(patched, plain, rtol=1e-3, atol=1e-3)


def test_a_weight_replaced_from_outside_is_the_one_computed_with():
    # ComfyUI's comfy.utils.set_attr_param puts a new Parameter on the layer; the packed copy of the
    # old one must not shadow it.
    layer = Operations(dtype=torch.float32).Conv2d(4, 4, 3, padding=1)
    with torch.no_grad():
        layer.weight.normal_()
        layer.bias.zero_()
        own = layer.weight
        layer.set_packed(onednn.pack_weight(layer, own * 2))  # packed values differ, to tell them apart
        replacement = torch.randn(layer.weight.shape)
        layer.weight = torch.nn.Parameter(replacement, requires_grad=False)
        x = torch.randn(1, 4, 6, 6)
        torch.testing.assert_close(layer(x), F.conv2d(x, replacement, layer.bias, padding=1))
        layer.weight = own  # the parameter put back: the packed copy counts again
        torch.testing.assert_close(layer(x), F.conv2d(x, own * 2, layer.bias, padding=1))


def test_layers_whose_forward_reads_weight_itself_are_not_packed():
    # ComfyUI's manual_cast layers (facade.comfy.ops) and packs' subclasses compute from ``weight``;
    # packing it away would leave them the stored, unpatched tensor.
    from torch import nn

    from ldm.networks.ops import Linear

    class OwnForward(Linear):
        def forward(self, x):
            return F.linear(x, self.weight, self.bias)

    model = nn.Sequential(Operations(dtype=torch.float32).Linear(4, 4), OwnForward(4, 4))
    for layer in model:
        with torch.no_grad():
            layer.weight.normal_()
            layer.bias.zero_()
    with manager_with().use(model, PACKED_FP32) as entry:
        assert entry.packed_keys == {"0.weight"}
        assert model[0].packed_weight is not None and model[1].packed_weight is None
