"""ldm.sampling.guidance_variants, perp_neg and continuous_sampling against references we did not
write: diffusers 0.42's guiders where they compute the same thing, otherwise the papers' formulas
(written out here in numpy) and k-diffusion / EDM preconditioning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers.guiders import TangentialClassifierFreeGuidance
from diffusers.guiders.adaptive_projected_guidance import MomentumBuffer, normalized_guidance
from diffusers.guiders.classifier_free_zero_star_guidance import cfg_zero_star_scale

from ldm.sampling import guidance_variants as variants
from ldm.sampling.continuous_sampling import (PLAYGROUND_V2_5, continuous_edm_sampling, continuous_v_sampling)
from ldm.sampling.model_sampling import model_sampling
from ldm.sampling.perp_neg import perp_neg


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _cfg(cond, uncond, scale):
    return uncond + (cond - uncond) * scale


# -- APG -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("momentum,norm_threshold,eta", [(0.0, 0.0, 1.0), (-0.5, 3.0, 0.3), (0.5, 50.0, -1.0)])
def test_apg_matches_diffusers_normalized_guidance_over_steps(momentum, norm_threshold, eta):
    """ComfyUI's APG rewrites the cond side so that CFG yields ``cond + cfg·update``: diffusers'
    APG with ``use_original_formulation=True`` (the update applied to the conditional prediction)."""
    apg = variants.AdaptiveProjectedGuidance(eta, norm_threshold, momentum)
    buffer = MomentumBuffer(momentum)
    scale = 5.0
    for step, sigma in enumerate([10.0, 5.0, 1.0]):
        cond, uncond = _randn(2, 4, 8, 8, seed=step), _randn(2, 4, 8, 8, seed=10 + step)
        cond_x, uncond_x = apg({"conds_out": [cond, uncond], "sigma": torch.tensor([sigma]), "cond_scale": scale})
        ours = _cfg(cond_x, uncond_x, scale)
        expected = normalized_guidance(cond, uncond, scale, buffer, eta, norm_threshold,
                                       use_original_formulation=True)
        torch.testing.assert_close(ours, expected)


def test_apg_momentum_restarts_when_sigma_rises():
    apg = variants.AdaptiveProjectedGuidance(1.0, 0.0, 0.9)
    fresh = variants.AdaptiveProjectedGuidance(1.0, 0.0, 0.9)
    cond, uncond = _randn(1, 4, 4, 4, seed=1), _randn(1, 4, 4, 4, seed=2)
    args = {"conds_out": [cond, uncond], "cond_scale": 3.0}
    apg({**args, "sigma": torch.tensor([2.0])})
    second = apg({**args, "sigma": torch.tensor([1.0])})
    restarted = apg({**args, "sigma": torch.tensor([9.0])})  # a new run
    first = fresh({**args, "sigma": torch.tensor([9.0])})
    assert not torch.allclose(second[0], first[0])
    torch.testing.assert_close(restarted[0], first[0])


# -- CFG-Zero* ---------------------------------------------------------------------------------------

def test_cfg_zero_star_scales_uncond_by_diffusers_optimized_scale():
    x = _randn(2, 4, 8, 8, seed=3)
    cond, uncond = _randn(2, 4, 8, 8, seed=4), _randn(2, 4, 8, 8, seed=5)
    scale = 6.0
    out = variants.cfg_zero_star({"input": x, "cond_scale": scale, "cond_denoised": cond, "uncond_denoised": uncond,
                                  "denoised": _cfg(cond, uncond, scale)})
    # s* is measured on the noise predictions (x - x0), then applied to the x0 predictions.
    alpha = cfg_zero_star_scale((x - cond).flatten(1), (x - uncond).flatten(1)).view(2, 1, 1, 1)
    # (diffusers computes s* in float32)
    torch.testing.assert_close(out, alpha * uncond + scale * (cond - alpha * uncond), atol=1e-5, rtol=1e-5)


# -- TCFG ------------------------------------------------------------------------------------------

def test_tcfg_matches_diffusers_tangential_cfg():
    x = _randn(2, 4, 8, 8, seed=6).float()
    cond, uncond = _randn(2, 4, 8, 8, seed=7).float(), _randn(2, 4, 8, 8, seed=8).float()
    scale = 4.0
    sides = [["cond"], ["uncond"]]
    cond_x, uncond_x = variants.tangential_damping_cfg({"input": x, "conds_out": [cond, uncond], "conds": sides})
    ours_noise = x - _cfg(cond_x, uncond_x, scale)
    guider = TangentialClassifierFreeGuidance(guidance_scale=scale)
    expected = guider.forward(x - cond, x - uncond).pred  # diffusers works on noise predictions
    torch.testing.assert_close(ours_noise, expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(uncond_x, uncond, atol=1e-3)


def test_tcfg_leaves_an_unevaluated_uncond_alone():
    out = [torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)]
    assert variants.tangential_damping_cfg({"input": out[0], "conds_out": out, "conds": [["c"], None]}) is out


# -- FreSca ----------------------------------------------------------------------------------------

def _numpy_fourier_filter(x, low, high, cutoff):
    spectrum = np.fft.fftshift(np.fft.fft2(x, axes=(-2, -1)), axes=(-2, -1))
    weights = np.full(x.shape, high)
    h, w = x.shape[-2:]
    ch, cw = h // 2, w // 2
    fh, fw = min(cutoff, ch), min(cutoff, cw)
    weights[..., ch - fh:ch + fh, cw - fw:cw + fw] = low
    return np.fft.ifft2(np.fft.ifftshift(spectrum * weights, axes=(-2, -1)), axes=(-2, -1)).real


@pytest.mark.parametrize("cutoff", [2, 20])
def test_fresca_filters_the_guidance_like_a_numpy_fft(cutoff):
    cond, uncond = _randn(1, 4, 16, 12, seed=9).float(), _randn(1, 4, 16, 12, seed=10).float()
    hook = variants.fresca(0.5, 1.75, cutoff)
    new_cond, new_uncond = hook({"conds_out": [cond, uncond], "conds": [["c"], ["u"]]})
    expected = _numpy_fourier_filter((cond - uncond).numpy().astype(np.float64), 0.5, 1.75, cutoff)
    np.testing.assert_allclose((new_cond - new_uncond).numpy(), expected, atol=1e-5)
    assert new_uncond is uncond
    same = variants.fresca(1.0, 1.0, cutoff)({"conds_out": [cond, uncond], "conds": [["c"], ["u"]]})
    torch.testing.assert_close(same[0], cond, atol=1e-5, rtol=1e-5)


# -- Perp-Neg --------------------------------------------------------------------------------------

def test_perp_neg_is_the_papers_perpendicular_combination():
    pos, neg, empty = (_randn(1, 4, 8, 8, seed=s).numpy() for s in (11, 12, 13))
    scale, neg_scale = 7.0, 0.6
    out = perp_neg(*(torch.from_numpy(a) for a in (pos, neg, empty)), neg_scale, scale).numpy()
    d_pos, d_neg = (pos - empty).ravel(), (neg - empty).ravel()
    perpendicular = d_neg - (d_neg @ d_pos) / (d_pos @ d_pos) * d_pos
    np.testing.assert_allclose(perpendicular @ d_pos, 0.0, atol=1e-9)
    expected = empty.ravel() + scale * d_pos - scale * neg_scale * perpendicular  # eq. 5, w_neg = cfg·neg_scale
    np.testing.assert_allclose(out.ravel(), expected, rtol=1e-10, atol=1e-10)


def test_perp_neg_with_positive_equal_to_empty_is_finite():
    empty, neg = _randn(1, 4, 4, 4, seed=14), _randn(1, 4, 4, 4, seed=15)
    out = perp_neg(empty, neg, empty, 1.0, 5.0)
    # pos = 0: no projection, the whole negative direction is pushed away from
    torch.testing.assert_close(out, empty - 5.0 * (neg - empty))


# -- post-cfg functions: Epsilon Scaling, TSR, CFGNorm, Mahiro ---------------------------------------

def test_epsilon_scaling_divides_the_predicted_noise():
    x, denoised = _randn(1, 4, 4, 4, seed=16), _randn(1, 4, 4, 4, seed=17)
    out = variants.epsilon_scaling(1.25)({"input": x, "denoised": denoised})
    torch.testing.assert_close(x - out, (x - denoised) / 1.25)  # eps / λ (Ning et al., eq. 12)
    torch.testing.assert_close(variants.epsilon_scaling(1.0)({"input": x, "denoised": denoised}), denoised)


def test_tsr_rescales_the_score_by_the_papers_ratio():
    x, denoised = _randn(2, 4, 4, 4, seed=18), _randn(2, 4, 4, 4, seed=19)
    sigma = torch.tensor([0.5, 3.0], dtype=torch.float64)
    k, tsr_sigma = 0.8, 1.5
    out = variants.temporal_score_rescaling(k, tsr_sigma)({"input": x, "denoised": denoised, "sigma": sigma})
    snr = 1.0 / sigma ** 2  # x = x0 + σ·n: α = 1
    ratio = (snr * tsr_sigma ** 2 + 1) / (snr * tsr_sigma ** 2 / k + 1)
    # score ∝ (x0 - x)/σ²; rescaled by r: x0' = x + r·(x0 - x)
    torch.testing.assert_close(out, x + ratio.view(2, 1, 1, 1) * (denoised - x))
    off = variants.temporal_score_rescaling(1.0, tsr_sigma)({"input": x, "denoised": denoised, "sigma": sigma})
    assert off is denoised
    at_zero = variants.temporal_score_rescaling(k, tsr_sigma)({"input": x, "denoised": denoised,
                                                               "sigma": torch.zeros(2)})
    assert at_zero is denoised


def test_cfg_norm_post_clamps_to_the_conditional_channel_norm():
    cond, guided = _randn(1, 4, 4, 4, seed=20), 3.0 * _randn(1, 4, 4, 4, seed=21)
    out = variants.cfg_norm_post(0.9)({"cond_denoised": cond, "denoised": guided})
    c, g = cond.numpy(), guided.numpy()
    ratio = np.clip(np.linalg.norm(c, axis=1, keepdims=True) / (np.linalg.norm(g, axis=1, keepdims=True) + 1e-8),
                    0.0, 1.0)
    np.testing.assert_allclose(out.numpy(), g * ratio * 0.9, rtol=1e-10)
    assert (torch.linalg.vector_norm(out, dim=1) <= torch.linalg.vector_norm(cond, dim=1) + 1e-9).all()
    with pytest.raises(RuntimeError, match="non-finite"):
        big = torch.full((1, 4, 2, 2), 1e38)  # float32: ×5 overflows
        variants.cfg_norm_post(5.0)({"cond_denoised": big, "denoised": big})


def test_cfg_norm_pre_rescales_the_combined_noise_to_the_cond_norm():
    cond, uncond = _randn(1, 4, 4, 4, seed=22), _randn(1, 4, 4, 4, seed=23)
    full = variants.cfg_norm_pre(1.0)({"cond": cond, "uncond": uncond, "cond_scale": 6.0})
    torch.testing.assert_close(torch.linalg.vector_norm(full, dim=1), torch.linalg.vector_norm(cond, dim=1))
    combined = _cfg(cond, uncond, 6.0)
    half = variants.cfg_norm_pre(0.5)({"cond": cond, "uncond": uncond, "cond_scale": 6.0})
    torch.testing.assert_close(half, 0.5 * full + 0.5 * combined)


def _numpy_mahiro(cond, uncond, guided, scale):
    leap, u_leap = cond * scale, uncond * scale
    merge = (leap + guided) / 2
    a = np.sqrt(np.abs(u_leap)) * np.sign(u_leap)
    b = np.sqrt(np.abs(merge)) * np.sign(merge)
    cos = (a * b).sum(axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-8)
    weight = 2 * (cos.mean() + 1)
    return (weight * guided + (4 - weight) * leap) / 4


def test_mahiro_matches_its_formula_and_keeps_cfg_when_the_prompts_agree():
    cond, uncond = _randn(1, 4, 4, 4, seed=24), _randn(1, 4, 4, 4, seed=25)
    guided = _cfg(cond, uncond, 5.0)
    out = variants.mahiro({"cond_scale": 5.0, "cond_denoised": cond, "uncond_denoised": uncond, "denoised": guided})
    np.testing.assert_allclose(out.numpy(), _numpy_mahiro(cond.numpy(), uncond.numpy(), guided.numpy(), 5.0),
                               rtol=1e-9)
    same = variants.mahiro({"cond_scale": 5.0, "cond_denoised": cond, "uncond_denoised": cond, "denoised": cond})
    torch.testing.assert_close(same, cond)


# -- Differential diffusion -------------------------------------------------------------------------

class _Job:
    def __init__(self, sampling):
        self.sampling = sampling


def test_differential_diffusion_thresholds_the_mask_by_step_progress():
    sampling = model_sampling("eps")
    sigmas = torch.tensor([10.0, 3.0, 1.0, 0.0])
    mask = torch.linspace(0, 1, 11).reshape(1, 1, 1, 11)
    fn = variants.differential_diffusion(1.0)
    options = {"model": _Job(sampling), "sigmas": sigmas}
    first = fn(torch.tensor([10.0]), mask, extra_options=options)
    assert torch.equal(first, (mask >= 1.0).float())  # only fully masked pixels change at the start
    # progress by timestep from the first sigma to the model's smallest (the run ends at 0)
    ts_from, ts_to = sampling.timestep(torch.tensor(10.0)), sampling.timestep(sampling.sigma_min)
    threshold = (sampling.timestep(torch.tensor(1.0)) - ts_to) / (ts_from - ts_to)
    later = fn(torch.tensor([1.0]), mask, extra_options=options)
    assert torch.equal(later, (mask >= threshold).float()) and 0 < float(threshold) < 1
    assert 1 < int(later.sum()) < 11
    blended = variants.differential_diffusion(0.25)(torch.tensor([1.0]), mask, extra_options=options)
    torch.testing.assert_close(blended, 0.25 * later + 0.75 * mask)


# -- continuous model samplings ------------------------------------------------------------------------

def _edm_precondition(sigma, sigma_data):
    """EDM (Karras et al. 2022, Table 1): c_skip, c_out, c_in."""
    c_skip = sigma_data ** 2 / (sigma ** 2 + sigma_data ** 2)
    c_out = sigma * sigma_data / (sigma ** 2 + sigma_data ** 2) ** 0.5
    c_in = 1 / (sigma ** 2 + sigma_data ** 2) ** 0.5
    return c_skip, c_out, c_in


@pytest.mark.parametrize("sigma", [0.05, 1.0, 14.0])
def test_continuous_edm_is_karras_preconditioning(sigma):
    ms = continuous_edm_sampling("edm", 0.002, 120.0)
    x, out = _randn(1, 4, 4, 4, seed=26).float(), _randn(1, 4, 4, 4, seed=27).float()
    s = torch.tensor([sigma])
    c_skip, c_out, c_in = _edm_precondition(sigma, 0.5)
    torch.testing.assert_close(ms.calculate_input(s, x), c_in * x)
    torch.testing.assert_close(ms.calculate_denoised(s, out, x), c_skip * x + c_out * out)
    torch.testing.assert_close(ms.timestep(s), torch.tensor([math.log(sigma) / 4]))  # c_noise
    torch.testing.assert_close(ms.sigma(ms.timestep(s)), s)


@pytest.mark.parametrize("sigma", [0.05, 1.0, 14.0])
def test_continuous_v_is_k_diffusion_v_denoiser(sigma):
    """k-diffusion's VDenoiser: c_out = -σ·σd/sqrt(σ²+σd²), time = atan(σ)·2/π."""
    ms = continuous_v_sampling(0.03, 500.0)
    x, out = _randn(1, 4, 4, 4, seed=28).float(), _randn(1, 4, 4, 4, seed=29).float()
    s = torch.tensor([sigma])
    c_skip, c_out, c_in = _edm_precondition(sigma, 1.0)
    torch.testing.assert_close(ms.calculate_input(s, x), c_in * x)
    torch.testing.assert_close(ms.calculate_denoised(s, out, x), c_skip * x - c_out * out)
    torch.testing.assert_close(ms.timestep(s), torch.tensor([math.atan(sigma) / math.pi * 2]))
    torch.testing.assert_close(ms.sigma(ms.timestep(s)), s, rtol=1e-4, atol=1e-5)


