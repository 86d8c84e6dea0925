"""ldm.sampling.discrete_variants: ModelSamplingDiscrete's eps / v / LCM / x0 / img_to_img(_flow)."""

from __future__ import annotations

import math

import pytest
import torch

from ldm.sampling.discrete_variants import DISCRETE_SAMPLING_NAMES, DistilledSchedule, discrete_model_sampling
from ldm.sampling.model_sampling import model_sampling_for_family
from ldm.sampling.schedulers import calculate_sigmas


def test_names_in_comfyui_order():
    assert DISCRETE_SAMPLING_NAMES == ("eps", "v_prediction", "lcm", "x0", "img_to_img", "img_to_img_flow")


@pytest.mark.parametrize("family", ["sd1", "sdxl", "sd_x4"])
def test_eps_and_v_are_the_family_samplings(family):
    for name, prediction in (("eps", "eps"), ("v_prediction", "v")):
        ours = discrete_model_sampling(family, name)
        reference = model_sampling_for_family(family, prediction)
        torch.testing.assert_close(ours.sigmas, reference.sigmas)
        x, out, sigma = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3), torch.tensor([3.0, 0.5])
        torch.testing.assert_close(ours.calculate_denoised(sigma, out, x),
                                   reference.calculate_denoised(sigma, out, x))


def test_zsnr_rescales_the_table():
    sampling = discrete_model_sampling("sd1", "v_prediction", zsnr=True)
    assert math.isclose(float(sampling.sigma_max), 4518, rel_tol=1e-3)
    assert float(discrete_model_sampling("sd1", "lcm", zsnr=True).sigma_max) == pytest.approx(4518, rel=1e-3)


def test_lcm_keeps_every_twentieth_timestep_and_maps_back_to_the_full_scale():
    full = model_sampling_for_family("sd1", "eps")
    lcm = discrete_model_sampling("sd1", "lcm")
    assert isinstance(lcm.schedule, DistilledSchedule) and len(lcm.sigmas) == 50
    torch.testing.assert_close(lcm.sigmas, full.sigmas[19::20])
    assert lcm.timestep(full.sigmas[999:1000]).tolist() == [999]
    assert lcm.timestep(full.sigmas[19:20]).tolist() == [19]
    assert lcm.timestep(full.sigmas[30:31]).tolist() == [39]  # nearest kept timestep
    torch.testing.assert_close(lcm.sigma(torch.tensor([999.0, 519.0])), full.sigmas[[999, 519]])
    # between two kept timesteps: log-linear between their sigmas
    middle = float(lcm.sigma(torch.tensor(529.0)))
    assert middle == pytest.approx(math.exp((math.log(full.sigmas[519]) + math.log(full.sigmas[539])) / 2), rel=1e-5)
    # percent_to_sigma works on the 0…999 scale like every discrete model
    assert lcm.percent_to_sigma(0.5) == pytest.approx(float(lcm.sigma(torch.tensor(499.5))), rel=1e-6)
    assert lcm.percent_to_sigma(0.0) > 1e8 and lcm.percent_to_sigma(1.0) == 0.0
    # schedulers read the kept table: "simple" over 4 steps takes every 12.5th kept sigma from the top
    assert calculate_sigmas(lcm, "simple", 4).tolist()[:2] == pytest.approx(
        [float(lcm.sigmas[-1]), float(lcm.sigmas[-13])])


def test_lcm_boundary_condition_matches_diffusers():
    from diffusers import LCMScheduler

    lcm = discrete_model_sampling("sd1", "lcm")
    scheduler = LCMScheduler()
    sigma = lcm.sigmas[[49, 10, 0]]  # timesteps 999, 219, 19
    x, eps = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    denoised = lcm.calculate_denoised(sigma, eps, x)
    for i, t in enumerate((999, 219, 19)):
        c_skip, c_out = scheduler.get_scalings_for_boundary_condition_discrete(t)
        expected = c_out * (x[i] - eps[i] * sigma[i]) + c_skip * x[i]
        torch.testing.assert_close(denoised[i], expected.float(), atol=1e-5, rtol=1e-5)


def test_x0_and_img_to_img():
    x0 = discrete_model_sampling("sd1", "x0")
    x, out, sigma = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2), torch.tensor([2.0])
    assert torch.equal(x0.calculate_denoised(sigma, out, x), out)
    torch.testing.assert_close(x0.calculate_input(sigma, x), x / 5 ** 0.5)
    img = discrete_model_sampling("sd1", "img_to_img")
    assert torch.equal(img.calculate_input(sigma, x), x)
    assert torch.equal(img.calculate_denoised(sigma, out, x), out)
    flow = discrete_model_sampling("sd1", "img_to_img_flow")
    assert torch.equal(flow.calculate_input(sigma, x), x)
    assert torch.equal(flow.calculate_denoised(sigma, out, x), out)
    noise = torch.randn(1, 4, 2, 2)
    assert torch.equal(flow.noise_scaling(sigma, noise, x, max_denoise=True), x)  # starts from the latent
    torch.testing.assert_close(flow.inverse_noise_scaling(sigma, x), 1.0 - x)
    torch.testing.assert_close(flow.sigmas, img.sigmas)  # the discrete table of the family
    with pytest.raises(ValueError, match="unknown sampling"):
        discrete_model_sampling("sd1", "edm")
