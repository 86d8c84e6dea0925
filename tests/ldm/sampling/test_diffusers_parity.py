"""Our samplers and diffusers' schedulers on one fixed random linear eps-model: same x.

diffusers' "k-style" schedulers (Euler, Euler ancestral, Heun, LMS) step in sigma space with
``scale_model_input`` dividing by sqrt(sigma²+1), exactly our ``x``; the VP schedulers (DDIM,
DPM-Solver++, UniPC) step in ``x_vp = x / sqrt(sigma²+1)``, so those tests convert at the start
and the end. The model is a function of (x_vp, sigma); each side passes the sigma that belongs
to the step, so both evaluate the same function at the same points.
"""

import pytest
import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, HeunDiscreteScheduler, LMSDiscreteScheduler,
                       UniPCMultistepScheduler)

from ldm.sampling.denoiser import UNetDenoiser
from ldm.sampling.model_sampling import model_sampling
from ldm.sampling.noise import StepNoiseSampler
from ldm.sampling.samplers import get_sampler

SD = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
SHAPE = (1, 4, 8, 8)
ATOL = 1e-4


class LinearEpsModel:
    """eps(x_vp, sigma) = 0.5·W x_vp (channel mixing) + cos(sigma)·b, fixed random W and b."""

    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(4, 4, generator=g) * 0.3
        self.b = torch.randn(1, 4, 8, 8, generator=g) * 0.2

    def eps(self, x_vp, sigma):
        sigma = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1, 1, 1, 1)
        return 0.5 * torch.einsum("oc,bchw->bohw", self.w, x_vp) + torch.cos(sigma) * self.b

    def denoiser(self, x, sigma, **extra_args):
        s = sigma.reshape(-1, 1, 1, 1)
        return x - s * self.eps(x / (s ** 2 + 1) ** 0.5, sigma)


@pytest.fixture
def model():
    return LinearEpsModel()


@pytest.fixture
def start():
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(7))


def run_k_scheduler(scheduler, model, x, generator=None):
    """diffusers loop for the sigma-space schedulers; sigmas[i] belongs to timesteps[i]."""
    for i, t in enumerate(scheduler.timesteps):
        sigma = scheduler.sigmas[i]
        eps = model.eps(scheduler.scale_model_input(x, t), sigma)
        kwargs = {"generator": generator} if generator is not None else {}
        x = scheduler.step(eps, t, x, **kwargs).prev_sample
    return x


@pytest.mark.parametrize("spacing,karras", [("linspace", False), ("leading", False), ("trailing", False),
                                            ("linspace", True)])
def test_euler_matches_euler_discrete(model, start, spacing, karras):
    ref = EulerDiscreteScheduler(**SD, timestep_spacing=spacing, steps_offset=1, use_karras_sigmas=karras)
    ref.set_timesteps(12)
    x = start * ref.init_noise_sigma
    expected = run_k_scheduler(ref, model, x.clone())
    ours = get_sampler("euler").function(model.denoiser, x, ref.sigmas)
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)


def test_euler_ancestral_matches_with_a_shared_noise_sequence(model, start):
    ref = EulerAncestralDiscreteScheduler(**SD)
    ref.set_timesteps(12)
    x = start * ref.init_noise_sigma
    seed = 99
    # StepNoiseSampler draws from a CPU generator seeded with seed + 1, one randn per step, in
    # the latent's shape; diffusers draws the same way from the generator it is handed. (It
    # also draws at the last step, where sigma_up = 0, which no longer matters.)
    expected = run_k_scheduler(ref, model, x.clone(), generator=torch.Generator().manual_seed(seed + 1))
    ours = get_sampler("euler_ancestral").function(model.denoiser, x, ref.sigmas,
                                                   noise_sampler=StepNoiseSampler(x, seed))
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("karras", [False, True])
def test_heun_matches_heun_discrete(model, start, karras):
    ref = HeunDiscreteScheduler(**SD, use_karras_sigmas=karras)
    ref.set_timesteps(10)
    x = start * ref.init_noise_sigma
    expected = run_k_scheduler(ref, model, x.clone())
    # diffusers interleaves sigmas (each interior one twice); the schedule is the unique ones.
    sigmas = torch.unique_consecutive(ref.sigmas)
    assert len(sigmas) == 11
    ours = get_sampler("heun").function(model.denoiser, x, sigmas)
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)


def test_lms_matches_lms_discrete_until_the_last_step(model, start):
    ref = LMSDiscreteScheduler(**SD)
    ref.set_timesteps(12)
    x = start * ref.init_noise_sigma
    states = []
    sample = x.clone()
    for i, t in enumerate(ref.timesteps):
        eps = model.eps(ref.scale_model_input(sample, t), ref.sigmas[i])
        sample = ref.step(eps, t, sample).prev_sample
        states.append(sample)
    # Deliberate difference at the last step (to sigma = 0): k-diffusion and ComfyUI jump to the
    # denoised estimate, diffusers integrates its multistep polynomial down to 0. Every state
    # before it must agree; run our LMS on the schedule cut before the last step and compare.
    ours = get_sampler("lms").function(model.denoiser, x, ref.sigmas[:-1])
    torch.testing.assert_close(ours, states[-2], atol=ATOL, rtol=0)


