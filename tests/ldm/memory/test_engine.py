"""ldm.engine: the UNet made ready for a run (dtype, device, LoRA, OOM retry), the VAE and text
encoders through the manager, and the text-encode cache."""

from __future__ import annotations

import pytest
import torch

from ldm.devices import detect_compute
from ldm.engine import Engine, EngineOutOfMemory
from ldm.lora import patches as lora
from ldm.memory import MemoryManager, MemoryOptions, VramMode
from ldm.model import build_vae
from ldm.text import build_clip, tiny_text_state_dict
from ldm.tiny import tiny_vae_state_dict
from tests.ldm.memory.conftest import FakeDevice, patches_of, random_lora, tiny_unet_handle, unet_inputs

FP32 = detect_compute("cpu", force_dtype=torch.float32)


def cpu_engine(compute=FP32, **options) -> Engine:
    return Engine(compute, MemoryOptions(mode=VramMode.CPU, **options))


def test_default_engine_on_a_cpu_uses_cpu_mode_and_keeps_intermediates_on_the_cpu():
    engine = Engine(FP32)
    assert engine.options.mode is VramMode.CPU
    assert engine.intermediate_device == torch.device("cpu")
    stats = engine.device_stats()
    assert stats[0]["type"] == "cpu" and {"vram_total", "vram_free", "torch_vram_total"} <= set(stats[0])


def test_use_unet_runs_in_the_compute_dtype_and_returns_in_the_callers():
    handle = tiny_unet_handle()
    x, t, context = unet_inputs(handle.config)
    bf16 = detect_compute("cpu", force_dtype=torch.bfloat16)
    with cpu_engine(bf16).use_unet(handle) as unet:
        out = unet(x, t, context=context)
        conv = unet.module.input_blocks[0][0]  # a 3×3 conv: its one bf16 copy is the oneDNN-packed one
        assert conv.packed_weight is not None and conv.packed_weight.dtype == torch.bfloat16
        norm = unet.module.out[0]  # a GroupNorm: a plain bf16 copy
        assert norm.weight.dtype == torch.bfloat16
    assert out.dtype == torch.float32 and out.is_contiguous()
    with torch.no_grad():
        reference = handle.unet(x.bfloat16(), t, context.bfloat16()).float()
    torch.testing.assert_close(out, reference, atol=0.05, rtol=0.05)


def test_use_unet_applies_lora_like_the_lora_module():
    handle = tiny_unet_handle()
    keys = [k for k in handle.unet.state_dict() if k.endswith("to_k.weight") or k.endswith("in_layers.2.weight")]
    patched_handle = handle.clone()
    patched_handle.patches = patches_of(random_lora(handle.unet, keys), 0.7)
    x, t, context = unet_inputs(handle.config)
    engine = cpu_engine()
    with engine.use_unet(patched_handle) as unet:
        ours = unet(x, t, context=context)
    with engine.use_unet(handle) as unet:  # the clone without LoRA sees the original weights
        plain = unet(x, t, context=context)
    engine.unload_all()
    with torch.no_grad(), lora.patched(handle.unet, patched_handle.patches):
        reference = handle.unet(x, t, context)
    torch.testing.assert_close(ours, reference, atol=2e-3, rtol=2e-3)  # fp16 vs fp32 rounding of W + dW
    with torch.no_grad():
        torch.testing.assert_close(plain, handle.unet(x, t, context))


def test_out_of_memory_unloads_halves_the_resident_part_and_retries_once(monkeypatch):
    handle = tiny_unet_handle()
    fake = FakeDevice(10 ** 10)
    manager = MemoryManager(MemoryOptions(mode=VramMode.NORMAL, reserve_bytes=0, min_inference_bytes=0),
                            free_memory=fake, empty_cache=lambda device: None)
    fake.manager = manager
    engine = Engine(FP32, manager=manager)
    x, t, context = unet_inputs(handle.config)
    real_forward = handle.unet.forward
    calls = []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(handle.unet, "forward", failing_once)
    with engine.use_unet(handle) as unet:
        full = manager.find(handle.unet).total_bytes
        out = unet(x, t, context=context)
        entry = manager.find(handle.unet)
        assert len(calls) == 2 and 0 < entry.resident_bytes <= full // 2
    monkeypatch.setattr(handle.unet, "forward", real_forward)
    with torch.no_grad():
        assert torch.equal(out, handle.unet(x, t, context))


