"""CFG++ samplers (ldm.sampling.samplers_cfgpp and the cfg_pp forms of samplers_multistep).

Two checks that do not restate the code: (1) without guidance (unconditional = guided
prediction) each CFG++ sampler is algebraically its plain sampler, so the outputs must agree;
(2) with guidance, Euler CFG++ through the real CFG path equals the paper's DDIM CFG++ update
written in variance-preserving coordinates (Chung et al. 2024, Algorithm 1)."""

import functools

import pytest
import torch

from ldm.sampling.guidance import CFGGuider, GuidedModel
from ldm.sampling.hooks import SamplingHooks
from ldm.sampling.model_sampling import model_sampling
from ldm.sampling.noise import StepNoiseSampler
from ldm.sampling.sample import sample_with_sigmas
from ldm.sampling.samplers import get_sampler
from ldm.sampling.samplers_cfgpp import sample_cfgpp_ud10_ab, sample_euler_cfg_pp_alternative
from ldm.sampling.schedulers import calculate_sigmas

PAIRS = [("euler_cfg_pp", "euler"), ("euler_ancestral_cfg_pp", "euler_ancestral"),
         ("dpmpp_2s_ancestral_cfg_pp", "dpmpp_2s_ancestral"), ("dpmpp_2m_cfg_pp", "dpmpp_2m"),
         ("res_multistep_cfg_pp", "res_multistep"), ("res_multistep_ancestral_cfg_pp", "res_multistep_ancestral"),
         ("gradient_estimation_cfg_pp", "gradient_estimation")]


def start(sigmas, shape=(1, 4, 8, 8)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(5)) * sigmas[0]


@pytest.mark.parametrize("cfg_pp,plain", PAIRS)
def test_without_guidance_cfg_pp_is_the_plain_sampler(cfg_pp, plain, toy, sd_sampling):
    sigmas = calculate_sigmas(sd_sampling, "karras", 8)
    x = start(sigmas)
    noise = get_sampler(plain).noise
    runs = []
    for name in (cfg_pp, plain):
        noise_sampler = StepNoiseSampler(x, 3) if noise else None
        runs.append(get_sampler(name).function(toy.denoiser, x, sigmas, noise_sampler=noise_sampler))
    torch.testing.assert_close(runs[0], runs[1], atol=2e-5, rtol=1e-5)
    # and the sampler moved: the output is near the data, not the start
    assert float(runs[0].std()) < 1.0 < float(x.std())


def test_alternative_euler_cfg_pp_without_guidance_is_euler(toy, sd_sampling):
    sigmas = calculate_sigmas(sd_sampling, "karras", 8)
    x = start(sigmas)
    torch.testing.assert_close(sample_euler_cfg_pp_alternative(toy.denoiser, x, sigmas),
                               get_sampler("euler").function(toy.denoiser, x, sigmas), atol=2e-5, rtol=1e-5)


def test_cfg_pp_needs_the_unconditional_prediction(sd_sampling):
    sigmas = calculate_sigmas(sd_sampling, "karras", 4)
    unguided = lambda x, sigma, **extra: torch.zeros_like(x)  # noqa: E731 (reports nothing)
    with pytest.raises(ValueError, match="unconditional prediction"):
        get_sampler("dpmpp_2m_cfg_pp").function(unguided, start(sigmas), sigmas)


class TwoValueModel:
    """apply_model predicting x0 = (first number of the text cond) + 0.1·x, per batch item."""

    def __init__(self):
        self.batches = []

    def __call__(self, x, sigma, c):
        self.batches.append(x.shape[0])
        return c["c_crossattn"][:, 0, 0].reshape(-1, 1, 1, 1) + 0.1 * x


def text(value):
    return [[torch.full((1, 77, 8), float(value)), {}]]


