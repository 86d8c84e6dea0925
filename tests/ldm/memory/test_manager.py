"""ldm.memory: partial loading computes what full loading does, LoRA on streamed layers equals LoRA on
resident ones, LRU unloading, and the manager forgetting collected models."""

from __future__ import annotations

import gc

import pytest
import torch

from ldm.memory import MemoryManager, MemoryOptions, Placement, VramMode, plan_load
from tests.ldm.memory.conftest import FakeDevice, patches_of, random_lora, tiny_unet_handle, unet_inputs

FP32 = Placement("cpu", torch.float32)
BF16_NHWC = Placement("cpu", torch.bfloat16, channels_last=True)
LORA_KEYS = ("input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight",
             "input_blocks.3.1.transformer_blocks.0.ff.net.0.proj.weight",
             "input_blocks.1.0.in_layers.2.weight",
             "output_blocks.2.0.skip_connection.weight",
             "out.2.weight")


def manager_with(capacity: int, mode: VramMode = VramMode.NORMAL, **options) -> MemoryManager:
    fake = FakeDevice(capacity)
    manager = MemoryManager(MemoryOptions(mode=mode, reserve_bytes=0, min_inference_bytes=0, **options),
                            free_memory=fake, empty_cache=lambda device: None)
    fake.manager = manager
    return manager


def run(manager, handle, placement, patches=None, inputs=None):
    x, t, context = inputs or unet_inputs(handle.config)
    with manager.use(handle.unet, placement, patches=patches) as entry:
        with torch.no_grad():
            out = handle.unet(x.to(placement.dtype), t, context.to(placement.dtype))
        return out, entry


