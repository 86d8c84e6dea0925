"""ldm.memory.plan: budgets, resident sets and streaming order, unloading — from sizes alone."""

from __future__ import annotations

from ldm.memory.options import GIB, MIB, MemoryOptions, VramMode
from ldm.memory.plan import (LoadedSize, UnitSize, plan_load, plan_unload, resident_budget, resident_cap,
                             unet_inference_bytes)

UNITS = [UnitSize("conv_in", 10, 0), UnitSize("big_a", 100, 1), UnitSize("small", 5, 2),
         UnitSize("big_b", 100, 3), UnitSize("mid", 40, 4), UnitSize("out", 10, 5)]


def test_everything_resident_when_the_budget_covers_the_model():
    plan = plan_load(UNITS, 265)
    assert plan.full and plan.resident_bytes == 265 and plan.streamed == ()


def test_largest_units_resident_first_and_the_rest_streamed_in_forward_order():
    plan = plan_load(UNITS, 210)
    # 100 + 100 fit, 40 does not (240), then 10, 5 … still fit up to 210: conv_in (earlier) before out.
    assert plan.resident == {"big_a", "big_b", "conv_in"}
    assert plan.streamed == ("small", "mid", "out")
    assert plan.resident_bytes == 210 and plan.streamed_bytes == 55


def test_a_unit_too_big_is_skipped_and_smaller_ones_still_fill_the_budget():
    plan = plan_load(UNITS, 60)
    # big_a, big_b (100) never fit; mid 40, conv_in 10, out 10 make 60; small (5) would exceed it.
    assert plan.resident == {"mid", "conv_in", "out"} and plan.resident_bytes == 60
    assert plan.streamed == ("big_a", "small", "big_b")


def test_zero_budget_streams_everything_but_unstreamable_units():
    units = UNITS + [UnitSize("plain_torch_layer", 7, 6, streamable=False)]
    plan = plan_load(units, 0)
    assert plan.resident == {"plain_torch_layer"}
    assert plan.streamed == ("conv_in", "big_a", "small", "big_b", "mid", "out")


def test_budget_by_mode():
    free, model = 8 * GIB, 5 * GIB
    def budget(mode, **kw):
        return resident_budget(MemoryOptions(mode=mode, reserve_bytes=400 * MIB, **kw), device_is_cpu=False,
                               free_bytes=free, model_bytes=model, already_resident=0, inference_bytes=GIB)
    usable = free - GIB - 400 * MIB - 800 * MIB
    assert budget(VramMode.NORMAL) == usable
    assert budget(VramMode.HIGH) == model and budget(VramMode.GPU_ONLY) == model
    assert budget(VramMode.LOW) == GIB
    assert budget(VramMode.LOW, low_vram_weights=256 * MIB) == 256 * MIB
    assert budget(VramMode.NONE) == 0
    # What the model already holds is available to it.
    assert resident_budget(MemoryOptions(reserve_bytes=0), device_is_cpu=False, free_bytes=0,
                           model_bytes=model, already_resident=2 * GIB, inference_bytes=0) == 2 * GIB - 800 * MIB
    # Never negative.
    assert resident_budget(MemoryOptions(), device_is_cpu=False, free_bytes=100, model_bytes=model,
                           already_resident=0, inference_bytes=GIB) == 0
    # A CPU keeps its RAM reserve instead of the GPU reserves.
    assert resident_budget(MemoryOptions(mode=VramMode.CPU), device_is_cpu=True, free_bytes=free,
                           model_bytes=model, already_resident=0, inference_bytes=0) == free - GIB


def test_cap_says_how_much_room_is_worth_making():
    options = MemoryOptions(mode=VramMode.LOW, low_vram_weights=GIB)
    assert resident_cap(options, device_is_cpu=False, model_bytes=5 * GIB) == GIB
    assert resident_cap(options, device_is_cpu=False, model_bytes=GIB // 2) == GIB // 2
    assert resident_cap(MemoryOptions(mode=VramMode.NONE), device_is_cpu=False, model_bytes=GIB) == 0
    assert resident_cap(MemoryOptions(), device_is_cpu=False, model_bytes=5 * GIB) == 5 * GIB


def test_unload_least_recently_used_partially_before_fully():
    lru = [LoadedSize(0, 300), LoadedSize(1, 500, in_use=True), LoadedSize(2, 400)]
    steps = plan_unload(lru, 200, smart=True)
    assert [(s.key, s.bytes, s.full) for s in steps] == [(0, 200, False)]
    steps = plan_unload(lru, 500, smart=True)  # the first goes whole, the next unused one gives the rest
    assert [(s.key, s.bytes, s.full) for s in steps] == [(0, 300, True), (2, 200, False)]
    steps = plan_unload(lru, 200, smart=False)  # without smart memory whole models go
    assert [(s.key, s.bytes, s.full) for s in steps] == [(0, 300, True)]
    assert plan_unload(lru, 0, smart=True) == []
    assert all(s.key != 1 for s in plan_unload(lru, 10 ** 9, smart=True))  # in use: untouched


def test_inference_estimate_grows_with_area_batch_and_dtype():
    sd15 = unet_inference_bytes((1, 4, 64, 64), 2)
    assert sd15 == int(2 * 64 * 64 * 2 * 0.01 * MIB)  # CFG doubles the batch: about 164 MiB
    assert abs(unet_inference_bytes((2, 4, 64, 64), 2) - 2 * sd15) <= 1
    assert abs(unet_inference_bytes((1, 4, 128, 128), 2, 0.8) - 4 * 0.8 * sd15) <= 4
