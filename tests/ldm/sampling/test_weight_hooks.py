"""ldm.sampling.weight_hooks and the guidance layer's handling of hooked, scheduled and default
conditioning entries, on a one-layer network whose output depends on its weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ldm.lora import patches as lora
from ldm.sampling import weight_hooks as wh
from ldm.sampling.guidance import CFGGuider, GuidedModel, calc_cond_batch, prepare_sides
from ldm.sampling.model_sampling import model_sampling
from ldm.sampling.sample import sample_with_sigmas
from ldm.sampling.schedulers import calculate_sigmas


class TinyNet(nn.Module):
    """x0 = x/2 + proj(mean of the text tokens), broadcast over the latent; counts its calls."""

    def __init__(self, seed: int = 0):
        super().__init__()
        self.proj = nn.Linear(8, 4)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(4, 8, generator=generator))
            self.proj.bias.copy_(torch.randn(4, generator=generator))
        self.calls: list[int] = []

    def apply_model(self, x, sigma, c):
        self.calls.append(x.shape[0])
        with torch.no_grad():
            shift = self.proj(c["c_crossattn"].mean(dim=1))
        return x * 0.5 + shift[:, :, None, None]


def tiny_lora(seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"lora_unet_proj.lora_up.weight": torch.randn(4, 2, generator=generator),
            "lora_unet_proj.lora_down.weight": torch.randn(2, 8, generator=generator),
            "lora_unet_proj.alpha": torch.tensor(2.0)}


def guided(net: TinyNet) -> GuidedModel:
    return GuidedModel(apply_model=net.apply_model, sampling=model_sampling(), diffusion_model=net)


def text(value: float, hooks=None, **extras) -> list:
    cond = torch.full((1, 3, 8), value)
    return [[cond, {**extras, **({"hooks": hooks} if hooks is not None else {})}]]


def lora_patches(net: TinyNet, lora_sd, strength: float) -> dict:
    adapters, _ = lora.load_lora(lora_sd, lora.unet_key_map(net.state_dict()))
    return lora.add_patches({}, adapters, strength)


def evaluate(net, positive, negative, cfg, sigma=2.0):
    x = torch.linspace(-1, 1, 2 * 4 * 4 * 4).reshape(2, 4, 4, 4)
    denoiser = CFGGuider(guided(net), positive, negative, cfg).prepare(x.shape)
    return denoiser(x, torch.full((2,), sigma))


def test_hooked_lora_on_both_sides_equals_the_lora_on_the_model():
    net = TinyNet()
    hooks = wh.lora_hook(tiny_lora(), strength_model=0.7, strength_clip=1.0)
    hooked = evaluate(net, text(1.0, hooks), text(-1.0, hooks), cfg=4.0)
    plain = evaluate(net, text(1.0), text(-1.0), cfg=4.0)
    with lora.patched(net, lora_patches(net, tiny_lora(), 0.7)):
        reference = evaluate(net, text(1.0), text(-1.0), cfg=4.0)
    assert torch.equal(hooked, reference)
    assert not torch.allclose(hooked, plain, atol=1e-3)


def test_a_hook_on_the_positive_only_patches_only_its_prediction():
    net = TinyNet()
    hooks = wh.lora_hook(tiny_lora(), 1.0, 1.0)
    x = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([1.5])
    model = guided(net)
    positive, negative = prepare_sides(model, (("positive", text(1.0, hooks)), ("negative", text(-1.0))), x.shape)
    net.calls.clear()
    cond, uncond = calc_cond_batch(model, [positive, negative], x, sigma)
    assert net.calls == [1, 1]  # different hooks never share a model call
    plain_pos, plain_neg = prepare_sides(model, (("positive", text(1.0)), ("negative", text(-1.0))), x.shape)
    net.calls.clear()
    base_cond, base_uncond = calc_cond_batch(model, [plain_pos, plain_neg], x, sigma)
    assert net.calls == [2]
    with lora.patched(net, lora_patches(net, tiny_lora(), 1.0)):
        lora_cond, _ = calc_cond_batch(model, [plain_pos, plain_neg], x, sigma)
    # Batches of 1 against batches of 2: equal up to the matmul's summation order.
    torch.testing.assert_close(uncond, base_uncond, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(cond, lora_cond, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(cond, base_cond, atol=1e-3)


def test_sampling_leaves_the_weights_bit_identical():
    net = TinyNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    hooks = wh.lora_hook(tiny_lora(), 1.3, 1.0).combine(
        wh.model_as_lora_hook({"proj.weight": torch.zeros(4, 8)}, None, 0.5, 0.0))
    sigmas = calculate_sigmas(model_sampling(), "normal", 4)
    noise = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(2))
    sample_with_sigmas(CFGGuider(guided(net), text(1.0, hooks), text(-1.0), 5.0), "euler", sigmas, noise,
                       torch.zeros(1, 4, 4, 4))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_model_as_lora_moves_weights_towards_the_target():
    net = TinyNet()
    target = TinyNet(seed=5)
    hooks = wh.model_as_lora_hook(target.state_dict(), None, 0.25, 1.0)
    hooked = evaluate(net, text(1.0, hooks), text(-1.0, hooks), cfg=2.0)
    by_hand = TinyNet()
    with torch.no_grad():
        for name, value in by_hand.state_dict().items():
            value.copy_(value + 0.25 * (target.state_dict()[name] - value))
    torch.testing.assert_close(hooked, evaluate(by_hand, text(1.0), text(-1.0), cfg=2.0), rtol=1e-6, atol=1e-6)


def test_keyframe_strength_zero_from_half_way_equals_two_passes_by_hand():
    net = TinyNet()
    keyframes = wh.HookKeyframes().add(wh.HookKeyframe(1.0, 0.0)).add(wh.HookKeyframe(0.0, 0.5))
    hooks = wh.lora_hook(tiny_lora(), 1.0, 1.0).with_keyframes(keyframes)
    sampling = model_sampling()
    sigmas = calculate_sigmas(sampling, "karras", 6)
    noise = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(3))
    latent = torch.zeros(1, 4, 4, 4)
    scheduled = sample_with_sigmas(CFGGuider(guided(net), text(1.0, hooks), text(-1.0, hooks), 3.0), "euler",
                                   sigmas, noise, latent)
    # The keyframe switches at the first step whose sigma is at or below the 50 % sigma.
    switch = next(i for i, s in enumerate(sigmas) if bool(sampling.percent_to_sigma(0.5) >= s))
    assert 0 < switch < len(sigmas) - 1
    with lora.patched(net, lora_patches(net, tiny_lora(), 1.0)):
        first = sample_with_sigmas(CFGGuider(guided(net), text(1.0), text(-1.0), 3.0), "euler",
                                   sigmas[:switch + 1], noise, latent)
    by_hand = sample_with_sigmas(CFGGuider(guided(net), text(1.0), text(-1.0), 3.0), "euler", sigmas[switch:],
                                 torch.zeros_like(noise), first)
    assert torch.equal(scheduled, by_hand)
    unscheduled = sample_with_sigmas(CFGGuider(guided(net), text(1.0), text(-1.0), 3.0), "euler", sigmas, noise,
                                     latent)
    assert not torch.allclose(scheduled, unscheduled, atol=1e-3)


def test_keyframe_cursor_honours_guaranteed_steps():
    sampling = model_sampling()
    frames = (wh.HookKeyframes().add(wh.HookKeyframe(1.0, 0.0)).add(wh.HookKeyframe(0.5, 0.1, guarantee_steps=3))
              .add(wh.HookKeyframe(0.2, 0.2)))
    cursor = wh.KeyframeCursor(frames, sampling)
    sigmas = [sampling.percent_to_sigma(p) for p in (0.0001, 0.3, 0.35, 0.4, 0.45, 0.5)]
    top = torch.tensor(sigmas[0])
    seen = []
    for sigma in sigmas:
        cursor.advance(torch.tensor(sigma), top)
        cursor.advance(torch.tensor(sigma), top)  # a second call at the same sigma changes nothing
        seen.append(cursor.strength)
    # At 30 % both later keyframes have started, but the 10 % one guarantees 3 steps first.
    assert seen == [1.0, 0.5, 0.5, 0.5, 0.2, 0.2]
    late = wh.KeyframeCursor(frames, sampling)  # a run that starts after 10 %: no guarantee
    late.advance(torch.tensor(sigmas[1]), torch.tensor(sigmas[1]))
    assert late.strength == 0.2


def test_default_entries_fill_what_the_others_leave():
    net = TinyNet()
    model = guided(net)
    mask = torch.zeros(1, 4, 4)
    mask[:, :, :2] = 1.0
    masked = text(1.0, mask=mask, mask_strength=1.0)
    default = text(-2.0, default=True)
    x = torch.zeros(1, 4, 4, 4)
    sigma = torch.tensor([1.0])
    [side] = prepare_sides(model, (("positive", masked + default),), x.shape)
    [out] = calc_cond_batch(model, [side], x, sigma)
    [only_masked] = calc_cond_batch(model, [prepare_sides(model, (("positive", masked),), x.shape)[0]], x, sigma)
    [only_default] = calc_cond_batch(model, [prepare_sides(model, (("positive", text(-2.0)),), x.shape)[0]], x, sigma)
    torch.testing.assert_close(out[..., :2], only_masked[..., :2])
    torch.testing.assert_close(out[..., 2:], only_default[..., 2:])
    # Nothing left: a full-strength cond over the whole latent keeps the default out.
    [covered] = prepare_sides(model, (("positive", text(1.0) + default),), x.shape)
    [full] = calc_cond_batch(model, [covered], x, sigma)
    torch.testing.assert_close(full, calc_cond_batch(model, [prepare_sides(model, (("positive", text(1.0)),),
                                                                           x.shape)[0]], x, sigma)[0])


def test_clip_ranges_narrow_the_entry_timestep_range():
    model = guided(TinyNet())
    [side] = prepare_sides(model, (("positive", text(1.0, clip_start_percent=0.5, clip_end_percent=1.0,
                                                      start_percent=0.2, end_percent=0.8)),), (1, 4, 4, 4))
    sampling = model.sampling
    assert side[0].sigma_start == sampling.percent_to_sigma(0.5)
    assert side[0].sigma_end == sampling.percent_to_sigma(0.8)


def comfy_weights(start, end, length, method):
    """ComfyUI's InterpolationMethod.get_weights (numpy over a float32 linspace), as the oracle."""
    index = torch.linspace(0, 1, length).numpy()
    diff = end - start
    if method == "linear":
        return torch.linspace(start, end, length).numpy()
    if method == "ease_in":
        return diff * np.power(index, 2) + start
    if method == "ease_out":
        return diff * (1 - np.power(1 - index, 2)) + start
    return diff * ((1 - np.cos(index * np.pi)) / 2) + start