@pytest.mark.parametrize("placement", [FP32, BF16_NHWC], ids=["fp32", "bf16-channels-last"])
def test_partial_loading_equals_full_loading_bitwise(placement):
    handle = tiny_unet_handle()
    full, entry = run(manager_with(10 ** 10), handle, placement)
    assert entry.fully_resident and entry.stream.fetches == 0
    total = entry.total_bytes
    entry.unload()

    part_manager = manager_with(total // 3)
    partial, entry = run(part_manager, handle, placement)
    assert 0 < entry.resident_bytes <= total // 3
    assert entry.streamed_units and entry.stream.fetches >= len(entry.streamed_units)
    assert torch.equal(partial, full)

    # The biggest layer is resident, and every streamed layer is too big for what budget is left.
    sizes = {u.name: entry.unit_bytes(u) for u in entry.units}
    assert entry.unit_named(max(sizes, key=sizes.get)).resident
    left = total // 3 - entry.resident_bytes
    assert all(sizes[name] > left for name in entry.streamed_units)
    entry.unload()

    nothing, entry = run(manager_with(10 ** 10, mode=VramMode.NONE), handle, placement)
    assert entry.resident_bytes == 0 and not any(u.resident for u in entry.units)
    assert torch.equal(nothing, full)


def test_stream_learns_the_forward_order():
    handle = tiny_unet_handle()
    manager = manager_with(10 ** 10, mode=VramMode.NONE)
    run(manager, handle, FP32)
    entry = manager.find(handle.unet)
    order = entry.stream.order
    assert order[0] == "time_embed.0" and order[-1] == "out.2"
    assert sorted(order) == sorted(entry.streamed_units)  # every streamed layer, once
    run(manager, handle, FP32)
    assert entry.stream.order == order
    # What gets prefetched after each layer (on CUDA): the next streamed one, wrapping to the next pass.
    stream = entry.stream
    assert [stream._next(name) for name in order[:3]] == order[1:4]
    assert stream._next(order[-1]) == order[0]
    skipped = entry.unit_named(order[1])
    skipped.resident = True  # a layer that became resident is skipped
    assert stream._next(order[0]) == order[2]
    skipped.resident = False
    entry.apply(plan_load(entry.sizes(), entry.unit_bytes(entry.unit_named(order[0]))))
    assert stream.order == []  # the streamed set changed: the order is learnt again


@pytest.mark.parametrize("placement", [FP32, BF16_NHWC], ids=["fp32", "bf16-channels-last"])
def test_lora_on_streamed_layers_equals_lora_on_resident_layers(placement):
    handle = tiny_unet_handle()
    adapters = random_lora(handle.unet, LORA_KEYS)
    patches = patches_of(adapters, 0.8)
    plain, entry = run(manager_with(10 ** 10), handle, placement)
    entry.unload()
    resident, entry = run(manager_with(10 ** 10), handle, placement, patches)
    assert entry.fully_resident
    entry.unload()
    streamed, entry = run(manager_with(10 ** 10, mode=VramMode.NONE), handle, placement, patches)
    assert not any(u.resident for u in entry.units)
    assert not torch.equal(resident, plain)  # the LoRA changes the output …
    assert torch.equal(streamed, resident)  # … identically whether its layers are resident or streamed
    entry.unload()
    mixed_manager = manager_with(entry.total_bytes // 2)
    mixed, entry = run(mixed_manager, handle, placement, patches)
    assert any(u.resident for u in entry.units) and entry.streamed_units
    assert torch.equal(mixed, resident)


def test_switching_lora_strength_repatches_only_what_changed():
    handle = tiny_unet_handle()
    manager = manager_with(10 ** 10)
    adapters = random_lora(handle.unet, LORA_KEYS)
    plain, _ = run(manager, handle, FP32)
    entry = manager.find(handle.unet)
    assert entry.repatched_keys == 0

    run(manager, handle, FP32, patches_of(adapters, 1.0))
    assert entry.repatched_keys == len(LORA_KEYS)
    changed = dict(patches_of(adapters, 1.0))
    changed[LORA_KEYS[0]] = patches_of(adapters, 0.3)[LORA_KEYS[0]]
    before = entry.repatched_keys
    with manager.use(handle.unet, FP32, patches=changed):
        pass
    assert entry.repatched_keys - before == 1  # one weight recomputed, nothing reloaded

    before = entry.repatched_keys
    back, _ = run(manager, handle, FP32)  # LoRA removed: the touched weights come back from the originals
    assert entry.repatched_keys - before == len(LORA_KEYS)
    assert torch.equal(back, plain)


def test_lora_switch_never_forces_a_full_reload_when_partial():
    handle = tiny_unet_handle()
    probe, entry = run(manager_with(10 ** 10), handle, FP32)
    total = entry.total_bytes
    entry.unload()
    manager = manager_with(total // 2)
    run(manager, handle, FP32)
    entry = manager.find(handle.unet)
    resident = {u.name for u in entry.units if u.resident}
    run(manager, handle, FP32, patches_of(random_lora(handle.unet, LORA_KEYS), 1.0))
    assert {u.name for u in entry.units if u.resident} == resident


def test_a_second_placement_starts_from_the_originals():
    handle = tiny_unet_handle()
    manager = manager_with(10 ** 10)
    run(manager, handle, BF16_NHWC)
    manager.unload_all()
    _, entry = run(manager, handle, FP32)
    assert all(t.dtype == torch.float16 for t in entry.originals.values())


def test_originals_are_never_written():
    handle = tiny_unet_handle()
    before = {k: v.clone() for k, v in handle.unet.state_dict().items()}
    manager = manager_with(10 ** 10)
    run(manager, handle, BF16_NHWC, patches_of(random_lora(handle.unet, LORA_KEYS), 1.0))
    manager.unload_all()
    after = handle.unet.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].dtype == before[k].dtype for k in before)
    assert manager.loaded_models() == []


def test_least_recently_used_model_gives_up_layers_first():
    a, b = tiny_unet_handle(seed=1), tiny_unet_handle(seed=2)
    _, probe = run(manager_with(10 ** 10), a, FP32)
    size = probe.total_bytes
    probe.unload()

    manager = manager_with(int(size * 1.5))
    run(manager, a, FP32)
    run(manager, b, FP32)
    entry_a, entry_b = manager.find(a.unet), manager.find(b.unet)
    assert entry_b.fully_resident
    assert 0 < entry_a.resident_bytes < size  # partially unloaded, not dropped
    assert [e.name for e in manager.loaded_models()] == [entry_b.name, entry_a.name]
    assert manager.loaded_models()[0] is entry_b

    run(manager, a, FP32)  # a back in front; b now gives up what a needs
    assert manager.find(a.unet).fully_resident and not manager.find(b.unet).fully_resident


def test_without_smart_memory_models_leave_after_use():
    handle = tiny_unet_handle()
    manager = manager_with(10 ** 10, smart_memory=False)
    _, entry = run(manager, handle, FP32)
    assert entry.resident_bytes == 0 and not any(u.resident for u in entry.units)


def test_low_vram_caps_resident_weights():
    handle = tiny_unet_handle()
    manager = manager_with(10 ** 10, mode=VramMode.LOW, low_vram_weights=100_000)
    out, entry = run(manager, handle, FP32)
    assert 0 < entry.resident_bytes <= 100_000 and entry.streamed_units


def test_manager_forgets_collected_models():
    manager = manager_with(10 ** 10)
    handle = tiny_unet_handle()
    run(manager, handle, FP32)
    assert len(manager.loaded_models()) == 1
    del handle
    gc.collect()
    assert manager.loaded_models() == [] and manager.resident_bytes() == 0


def test_changing_placement_reloads_and_in_use_models_cannot_move():
    handle = tiny_unet_handle()
    manager = manager_with(10 ** 10)
    with manager.use(handle.unet, FP32):
        with pytest.raises(RuntimeError, match="in use"):
            manager.load(handle.unet, BF16_NHWC)
    _, entry = run(manager, handle, BF16_NHWC)
    weight = handle.unet.input_blocks[0][0].weight
    assert weight.dtype == torch.bfloat16 and weight.is_contiguous(memory_format=torch.channels_last)
    assert len(manager.loaded_models()) == 1


def test_low_vram_bounds_the_weights_of_all_models_together():
    a, b = tiny_unet_handle(seed=1), tiny_unet_handle(seed=2)
    _, probe = run(manager_with(10 ** 10), a, FP32)
    size = probe.total_bytes
    probe.unload()
    budget = int(size * 0.6)
    manager = manager_with(10 ** 10, mode=VramMode.LOW, low_vram_weights=budget)
    run(manager, a, FP32)
    assert manager.find(a.unet).resident_bytes <= budget
    run(manager, b, FP32)  # b takes its share; a gives up what would exceed the total
    assert manager.resident_bytes() <= budget
    assert manager.find(b.unet).resident_bytes > 0
