import pytest
import torch

from ldm.sampling.hooks import SamplingHooks
from ldm.sampling.guidance import CFGGuider, GuidedModel, InpaintDenoiser, prepare_denoise_mask
from ldm.sampling.model_sampling import model_sampling

SHAPE = torch.Size([1, 4, 16, 16])


class ValueModel:
    """apply_model whose x0 prediction is, per batch item, the first number of its text cond;
    it records every call's input shape, sigma and context."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, sigma, c):
        self.calls.append({"shape": tuple(x.shape), "sigma": sigma.clone(), "context": c["c_crossattn"]})
        value = c["c_crossattn"][:, 0, 0].reshape(-1, 1, 1, 1)
        return value.expand_as(x).clone()


def text(value, tokens=77, dim=8):
    return torch.full((1, tokens, dim), float(value))


@pytest.fixture
def value_model():
    return ValueModel()


def guided(apply_model, **options):
    return GuidedModel(apply_model=apply_model, sampling=model_sampling(), hooks=SamplingHooks.from_model_options(options))


def run_once(model, positive, negative, cfg, sigma=1.0, x=None):
    denoiser = CFGGuider(model, positive, negative, cfg).prepare(SHAPE)
    x = torch.zeros(SHAPE) if x is None else x
    return denoiser(x, torch.tensor([sigma]))


def test_cfg_one_skips_the_uncond_pass(value_model):
    out = run_once(guided(value_model), [[text(2), {}]], [[text(-1), {}]], cfg=1.0)
    assert len(value_model.calls) == 1 and value_model.calls[0]["shape"][0] == 1
    assert torch.all(out == 2)


def test_cfg_one_optimisation_can_be_disabled(value_model):
    run_once(guided(value_model, disable_cfg1_optimization=True), [[text(2), {}]], [[text(-1), {}]], cfg=1.0)
    assert [c["shape"][0] for c in value_model.calls] == [2]


def test_cond_and_uncond_run_as_one_batch(value_model):
    out = run_once(guided(value_model), [[text(2), {}]], [[text(-1), {}]], cfg=7.5)
    assert len(value_model.calls) == 1 and value_model.calls[0]["shape"] == (2, 4, 16, 16)
    torch.testing.assert_close(out, torch.full(SHAPE, -1 + (2 - -1) * 7.5))


def test_different_token_lengths_batch_by_repetition(value_model):
    run_once(guided(value_model), [[text(2, tokens=154), {}]], [[text(-1, tokens=77), {}]], cfg=3.0)
    assert len(value_model.calls) == 1
    context = value_model.calls[0]["context"]
    assert context.shape == (2, 154, 8)
    assert torch.all(context[1] == -1)  # the 77-token cond repeated twice


def test_token_lengths_too_far_apart_run_separately(value_model):
    out = run_once(guided(value_model), [[text(2, tokens=77), {}]], [[text(-1, tokens=100), {}]], cfg=3.0)
    assert sorted(c["context"].shape[1] for c in value_model.calls) == [77, 100]
    torch.testing.assert_close(out, torch.full(SHAPE, -1 + 3 * 3.0))


def expected_area_weights(h, w, top, left, size):
    """ComfyUI's weight map of an area without mask: a linear ramp over min(8, size // 4)
    pixels along each edge that is inside the image."""
    weights = torch.zeros(h, w)
    ramp = min(8, size // 4)
    block = torch.ones(size, size)
    for t in range(ramp):
        f = (t + 1) / ramp
        if top != 0:
            block[t, :] *= f
        if top + size < h:
            block[size - 1 - t, :] *= f
        if left != 0:
            block[:, t] *= f
        if left + size < w:
            block[:, size - 1 - t] *= f
    weights[top:top + size, left:left + size] = block
    return weights


def test_area_conds_blend_with_feathered_weights(value_model):
    positive = [[text(1), {}], [text(3), {"area": (8, 8, 4, 4), "strength": 1.0}]]
    out = run_once(guided(value_model), positive, [[text(0), {}]], cfg=1.0)
    w = expected_area_weights(16, 16, 4, 4, 8)
    expected = (1 + 3 * w) / (1 + w)
    torch.testing.assert_close(out[0, 0], expected, atol=1e-6, rtol=0)
    # The area entry ran on its 8×8 crop, the full one on 16×16.
    assert sorted(c["shape"][2:] for c in value_model.calls) == [(8, 8), (16, 16)]


def test_area_strength_weights_the_blend(value_model):
    positive = [[text(1), {}], [text(3), {"area": (16, 8, 0, 0), "strength": 0.5}]]
    out = run_once(guided(value_model), positive, [[text(0), {}]], cfg=1.0)
    w_full = torch.zeros(16, 16)
    w_full[:, :8] = 0.5
    for t in range(2):  # ramp of min(8, 8 // 4) = 2 columns at the inner (right) edge
        w_full[:, 7 - t] *= (t + 1) / 2
    torch.testing.assert_close(out[0, 0], (1 + 3 * w_full) / (1 + w_full), atol=1e-6, rtol=0)


def test_negative_gets_a_matching_area_for_cfg(value_model):
    positive = [[text(1), {}], [text(3), {"area": (8, 8, 0, 0)}]]
    out = run_once(guided(value_model), positive, [[text(0), {}]], cfg=2.0)
    # Uncond side: the full entry plus a copy of it over the positive's area, both predicting 0.
    shapes = sorted((c["shape"][0], c["shape"][2:]) for c in value_model.calls)
    assert shapes == [(2, (8, 8)), (2, (16, 16))]  # area pair batched, full pair batched
    w = expected_area_weights(16, 16, 0, 0, 8)
    torch.testing.assert_close(out[0, 0], 2 * (1 + 3 * w) / (1 + w), atol=1e-6, rtol=0)


def test_mask_conds_weight_by_mask_strength(value_model):
    mask = torch.zeros(16, 16)
    mask[:, :8] = 1.0
    positive = [[text(1), {}], [text(3), {"mask": mask, "mask_strength": 0.5, "strength": 2.0}]]
    out = run_once(guided(value_model), positive, [[text(0), {}]], cfg=1.0)
    w = mask * 0.5 * 2.0
    torch.testing.assert_close(out[0, 0], (1 + 3 * w) / (1 + w), atol=1e-6, rtol=0)


def test_masks_are_resized_to_the_latent(value_model):
    mask = torch.zeros(1, 128, 128)
    mask[:, :, :64] = 1.0  # an image-sized mask, as from LoadImage
    positive = [[text(1), {}], [text(3), {"mask": mask}]]
    out = run_once(guided(value_model), positive, [[text(0), {}]], cfg=1.0)
    assert torch.allclose(out[0, 0, :, :7], torch.full((16, 7), 2.0))
    assert torch.allclose(out[0, 0, :, 9:], torch.full((16, 7), 1.0))


def test_set_area_to_bounds_evaluates_only_the_masks_box(value_model):
    mask = torch.zeros(16, 16)
    mask[2:12, 5:15] = 1.0
    positive = [[text(3), {"mask": mask, "set_area_to_bounds": True}]]
    out = run_once(guided(value_model), positive, [[text(0), {}]], cfg=1.0)
    assert value_model.calls[0]["shape"][2:] == (10, 10)
    assert torch.all(out[0, 0][mask.bool()] == 3)


def test_timestep_ranges_switch_conds_at_the_right_sigma(value_model):
    model = guided(value_model)
    positive = [[text(1), {"start_percent": 0.0, "end_percent": 0.5}],
                [text(5), {"start_percent": 0.5, "end_percent": 1.0}]]
    denoiser = CFGGuider(model, positive, [[text(0), {}]], 1.0).prepare(SHAPE)
    switch = model.sampling.percent_to_sigma(0.5)
    x = torch.zeros(SHAPE)
    assert torch.all(denoiser(x, torch.tensor([switch * 1.01])) == 1)
    assert torch.all(denoiser(x, torch.tensor([switch * 0.99])) == 5)
    # At exactly the switching sigma both are active and average.
    assert torch.allclose(denoiser(x, torch.tensor([switch])), torch.full(SHAPE, 3.0))


def test_cfg_hooks_are_called_in_order(value_model):
    seen = []

    def pre(args):
        seen.append(("pre", float(args["conds_out"][0].mean()), float(args["conds_out"][1].mean())))
        return [args["conds_out"][0] + 1, args["conds_out"][1]]

    def cfg_function(args):
        seen.append(("cfg", args["cond_scale"]))
        return args["cond"]  # result = input - cond = the cond prediction, ignoring the scale

    def post(args):
        seen.append(("post", float(args["denoised"].mean()), float(args["uncond_denoised"].mean())))
        return args["denoised"] * 10

    model = guided(value_model, sampler_pre_cfg_function=[pre], sampler_cfg_function=cfg_function,
                   sampler_post_cfg_function=[post])
    out = run_once(model, [[text(2), {}]], [[text(-1), {}]], cfg=4.0)
    assert seen == [("pre", 2.0, -1.0), ("cfg", 4.0), ("post", 3.0, -1.0)]
    assert torch.all(out == 30)


def test_rescale_cfg_style_post_hook_sees_what_it_needs(value_model):
    def rescale(args):  # RescaleCFG-like: std-match the cfg result to the cond prediction
        denoised, cond = args["denoised"], args["cond_denoised"]
        return denoised * (cond.std() / denoised.std()) if denoised.std() > 0 else denoised

    model = guided(value_model, sampler_post_cfg_function=[rescale])
    out = run_once(model, [[text(2), {}]], [[text(-1), {}]], cfg=5.0)
    assert torch.all(out == 14)  # constant field: std 0, left unchanged


def test_inpaint_denoiser_keeps_the_unmasked_latent():
    latent = torch.full((1, 4, 8, 8), 2.0)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 4, 8, 8)
    mask[..., :4] = 1.0
    seen = {}

    def inner(x, sigma):
        seen["x"] = x
        return torch.zeros_like(x)

    out = InpaintDenoiser(inner, latent, noise, mask)(torch.full((1, 4, 8, 8), 9.0), torch.tensor([3.0]))
    torch.testing.assert_close(seen["x"][..., 4:], (latent + 3.0 * noise)[..., 4:])
    assert torch.all(seen["x"][..., :4] == 9.0)
    assert torch.all(out[..., :4] == 0) and torch.all(out[..., 4:] == 2.0)


def test_prepare_denoise_mask_resizes_broadcasts_and_keeps_soft_values():
    # Not rounded (current ComfyUI): DifferentialDiffusion reads a soft mask's gradient.
    mask = torch.full((1, 64, 64), 0.3)
    mask[:, :, :30] = 1.0
    prepared = prepare_denoise_mask(mask, torch.Size([2, 4, 8, 8]))
    assert prepared.shape == (2, 4, 8, 8)
    assert torch.all(prepared[..., :3] == 1)
    torch.testing.assert_close(prepared[..., 4:], torch.full((2, 4, 8, 4), 0.3))