def vp_sigma(alphas_cumprod, t):
    ab = alphas_cumprod[int(t)]
    return float(((1 - ab) / ab) ** 0.5)


def test_ddim_matches_ddim_scheduler(model, start):
    ref = DDIMScheduler(**SD, steps_offset=1, set_alpha_to_one=True, clip_sample=False)
    ref.set_timesteps(20)
    sample = start.clone()  # VP space, init_noise_sigma = 1
    sigmas = []
    for t in ref.timesteps:
        sigma = vp_sigma(ref.alphas_cumprod, t)
        sigmas.append(sigma)
        sample = ref.step(model.eps(sample, sigma), t, sample, eta=0.0).prev_sample
    sigmas = torch.tensor(sigmas + [0.0])
    # DDIM (eta = 0) is exactly Euler on x = x_vp·sqrt(sigma²+1) (Karras et al. 2022, §4).
    ours = get_sampler("ddim").function(model.denoiser, start * (1 + sigmas[0] ** 2) ** 0.5, sigmas)
    torch.testing.assert_close(ours, sample, atol=ATOL, rtol=0)


def run_vp_scheduler(scheduler, model, sample):
    for i, t in enumerate(scheduler.timesteps):
        sample = scheduler.step(model.eps(sample, scheduler.sigmas[i]), t, sample).prev_sample
    return sample


@pytest.mark.parametrize("karras", [False, True])
def test_dpmpp_2m_matches_dpm_solver_multistep(model, start, karras):
    ref = DPMSolverMultistepScheduler(**SD, solver_order=2, algorithm_type="dpmsolver++",
                                      solver_type="midpoint", use_karras_sigmas=karras)
    ref.set_timesteps(12)
    expected = run_vp_scheduler(ref, model, start.clone())  # ends at sigma 0, where x_vp = x
    ours = get_sampler("dpmpp_2m").function(model.denoiser, start * (1 + ref.sigmas[0] ** 2) ** 0.5,
                                             ref.sigmas)
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("variant,name", [("bh1", "uni_pc"), ("bh2", "uni_pc_bh2")])
def test_unipc_matches_unipc_multistep(model, start, variant, name):
    # final_sigmas_type="sigma_min": diffusers then ends at the table's smallest sigma with the
    # full UniPC update, as ours does on a schedule that does not end in 0. (Ending in 0,
    # diffusers jumps to the data estimate, ComfyUI stops at sigma = 0.001.)
    ref = UniPCMultistepScheduler(**SD, solver_order=3, solver_type=variant, predict_x0=True,
                                  lower_order_final=True, final_sigmas_type="sigma_min")
    ref.set_timesteps(12)
    expected = run_vp_scheduler(ref, model, start.clone())
    sigmas = ref.sigmas.float()
    assert float(sigmas[-1]) > 0
    ours = get_sampler(name).function(model.denoiser, start * (1 + sigmas[0] ** 2) ** 0.5, sigmas)
    torch.testing.assert_close(ours / (1 + sigmas[-1] ** 2) ** 0.5, expected, atol=ATOL, rtol=0)


class TimestepUNet:
    """A stand-in UNet whose prediction depends on the discrete timestep it is given."""

    def __init__(self, model):
        self.model = model
        self.timesteps = []

    def __call__(self, x_in, timesteps, context=None, y=None):
        self.timesteps.append(timesteps.clone())
        return 0.5 * torch.einsum("oc,bchw->bohw", self.model.w, x_in) \
            + torch.cos(timesteps / 100).reshape(-1, 1, 1, 1) * self.model.b


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_unet_denoiser_gives_the_network_diffusers_inputs(model, start, prediction):
    # Integer timesteps ("trailing"): the nearest-index timestep we give the network is then
    # the very timestep diffusers passes.
    ref = EulerDiscreteScheduler(**SD, timestep_spacing="trailing", prediction_type=prediction)
    ref.set_timesteps(10)
    unet = TimestepUNet(model)
    x = start * ref.init_noise_sigma
    sample = x.clone()
    for t in ref.timesteps:
        sample = ref.step(unet(ref.scale_model_input(sample, t), t.reshape(1).float()), t, sample).prev_sample
    ref_timesteps = torch.cat(unet.timesteps)
    unet.timesteps.clear()
    denoiser = UNetDenoiser(unet, model_sampling("eps" if prediction == "epsilon" else "v"))
    ours = get_sampler("euler").function(lambda x, sigma: denoiser(x, sigma, {}), x, ref.sigmas)
    torch.testing.assert_close(torch.cat(unet.timesteps), ref_timesteps)
    torch.testing.assert_close(ours, sample, atol=ATOL, rtol=0)
