"""ldm.sampling.dual_cfg: DualCFGGuider's regular and nested combinations."""

from __future__ import annotations

import pytest
import torch

from ldm.sampling.dual_cfg import DualCFGGuider
from ldm.sampling.guidance import GuidedModel
from ldm.sampling.model_sampling import model_sampling


class ConstantPerPrompt:
    """x0 = the prompt's embedding value everywhere; records the batch of each call."""

    def __init__(self):
        self.batches = []

    def __call__(self, x, sigma, c):
        self.batches.append(x.shape[0])
        value = c["c_crossattn"][:, 0, 0].reshape(-1, 1, 1, 1)
        return value.expand_as(x).clone()


def cond(value):
    return [[torch.full((1, 4, 8), float(value)), {}]]


def guider(model, cfg_conds, cfg_cond2_negative, nested=False):
    guided = GuidedModel(apply_model=model, sampling=model_sampling())
    return DualCFGGuider(guided, cond(3.0), cond(2.0), cond(-1.0), cfg_conds, cfg_cond2_negative, nested)


def denoise(g):
    x = torch.zeros(1, 4, 4, 4)
    return g.prepare(x.shape).__call__(x, torch.tensor([1.0]))


@pytest.mark.parametrize("cfg1, cfg2", [(4.0, 6.0), (1.0, 3.0), (2.5, 1.0)])
def test_regular(cfg1, cfg2):
    a, b, n = 3.0, 2.0, -1.0
    out = denoise(guider(ConstantPerPrompt(), cfg1, cfg2))
    expected = n + (b - n) * cfg2 + (a - b) * cfg1
    torch.testing.assert_close(out, torch.full_like(out, expected))


def test_nested():
    a, b, n = 3.0, 2.0, -1.0
    out = denoise(guider(ConstantPerPrompt(), 4.0, 6.0, nested=True))
    expected = n + 6.0 * ((b + (a - b) * 4.0) - n)
    torch.testing.assert_close(out, torch.full_like(out, expected))


def test_cfg1_skips_prompts_that_do_not_matter():
    model = ConstantPerPrompt()
    denoise(guider(model, 4.0, 6.0))
    assert model.batches == [3]  # negative, cond2 and cond1 in one call
    model.batches.clear()
    out = denoise(guider(model, 4.0, 1.0))  # negative drops out
    assert model.batches == [2] and torch.allclose(out, torch.full_like(out, 2.0 + 4.0))
    model.batches.clear()
    out = denoise(guider(model, 1.0, 1.0))  # only cond1 is left
    assert model.batches == [1] and torch.allclose(out, torch.full_like(out, 3.0))
