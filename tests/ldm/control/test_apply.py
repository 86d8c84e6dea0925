"""ldm.control.apply and its use by guidance: strength, start/end percent, chains, batching, image size."""

from __future__ import annotations

import torch
from torch import nn

from ldm.control.apply import (AppliedControl, ControlModel, attach, broadcast_to_batch, lend_in_place,
                               merge_residuals, prepare_control)
from ldm.sampling.guidance import CFGGuider, GuidedModel
from ldm.sampling.model_sampling import model_sampling_for_family


class RecordingNetwork(nn.Module):
    """A stand-in ControlNet: residuals = ``value`` everywhere, shaped like x; records its inputs."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value
        self.calls: list[dict] = []

    def forward(self, x, hint, timesteps, context=None, y=None, **extra):
        self.calls.append({"x": x, "hint": hint, "timesteps": timesteps, "context": context, **extra})
        return {"output": [torch.full_like(x, self.value), None], "middle": [torch.full_like(x, 2 * self.value)]}


def _control(value: float, strength: float = 1.0, percent=(0.0, 1.0), previous=None, image=None):
    network = RecordingNetwork(value)
    image = image if image is not None else torch.rand(1, 16, 16, 3)
    return attach(ControlModel(kind="controlnet", network=network), image, strength, percent, previous=previous)


SAMPLING = model_sampling_for_family("sd1", "eps")


def test_merge_scales_own_residuals_and_adds_the_previous_ones():
    own = {"output": [torch.ones(1, 2, 2, 2), None], "middle": [torch.full((1, 2, 2, 2), 3.0)]}
    previous = {"input": [torch.ones(1)], "output": [torch.full((1, 2, 2, 2), 10.0), torch.full((1, 2, 2, 2), 5.0)],
                "middle": [None]}
    merged = merge_residuals(own, 0.5, previous)
    assert torch.equal(merged["output"][0], torch.full((1, 2, 2, 2), 10.5))
    assert torch.equal(merged["output"][1], torch.full((1, 2, 2, 2), 5.0))  # own None: the previous passes
    assert torch.equal(merged["middle"][0], torch.full((1, 2, 2, 2), 1.5))
    assert torch.equal(merged["input"][0], torch.ones(1))


def test_global_average_pooling_replaces_each_residual_by_its_mean():
    residual = torch.arange(8.0).reshape(1, 2, 2, 2)
    pooled = merge_residuals({"output": [residual]}, 1.0, None, average_pool=True)["output"][0]
    assert torch.equal(pooled[0, 0], torch.full((2, 2), 1.5)) and torch.equal(pooled[0, 1], torch.full((2, 2), 5.5))


def test_hint_batch_is_repeated_per_cond_uncond_chunk():
    hint = torch.arange(2.0).reshape(2, 1, 1, 1)
    out = broadcast_to_batch(hint, 4, 2)
    assert out.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    assert broadcast_to_batch(hint[:1], 4, 2).shape[0] == 1  # one image broadcasts by itself


def test_run_resizes_the_image_to_the_latent_and_applies_strength_and_the_chain():
    first = _control(1.0, strength=2.0)
    second = _control(10.0, strength=0.5, previous=first, image=torch.rand(2, 40, 24, 3))
    run = prepare_control(second, SAMPLING, None, {})
    x = torch.randn(2, 4, 6, 5)
    sigma = torch.full((2,), 1.0)
    residuals = run.residuals(x, sigma, {"c_crossattn": torch.zeros(2, 3, 8)}, 1, lend_in_place)
    assert torch.equal(residuals["output"][0], torch.full_like(x, 2.0 * 1 + 0.5 * 10))
    assert torch.equal(residuals["middle"][0], torch.full_like(x, 2.0 * 2 + 0.5 * 20))
    call = second.model.network.calls[0]
    assert call["hint"].shape == (2, 3, 48, 40)  # latent size x 8, centre-cropped to its aspect
    assert torch.allclose(call["x"], SAMPLING.calculate_input(sigma, x))
    assert torch.equal(call["timesteps"], SAMPLING.timestep(sigma).float())


def test_outside_its_percent_range_a_control_gives_only_the_earlier_ones():
    early = _control(1.0, percent=(0.0, 1.0))
    late = _control(10.0, percent=(0.5, 1.0), previous=early)
    run = prepare_control(late, SAMPLING, None, {})
    x = torch.zeros(1, 4, 4, 4)
    start_sigma = SAMPLING.percent_to_sigma(0.5)
    before = run.residuals(x, torch.tensor([start_sigma * 1.5]), {}, 1, lend_in_place)
    after = run.residuals(x, torch.tensor([start_sigma * 0.5]), {}, 1, lend_in_place)
    assert torch.equal(before["output"][0], torch.full_like(x, 1.0))
    assert torch.equal(after["output"][0], torch.full_like(x, 11.0))
    assert len(late.model.network.calls) == 1


class RecordingApply:
    def __init__(self):
        self.calls = []

    def __call__(self, x, sigma, c):
        self.calls.append({"batch": x.shape[0], "control": c.get("control")})
        return torch.zeros_like(x)


def _guided(apply):
    return GuidedModel(apply_model=apply, sampling=SAMPLING)


def test_cond_and_uncond_sharing_a_control_run_in_one_call_with_one_controlnet_pass():
    control = _control(1.0)
    positive = [[torch.zeros(1, 3, 8), {"control": control}]]
    negative = [[torch.ones(1, 3, 8), {"control": control}]]
    apply = RecordingApply()
    denoiser = CFGGuider(_guided(apply), positive, negative, 5.0).prepare(torch.Size([1, 4, 4, 4]))
    denoiser(torch.zeros(1, 4, 4, 4), torch.tensor([1.0]))
    assert [call["batch"] for call in apply.calls] == [2]
    assert apply.calls[0]["control"] is not None
    assert len(control.model.network.calls) == 1 and control.model.network.calls[0]["x"].shape[0] == 2


def test_entries_with_different_controls_or_none_are_not_batched_together():
    control = _control(1.0)
    positive = [[torch.zeros(1, 3, 8), {"control": control}]]
    negative = [[torch.ones(1, 3, 8), {}]]
    apply = RecordingApply()
    denoiser = CFGGuider(_guided(apply), positive, negative, 5.0).prepare(torch.Size([1, 4, 4, 4]))
    denoiser(torch.zeros(1, 4, 4, 4), torch.tensor([1.0]))
    assert sorted(call["control"] is None for call in apply.calls) == [False, True]


def test_the_old_apply_node_lends_its_control_to_the_uncond_side():
    control = _control(1.0)
    positive = [[torch.zeros(1, 3, 8), {"control": control, "control_apply_to_uncond": True}]]
    negative = [[torch.ones(1, 3, 8), {}]]
    apply = RecordingApply()
    denoiser = CFGGuider(_guided(apply), positive, negative, 5.0).prepare(torch.Size([1, 4, 4, 4]))
    denoiser(torch.zeros(1, 4, 4, 4), torch.tensor([1.0]))
    assert [call["batch"] for call in apply.calls] == [2]  # both sides carry the same control now


def test_applied_controls_compare_by_identity():
    model = ControlModel(kind="controlnet", network=RecordingNetwork(1.0))
    image = torch.zeros(1, 8, 8, 3)
    assert attach(model, image, 1.0) != attach(model, image, 1.0)
    assert isinstance(attach(model, image, 1.0), AppliedControl)


def test_controlnets_attend_to_the_controlnet_text_when_conditioning_has_one():
    control = _control(1.0)
    own_text = torch.full((1, 3, 8), 7.0)
    positive = [[torch.zeros(1, 3, 8), {"control": control, "cross_attn_controlnet": own_text}]]
    negative = [[torch.ones(1, 3, 8), {"control": control}]]
    denoiser = CFGGuider(_guided(RecordingApply()), positive, negative, 5.0).prepare(torch.Size([1, 4, 4, 4]))
    denoiser(torch.zeros(1, 4, 4, 4), torch.tensor([1.0]))
    contexts = [call["context"] for call in control.model.network.calls]
    assert len(contexts) == 2  # different model inputs: not one batch
    assert any(torch.equal(c, own_text) for c in contexts)
    assert any(torch.equal(c, torch.ones(1, 3, 8)) for c in contexts)