@pytest.mark.parametrize("cfg", [1.0, 2.5])
def test_euler_cfg_pp_is_the_papers_ddim_cfg_pp_update(cfg):
    sampling = model_sampling()
    unet = TwoValueModel()
    guided = GuidedModel(apply_model=unet, sampling=sampling, hooks=SamplingHooks())
    sigmas = calculate_sigmas(sampling, "karras", 6)[1:]  # start below sigma_max: x = noise·sigma
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    out = sample_with_sigmas(CFGGuider(guided, text(2.0), text(-1.0), cfg), "euler_cfg_pp", sigmas, noise,
                             torch.zeros(1, 4, 8, 8))
    # The unconditional side runs even at cfg 1 (cond and uncond in one batch of 2).
    assert unet.batches == [2] * (len(sigmas) - 1)

    # Algorithm 1 of the paper in VP coordinates: x_vp = sqrt(ab)·x0 + sqrt(1-ab)·eps,
    # x_vp' = sqrt(ab')·x0_guided + sqrt(1-ab')·eps_uncond, with ab = 1/(1+sigma²).
    x_vp = noise * sigmas[0] / (1 + sigmas[0] ** 2).sqrt()
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        ab, ab_next = 1 / (1 + sigma ** 2), 1 / (1 + sigma_next ** 2)
        x = x_vp / ab.sqrt()  # the network sees the VE state
        x0_cond, x0_uncond = 2.0 + 0.1 * x, -1.0 + 0.1 * x
        x0_guided = x0_uncond + cfg * (x0_cond - x0_uncond)
        eps_uncond = (x_vp - ab.sqrt() * x0_uncond) / (1 - ab).sqrt()
        x_vp = ab_next.sqrt() * x0_guided + (1 - ab_next).sqrt() * eps_uncond
    torch.testing.assert_close(out, x_vp / (1 / (1 + sigmas[-1] ** 2)).sqrt(), atol=1e-4, rtol=1e-5)


def test_plain_euler_skips_the_unconditional_side_at_cfg_one():
    unet = TwoValueModel()
    guided = GuidedModel(apply_model=unet, sampling=model_sampling(), hooks=SamplingHooks())
    sigmas = calculate_sigmas(guided.sampling, "karras", 4)[1:]
    sample_with_sigmas(CFGGuider(guided, text(2.0), text(-1.0), 1.0), "euler", sigmas, torch.zeros(1, 4, 8, 8),
                       torch.zeros(1, 4, 8, 8))
    assert unet.batches == [1] * (len(sigmas) - 1)


def test_ud10_ab_without_its_additions_is_euler_cfg_pp(toy, sd_sampling):
    sigmas = calculate_sigmas(sd_sampling, "karras", 8)
    x = start(sigmas)
    bare = functools.partial(sample_cfgpp_ud10_ab, history_weight=0.0, uncond_history_weight=0.0, zero_weight=0.0)
    torch.testing.assert_close(bare(toy.denoiser, x, sigmas),
                               get_sampler("euler_cfg_pp").function(toy.denoiser, x, sigmas), atol=1e-5, rtol=1e-5)
    # With them the result differs.
    full = get_sampler("cfgpp_ud10_ab").function(toy.denoiser, x, sigmas)
    assert not torch.allclose(full, bare(toy.denoiser, x, sigmas))


def test_ud10_ab_lands_exactly_on_a_constant_prediction(sd_sampling):
    # D(x, sigma) = c makes the ODE path x(sigma) = c + (x0 - c)·sigma/sigma_0: Euler and AB2 are
    # exact on it and the x0 extrapolation to sigma 0 is c, so the output must be c.
    sigmas = calculate_sigmas(sd_sampling, "karras", 7)
    constant = torch.full((1, 4, 8, 8), 0.3)

    def denoiser(x, sigma, report_uncond=None, **extra):
        report_uncond(constant)
        return constant

    out = get_sampler("cfgpp_ud10_ab").function(denoiser, start(sigmas), sigmas)
    torch.testing.assert_close(out, constant, atol=1e-5, rtol=0)
