import pytest
import torch
from diffusers import DDPMScheduler, EulerDiscreteScheduler
from diffusers.schedulers.scheduling_ddim import rescale_zero_terminal_snr

from ldm.sampling.model_sampling import (SD_SCHEDULE, X4_UPSCALER_SCHEDULE, DiscreteSchedule,
                                         ScheduleConfig, model_sampling, model_sampling_for_family)


def test_sd_schedule_matches_diffusers_scaled_linear():
    ours = DiscreteSchedule(SD_SCHEDULE)
    ref = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    ref_sigmas = ((1 - ref.alphas_cumprod) / ref.alphas_cumprod) ** 0.5
    # diffusers builds betas in float32, we in float64: agreement to float32 rounding.
    torch.testing.assert_close(ours.sigmas, ref_sigmas.float(), rtol=2e-5, atol=0)
    assert float(ours.sigma_min) == pytest.approx(0.0291672, abs=1e-6)
    assert float(ours.sigma_max) == pytest.approx(14.614642, abs=1e-4)


def test_x4_upscaler_schedule_matches_diffusers():
    ours = DiscreteSchedule(X4_UPSCALER_SCHEDULE)
    ref = DDPMScheduler(beta_start=0.0001, beta_end=0.02, beta_schedule="scaled_linear")
    ref_sigmas = ((1 - ref.alphas_cumprod) / ref.alphas_cumprod) ** 0.5
    # Its first betas are ~1e-4, where diffusers' float32 betas lose more relative precision.
    torch.testing.assert_close(ours.sigmas, ref_sigmas.float(), rtol=2e-4, atol=0)
    assert model_sampling_for_family("sd_x4", "v").prediction.name == "v"
    assert float(model_sampling_for_family("sd_x4", "v").sigma_max) == pytest.approx(float(ours.sigma_max))


def test_zsnr_matches_diffusers_rescale_except_the_pinned_last_step():
    ours = DiscreteSchedule(ScheduleConfig(zsnr=True))
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    ref_ab = torch.cumprod(1 - rescale_zero_terminal_snr(betas), 0)
    ref_sigmas = ((1 - ref_ab) / ref_ab) ** 0.5
    torch.testing.assert_close(ours.sigmas[:-1], ref_sigmas[:-1].float(), rtol=1e-5, atol=0)
    # diffusers' last ᾱ is exactly 0 (sigma = inf); ours is pinned so sigma_max stays finite.
    assert torch.isinf(ref_sigmas[-1])
    assert 4000 < float(ours.sigma_max) < 5000
    assert float(ours.sigma_min) == pytest.approx(float(DiscreteSchedule().sigma_min), rel=1e-5)


def test_sigma_to_t_round_trips_and_quantizes():
    sched = DiscreteSchedule()
    t = torch.tensor([0.0, 1.0, 10.25, 500.4, 998.9, 999.0])
    sigma = sched.t_to_sigma(t)
    torch.testing.assert_close(sched.sigma_to_t(sigma), t, atol=2e-3, rtol=0)
    torch.testing.assert_close(sched.sigma_to_t(sigma, quantize=True), torch.tensor([0, 1, 10, 500, 999, 999]))
    torch.testing.assert_close(sched.t_to_sigma(torch.arange(1000)), sched.sigmas)


def test_sigma_to_t_matches_diffusers_log_sigma_interpolation():
    sched = DiscreteSchedule()
    ref = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                 use_karras_sigmas=True)
    ref.set_timesteps(17)
    ours = sched.sigma_to_t(ref.sigmas[:-1])
    torch.testing.assert_close(ours, ref.timesteps.float(), atol=2e-3, rtol=0)


def test_percent_to_sigma():
    ms = model_sampling()
    assert ms.percent_to_sigma(0.0) > 1e8
    assert ms.percent_to_sigma(1.0) == 0.0
    assert ms.percent_to_sigma(0.5) == pytest.approx(float(ms.sigma(torch.tensor(499.5))))
    assert ms.percent_to_sigma(0.25) > ms.percent_to_sigma(0.5) > ms.percent_to_sigma(0.75)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_prediction_conversions_recover_x0(prediction):
    ms = model_sampling(prediction)
    g = torch.Generator().manual_seed(0)
    x0, n = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    sigma = torch.tensor([0.1, 1.0, 14.0])
    s = sigma.view(-1, 1, 1, 1)
    x = x0 + s * n
    x_in = ms.calculate_input(sigma, x)
    torch.testing.assert_close(x_in, x / (s ** 2 + 1) ** 0.5)
    alpha, sd = 1 / (s ** 2 + 1) ** 0.5, s / (s ** 2 + 1) ** 0.5  # VP coefficients
    output = n if prediction == "eps" else alpha * n - sd * x0
    torch.testing.assert_close(ms.calculate_denoised(sigma, output, x), x0, atol=1e-5, rtol=1e-5)


def test_noise_scaling_txt2img_and_img2img():
    ms = model_sampling()
    noise, latent = torch.ones(1, 4, 2, 2), torch.full((1, 4, 2, 2), 3.0)
    top = ms.sigma_max
    assert ms.is_max_denoise(torch.stack([top, torch.tensor(0.0)]))
    full = ms.noise_scaling(top, noise, torch.zeros_like(latent), max_denoise=True)
    torch.testing.assert_close(full, noise * (1 + top ** 2) ** 0.5)
    partial = ms.noise_scaling(torch.tensor(2.0), noise, latent)
    torch.testing.assert_close(partial, latent + 2.0 * noise)
    assert not ms.is_max_denoise(torch.tensor([2.0, 0.0]))
    assert ms.inverse_noise_scaling(torch.tensor(0.0), latent) is latent