def test_continuous_schedule_table_and_percentages_are_log_spaced():
    ms = continuous_v_sampling(0.03, 500.0)
    assert len(ms.sigmas) == 1000
    assert math.isclose(float(ms.sigma_min), 0.03, rel_tol=1e-5) and math.isclose(float(ms.sigma_max), 500.0,
                                                                                   rel_tol=1e-5)
    np.testing.assert_allclose(np.diff(np.log(ms.sigmas.numpy())), math.log(500 / 0.03) / 999, rtol=1e-3)
    assert math.isclose(ms.percent_to_sigma(0.5), math.sqrt(0.03 * 500.0), rel_tol=1e-6)
    assert ms.percent_to_sigma(0.0) > 1e8 and ms.percent_to_sigma(1.0) == 0.0


def test_eps_and_v_with_unit_sigma_data_equal_the_discrete_parameterisations():
    x, out, s = _randn(1, 4, 4, 4, seed=30).float(), _randn(1, 4, 4, 4, seed=31).float(), torch.tensor([2.5])
    for name, continuous in (("eps", continuous_edm_sampling("eps", 0.002, 120.0)),
                             ("v", continuous_edm_sampling("v_prediction", 0.002, 120.0))):
        discrete = model_sampling(name)
        torch.testing.assert_close(continuous.calculate_input(s, x), discrete.calculate_input(s, x))
        torch.testing.assert_close(continuous.calculate_denoised(s, out, x), discrete.calculate_denoised(s, out, x))


