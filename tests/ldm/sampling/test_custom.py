"""ldm.sampling.custom: NOISE / SAMPLER / GUIDER values and the custom-sampling run."""

from __future__ import annotations

import pytest
import torch

from ldm.sampling.custom import CFGGuidance, DisabledNoise, RandomNoise, SamplerChoice, sample_custom
from ldm.sampling.guidance import GuidedModel
from ldm.sampling.model_sampling import model_sampling
from ldm.sampling.noise import prepare_noise
from ldm.sampling.schedulers import calculate_sigmas

COND = [[torch.ones(1, 77, 8), {}]]


def test_noise_values():
    latent = {"samples": torch.zeros(3, 4, 4, 4), "batch_index": [4, 1, 1]}
    assert torch.equal(RandomNoise(9).generate_noise(latent), prepare_noise(latent["samples"], 9, [4, 1, 1]))
    assert RandomNoise(9).seed == 9 and DisabledNoise().seed == 0
    assert not DisabledNoise(5).generate_noise(latent).any()


def test_sampler_choice_checks_the_name():
    assert SamplerChoice("dpmpp_2m").name == "dpmpp_2m"
    with pytest.raises(ValueError, match="unknown sampler"):
        SamplerChoice("euler_cfg_pp_unknown")


def test_sample_custom_returns_output_and_last_x0(toy):
    scale = 0.5
    guided = GuidedModel(apply_model=lambda x, sigma, c: toy.denoiser(x, sigma),
                         sampling=model_sampling(), process_latent_in=lambda v: v * scale,
                         process_latent_out=lambda v: v / scale)
    guider = CFGGuidance(model=None, positive=COND).build(guided)
    sigmas = calculate_sigmas(guided.sampling, "karras", 4)
    latent = {"samples": torch.zeros(1, 4, 8, 8), "batch_index": [0]}
    steps, seen = [], []
    out, denoised = sample_custom(guider, SamplerChoice("euler_ancestral"), sigmas,
                                  RandomNoise(1).generate_noise(latent), latent, 1,
                                  callback=lambda info: (steps.append(info["i"]), seen.append(info["denoised"])))
    assert steps == [0, 1, 2, 3] and out["batch_index"] == [0]
    torch.testing.assert_close(denoised["samples"], seen[-1] / scale)
    # stopping above sigma 0 (a high-sigma split), the output keeps noise and the x0 estimate does not
    noisy, estimate = sample_custom(guider, SamplerChoice("euler"), sigmas[:3], torch.zeros(1, 4, 8, 8), latent, 1)
    assert float((noisy["samples"] - estimate["samples"]).abs().max()) > 0.01
    nothing = sample_custom(guider, SamplerChoice("euler"), torch.zeros(0), torch.zeros(1, 4, 8, 8), latent, 0)
    assert nothing[0] is nothing[1] and torch.equal(nothing[0]["samples"], latent["samples"])
