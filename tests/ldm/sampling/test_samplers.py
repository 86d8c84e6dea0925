"""Every sampler against the closed-form Gaussian toy problem (see conftest.GaussianToy)."""

import pytest
import torch

from ldm.sampling.noise import StepNoiseSampler, brownian_noise_sampler
from ldm.sampling.samplers import (DISCARD_PENULTIMATE_SIGMA_SAMPLERS, SAMPLER_NAMES, SAMPLERS,
                                   get_sampler)
from ldm.sampling.schedulers import calculate_sigmas

# Steps per sampler so its discretisation error in the std stays well under the 5 % tolerance
# (measured: at 50 karras steps the first-order ones are 4–7 % low, the rest within 1 %).
FIRST_ORDER = {"euler", "ddim", "heunpp2", "euler_ancestral", "ddpm", "euler_ancestral_cfg_pp", "gradient_estimation",
               "gradient_estimation_cfg_pp", "ddim_eta"}


def sigmas_for(name, steps, sd_sampling):
    spec = get_sampler(name)
    if spec.discard_penultimate_sigma:
        sigmas = calculate_sigmas(sd_sampling, "karras", steps + 1)
        return torch.cat([sigmas[:-2], sigmas[-1:]])
    return calculate_sigmas(sd_sampling, "karras", steps)


def run_args(sd_sampling):
    """The extra_args a run passes (sa_solver's default SDE interval comes from the model sampling)."""
    return {"model_sampling": sd_sampling}


def noise_for(name, x, sigmas, seed=1):
    kind = get_sampler(name).noise
    if kind == "step":
        return StepNoiseSampler(x, seed)
    if kind == "brownian":
        return brownian_noise_sampler(x, sigmas, seed)
    return None