@pytest.mark.parametrize("method", wh.INTERPOLATIONS)
def test_interpolations_follow_comfyui(method):
    np.testing.assert_allclose(wh.interpolated(0.2, 1.7, 7, method), comfy_weights(0.2, 1.7, 7, method),
                               rtol=1e-6, atol=1e-7)


def test_keyframes_over_range_guarantee_only_the_first():
    frames = wh.keyframes_over_range(None, [1.0, 0.5, 0.0], 0.2, 0.6).keyframes
    assert [k.guarantee_steps for k in frames] == [1, 0, 0]
    assert [k.strength for k in frames] == [1.0, 0.5, 0.0]
    assert [k.start_percent for k in frames] == pytest.approx([0.2, 0.4, 0.6])


def test_clip_schedule_splits_at_strength_changes():
    plain = wh.WeightHook()
    frames = (wh.HookKeyframes().add(wh.HookKeyframe(1.0, 0.0)).add(wh.HookKeyframe(1.0, 0.3))
              .add(wh.HookKeyframe(0.4, 0.5)))
    scheduled = wh.WeightHook(keyframes=frames)
    schedule = wh.clip_schedule(wh.HookGroup((plain, scheduled)))
    assert [r for r, _ in schedule] == [(0.0, 0.5), (0.5, 1.0)]
    assert [[kf for _, kf in chosen] for _, chosen in schedule] == [[None, frames.keyframes[0]],
                                                                     [None, frames.keyframes[2]]]


def test_groups_keep_one_hook_per_ref_and_combine_all():
    hook = wh.lora_hook(tiny_lora(), 1.0, 1.0)
    rescheduled = hook.with_keyframes(wh.HookKeyframes().add(wh.HookKeyframe(0.5)))
    assert len(hook.combine(rescheduled)) == 1 and hook.combine(rescheduled) == hook
    other = wh.lora_hook(tiny_lora(2), 1.0, 1.0)
    assert len(wh.combine_all([hook, None, other])) == 2
    assert wh.combine_all([None, None]) is None and wh.combine_all([None, hook]) is hook
    assert math.isclose(rescheduled.hooks[0].keyframes.keyframes[0].strength, 0.5)