def test_cosmos_rflow_works_in_flow_time_and_starts_unscaled():
    ms = continuous_edm_sampling("cosmos_rflow", 0.002, 80.0)
    x, out, s = _randn(1, 4, 4, 4, seed=32).float(), _randn(1, 4, 4, 4, seed=33).float(), torch.tensor([3.0])
    t = 3.0 / 4.0  # σ/(σ+1)
    torch.testing.assert_close(ms.calculate_input(s, x), (1 - t) * x)
    torch.testing.assert_close(ms.calculate_denoised(s, out, x), (1 - t) * x - t * out)
    torch.testing.assert_close(ms.timestep(s), torch.tensor([t]))
    assert float(ms.sigma(torch.tensor(0.9999))) == pytest.approx(80.0)  # past sigma_max's time
    noise, latent = torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    torch.testing.assert_close(ms.noise_scaling(torch.tensor([80.0]), noise, latent, max_denoise=True), noise * 80.0)
    eps = continuous_edm_sampling("eps", 0.002, 80.0)
    torch.testing.assert_close(eps.noise_scaling(torch.tensor([80.0]), noise, latent, max_denoise=True),
                               noise * (1 + 80.0 ** 2) ** 0.5)


def test_playground_latent_format_standardises_each_channel():
    latent = _randn(1, 4, 2, 2, seed=34).float()
    mean = torch.tensor([-1.6574, 1.886, -1.383, 2.5155]).view(1, 4, 1, 1)
    std = torch.tensor([8.4927, 5.9022, 6.5498, 5.2299]).view(1, 4, 1, 1)
    torch.testing.assert_close(PLAYGROUND_V2_5.process_in(latent), (latent - mean) * 0.5 / std)
    torch.testing.assert_close(PLAYGROUND_V2_5.process_out(PLAYGROUND_V2_5.process_in(latent)), latent)