def test_table_holds_the_requested_names():
    # ComfyUI's comfy.samplers.SAMPLER_NAMES (KSAMPLER_NAMES + ddim, uni_pc, uni_pc_bh2), in its order,
    # then the paper's samplers Weft adds.
    assert SAMPLER_NAMES == (
        "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "exp_heun_2_x0",
        "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
        "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde",
        "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu",
        "ddpm", "lcm", "ipndm", "ipndm_v", "deis", "cfgpp_ud10_ab", "res_multistep", "res_multistep_cfg_pp",
        "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation",
        "gradient_estimation_cfg_pp", "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim",
        "uni_pc", "uni_pc_bh2", "ddim_eta", "plms")
    assert {n for n, s in SAMPLERS.items() if s.noise_on_device} == {
        "dpmpp_sde_gpu", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde_gpu"}
    assert DISCARD_PENULTIMATE_SIGMA_SAMPLERS == {"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"}
    assert get_sampler("ddim").function is get_sampler("euler").function
    assert get_sampler("ddim").random_inpaint_noise
    for spec in SAMPLERS.values():
        assert spec.function.__doc__ and "\n" not in spec.function.__doc__.strip()
    with pytest.raises(ValueError, match="unknown sampler"):
        get_sampler("euler_magic")


@pytest.mark.parametrize("name", [n for n in SAMPLER_NAMES if n != "lcm"])
def test_sampler_recovers_the_data_distribution(name, toy, sd_sampling, start_noise):
    steps = 120 if name in FIRST_ORDER else 40
    sigmas = sigmas_for(name, steps, sd_sampling)
    x = start_noise * sigmas[0]  # N(0, sigma_max²), as a txt2img start
    # dpm_adaptive's default tolerances (rtol 0.05) leave ≈ 5 % error on this toy; tighter
    # ones show its error control works.
    options = {"rtol": 0.01, "atol": 0.002} if name == "dpm_adaptive" else {}
    out = get_sampler(name).function(toy.denoiser, x, sigmas, extra_args=run_args(sd_sampling),
                                     noise_sampler=noise_for(name, x, sigmas),
                                     **options)
    # Starting at mean 0 instead of mu costs mu·s/sqrt(s²+sigma_max²) ≈ 0.017 of mean; the Monte
    # Carlo error of 4000 samples is ≈ 0.008 on the mean and ≈ 1.1 % on the std.
    assert abs(float(out.mean()) - toy.mu) < 0.04
    assert abs(float(out.std()) / toy.s - 1) < 0.05


def test_lcm_with_a_consistency_model(toy, sd_sampling, start_noise):
    sigmas = calculate_sigmas(sd_sampling, "karras", 4)
    x = start_noise * sigmas[0]
    out = get_sampler("lcm").function(toy.consistency, x, sigmas, noise_sampler=StepNoiseSampler(x, 3))
    assert abs(float(out.mean()) - toy.mu) < 0.04
    assert abs(float(out.std()) / toy.s - 1) < 0.05


def test_lcm_follows_its_closed_form_with_the_mmse_denoiser(toy, sd_sampling, start_noise):
    # With E[x0|x] (not a consistency model) each step shrinks the variance; the exact moments
    # follow from x_{i+1} = a_i x_i + b_i + sigma_{i+1} n, a_i = s²/(s²+sigma_i²).
    sigmas = calculate_sigmas(sd_sampling, "karras", 4)
    x = start_noise * sigmas[0]
    out = get_sampler("lcm").function(toy.denoiser, x, sigmas, noise_sampler=StepNoiseSampler(x, 3))
    mean, var = 0.0, float(sigmas[0]) ** 2
    for i in range(4):
        a = toy.s ** 2 / (toy.s ** 2 + float(sigmas[i]) ** 2)
        mean, var = a * mean + (1 - a) * toy.mu, a * a * var + float(sigmas[i + 1]) ** 2
    assert float(out.mean()) == pytest.approx(mean, abs=0.02)
    assert float(out.std()) == pytest.approx(var ** 0.5, rel=0.05)


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_sampler_handles_image_batches_and_reports_each_step(name, toy, sd_sampling):
    sigmas = sigmas_for(name, 6, sd_sampling)
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * sigmas[0]
    seen = []
    out = get_sampler(name).function(toy.denoiser, x, sigmas, extra_args=run_args(sd_sampling),
                                     noise_sampler=noise_for(name, x, sigmas),
                                     callback=seen.append)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert seen and set(seen[0]) == {"x", "i", "sigma", "sigma_hat", "denoised"}
    # dpm_fast / dpm_adaptive report once per solver step (orders 1-3, or adaptive), not per sigma.
    if name not in ("dpm_fast", "dpm_adaptive"):
        assert [info["i"] for info in seen] == list(range(len(sigmas) - 1))


@pytest.mark.parametrize("name", [n for n, s in SAMPLERS.items() if s.noise])
def test_noisy_samplers_need_a_noise_source_and_follow_its_seed(name, toy, sd_sampling):
    sigmas = sigmas_for(name, 5, sd_sampling)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * sigmas[0]
    function = get_sampler(name).function
    with pytest.raises(ValueError, match="noise_sampler"):
        function(toy.denoiser, x, sigmas, extra_args=run_args(sd_sampling))
    args = run_args(sd_sampling)
    a = function(toy.denoiser, x, sigmas, extra_args=args, noise_sampler=noise_for(name, x, sigmas, seed=1))
    b = function(toy.denoiser, x, sigmas, extra_args=args, noise_sampler=noise_for(name, x, sigmas, seed=1))
    c = function(toy.denoiser, x, sigmas, extra_args=args, noise_sampler=noise_for(name, x, sigmas, seed=2))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name,calls", [("euler", 10), ("heun", 19), ("dpm_2", 19), ("dpmpp_2m", 10),
                                        ("dpmpp_sde", 19), ("lms", 10), ("uni_pc", 10), ("dpm_fast", 10),
                                        ("heunpp2", 27)])
def test_model_evaluations_per_schedule(name, calls, toy, sd_sampling):
    sigmas = calculate_sigmas(sd_sampling, "karras", 10)
    x = torch.zeros(1, 4) + sigmas[0]
    get_sampler(name).function(toy.denoiser, x, sigmas, extra_args=run_args(sd_sampling),
                               noise_sampler=noise_for(name, x, sigmas))
    assert toy.calls == calls


def test_unipc_ends_at_sigma_0001_like_comfyui(sd_sampling):
    # A denoiser that always answers x0 = 0 makes every UniPC update x_t = (sigma_t/sigma_s)·x
    # exactly, so the output shows where sampling stopped: at sigma 0.001, not 0.
    sigmas = calculate_sigmas(sd_sampling, "karras", 12)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * sigmas[0]
    for name in ("uni_pc", "uni_pc_bh2"):
        out = get_sampler(name).function(lambda x, sigma: torch.zeros_like(x), x, sigmas)
        torch.testing.assert_close(out, x * 0.001 / sigmas[0], rtol=1e-4, atol=0)
