"""ldm.patches.sag: attention scores, the Gaussian blur (torchvision as oracle) and the blur map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur as torchvision_blur

from ldm.patches.sag import SelfAttentionGuidance, attention_with_scores, blurred_where_attended, gaussian_blur
from ldm.sampling.guidance import CondEntry, GuidedModel
from ldm.sampling.model_conds import CrossAttnInput
from ldm.sampling.model_sampling import model_sampling_for_family


def test_attention_with_scores_matches_sdpa():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 16, 8, generator=g) for _ in range(3))
    out, scores = attention_with_scores(q, k, v, heads=2)
    split = [t.reshape(2, 16, 2, 4).transpose(1, 2) for t in (q, k, v)]
    want = F.scaled_dot_product_attention(*split).transpose(1, 2).reshape(2, 16, 8)
    torch.testing.assert_close(out, want)
    assert scores.shape == (4, 16, 16)
    torch.testing.assert_close(scores.sum(-1), torch.ones(4, 16))


def test_gaussian_blur_matches_torchvision():
    image = torch.randn(2, 4, 12, 10, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(gaussian_blur(image, 9, 2.0), torchvision_blur(image, [9, 9], [2.0, 2.0]))


def test_blur_lands_where_attention_gathers():
    x0 = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    scores = torch.zeros(2, 16, 16)  # 2 heads over a 4x4 map: every query attends to token 5
    scores[:, :, 5] = 1.0
    out = blurred_where_attended(x0, scores, sigma=2.0)
    blurred = gaussian_blur(x0, 9, 2.0)
    torch.testing.assert_close(out[..., 4:8, 4:8], blurred[..., 4:8, 4:8])  # token 5 = row 1, column 1
    outside = torch.ones(16, 16, dtype=torch.bool)
    outside[4:8, 4:8] = False
    torch.testing.assert_close(out[..., outside], x0[..., outside])


def stub_model(calls: list) -> GuidedModel:
    """A guided model whose network predicts x0 = x / 2 and records each call's inputs."""
    def apply_model(x, sigma, c):
        calls.append((x.clone(), sigma.clone(), c))
        return 0.5 * x

    return GuidedModel(apply_model=apply_model, sampling=model_sampling_for_family("sd1", "eps"))


def test_attention_keeps_the_negative_sides_scores():
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(4, 16, 8, generator=g) for _ in range(3))  # [pos x2, neg x2]
    sag = SelfAttentionGuidance(0.5, 2.0)
    out = sag.attention(q, k, v, {"n_heads": 2, "cond_or_uncond": [0, 1]})
    _, scores = attention_with_scores(q, k, v, heads=2)
    torch.testing.assert_close(sag._scores, scores[4:])  # batch items 2, 3 x 2 heads
    torch.testing.assert_close(out, attention_with_scores(q, k, v, 2)[0])
    sag.attention(q[:2], k[:2], v[:2], {"n_heads": 2, "cond_or_uncond": [0]})  # positive only: kept
    torch.testing.assert_close(sag._scores, scores[4:])


def test_post_cfg_guides_away_from_the_degraded_prediction():
    calls = []
    model = stub_model(calls)
    g = torch.Generator().manual_seed(4)
    x, uncond_x0, denoised = (torch.randn(1, 4, 16, 16, generator=g) for _ in range(3))
    sigma = torch.tensor([3.0])
    sag = SelfAttentionGuidance(0.7, 2.0)
    sag._scores = torch.zeros(2, 16, 16)
    sag._scores[:, :, 5] = 1.0
    uncond = [CondEntry(inputs={"c_crossattn": CrossAttnInput(torch.zeros(1, 7, 8))})]
    got = sag.post_cfg({"denoised": denoised, "uncond_denoised": uncond_x0, "uncond": uncond, "input": x,
                        "sigma": sigma, "model": model})
    degraded = blurred_where_attended(uncond_x0, sag._scores, 2.0)
    [(x_in, sigma_in, _)] = calls
    torch.testing.assert_close(x_in, degraded + x - uncond_x0)  # re-noised with the step's noise
    torch.testing.assert_close(got, denoised + (degraded - 0.5 * x_in) * 0.7)