def test_a_second_out_of_memory_fails_the_job_with_advice(monkeypatch):
    handle = tiny_unet_handle()
    engine = cpu_engine()

    def always(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(handle.unet, "forward", always)
    x, t, context = unet_inputs(handle.config)
    with engine.use_unet(handle) as unet:
        with pytest.raises(EngineOutOfMemory, match="--lowvram"):
            unet(x, t, context=context)
    monkeypatch.setattr(handle.unet, "forward", lambda *a, **k: (_ for _ in ()).throw(ValueError("bug")))
    with engine.use_unet(handle) as unet:
        with pytest.raises(ValueError, match="bug"):  # other errors pass through untouched
            unet(x, t, context=context)


def test_fp8_weights_stay_fp8_and_are_cast_per_layer():
    handle = tiny_unet_handle()
    x, t, context = unet_inputs(handle.config)
    engine = cpu_engine()
    with engine.use_unet(handle) as unet:
        reference = unet(x, t, context=context)
    engine.unload_all()
    fp8 = detect_compute("cpu", force_dtype=torch.float32)
    from dataclasses import replace
    fp8 = replace(fp8, weight_dtype=torch.float8_e4m3fn)
    engine = cpu_engine(fp8)
    with engine.use_unet(handle) as unet:
        assert unet.module.out[2].weight.dtype == torch.float8_e4m3fn
        out = unet(x, t, context=context)
    assert out.dtype == torch.float32
    assert (out - reference).abs().max() < 0.15 * reference.abs().max()


def test_compile_wraps_the_unet_once_per_model():
    handle = tiny_unet_handle()
    engine = Engine(FP32, MemoryOptions(mode=VramMode.CPU), compile_mode="default")
    first = engine._compiled_for(handle.unet)
    assert first is engine._compiled_for(handle.unet) and first is not handle.unet
    with pytest.raises(ValueError):
        Engine(FP32, compile_mode="fastest")


def test_use_vae_prepares_the_autoencoder_for_its_own_dtype():
    vae = build_vae({k: v.half() for k, v in tiny_vae_state_dict().items()},
                    compute=detect_compute("cpu", force_dtype=torch.bfloat16))
    latents = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    engine = cpu_engine()
    with engine.use_vae(vae, inference_bytes=10_000):
        conv = vae.model.decoder.conv_in.weight
        assert conv.dtype == torch.bfloat16 and conv.is_contiguous(memory_format=torch.channels_last)
        image = vae.decode(latents)
    engine.unload_all()
    assert vae.model.decoder.conv_in.weight.dtype == torch.float16  # originals back
    # The same bf16 values either way; NHWC and NCHW kernels round differently (a few bf16 ulps).
    torch.testing.assert_close(image, vae.decode(latents), atol=0.05, rtol=0)


def test_text_encodings_are_cached_by_model_layer_lora_and_tokens():
    clip = build_clip(tiny_text_state_dict("sd1"), "sd1")
    engine = cpu_engine()
    tokens = clip.tokenize("a photo of a cat")
    first = engine.encode_tokens(clip, tokens)
    again = engine.encode_tokens(clip, clip.tokenize("a photo of a cat"), add_dict={"width": 512})
    assert engine.text_cache.hits == 1 and engine.text_cache.misses == 1
    assert torch.equal(first[0][0], again[0][0]) and again[0][1]["width"] == 512
    direct = clip.encode_from_tokens_scheduled(tokens)
    assert torch.equal(first[0][0], direct[0][0])
    assert torch.equal(first[0][1]["pooled_output"], direct[0][1]["pooled_output"])
    first[0][0].add_(1.0)  # a node editing its output in place never corrupts the cache
    assert torch.equal(engine.encode_tokens(clip, tokens)[0][0], direct[0][0])

    skipped = clip.clone()
    skipped.set_last_layer(-2)
    engine.encode_tokens(skipped, tokens)
    key = next(k for k in clip.encoders.state_dict() if k.endswith("q_proj.weight"))
    with_lora = clip.clone()
    with_lora.patches = patches_of(random_lora(clip.encoders, [key]), 1.0)
    lora_cond = engine.encode_tokens(with_lora, tokens)[0][0]
    assert engine.text_cache.misses == 3
    assert not torch.equal(lora_cond, direct[0][0])
    engine.free_memory()
    assert len(engine.text_cache) == 0


def test_text_encoders_stay_on_the_cpu_in_low_vram_modes():
    engine = Engine(FP32, MemoryOptions(mode=VramMode.LOW))
    assert engine.text_placement().device == torch.device("cpu")


def test_attention_in_query_slices_equals_whole_attention():
    from ldm.networks.ops import attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 16, generator=g) for n in (50, 20, 20))
    whole = attention(q, k, v)
    per_row = 2 * 3 * 20 * 4
    torch.testing.assert_close(attention(q, k, v, max_score_bytes=7 * per_row), whole)
    torch.testing.assert_close(attention(q, k, v, max_score_bytes=1), whole)  # one row at a time
    assert torch.equal(attention(q, k, v, max_score_bytes=10 ** 9), whole)


def test_low_vram_engine_slices_attention_and_still_computes_the_same():
    handle = tiny_unet_handle()
    x, t, context = unet_inputs(handle.config)
    fake = FakeDevice(10 ** 10)
    manager = MemoryManager(MemoryOptions(mode=VramMode.LOW, reserve_bytes=0, min_inference_bytes=0),
                            free_memory=fake, empty_cache=lambda device: None)
    fake.manager = manager
    with Engine(FP32, manager=manager).use_unet(handle) as unet:
        sliced = unet(x, t, context=context)
        attn = unet.module.input_blocks[1][1].transformer_blocks[0].attn1
        assert attn.attention_slice_bytes is not None
    with cpu_engine().use_unet(handle) as unet:
        assert unet.module.input_blocks[1][1].transformer_blocks[0].attn1.attention_slice_bytes is None
        torch.testing.assert_close(sliced, unet(x, t, context=context))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_transformers_and_vae_attention_keep_the_input_layout(layout):
    from ldm.model import build_vae

    handle = tiny_unet_handle()
    x, t, context = unet_inputs(handle.config)
    seen = []
    block = handle.unet.input_blocks[1][1]
    hook = block.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.no_grad():
        handle.unet(x.contiguous(memory_format=layout), t, context)
    hook.remove()
    assert seen[0].is_contiguous(memory_format=layout)
    vae = build_vae(tiny_vae_state_dict(), compute=FP32)
    attn = vae.model.decoder.mid.attn_1
    h = torch.randn(1, attn.q.in_channels, 4, 4).contiguous(memory_format=layout)
    with torch.no_grad():
        assert attn(h).is_contiguous(memory_format=layout)
