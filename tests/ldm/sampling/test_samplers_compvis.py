"""The paper's samplers (ldm.sampling.samplers_compvis): DDIM with eta and PLMS against diffusers'
DDIMScheduler and PNDMScheduler(skip_prk_steps=True), and the KSampler / node path.

Timesteps: Weft's ``ddim_uniform`` scheduler gives the timesteps 1, 1+k, …, 1+(n-1)k with
k = 1000 // n — diffusers' "leading" spacing with ``steps_offset=1``, CompVis' ``make_ddim_timesteps``
("uniform") — and then sigma 0, which is diffusers' ``set_alpha_to_one=True``. With
``set_alpha_to_one=False`` (and in CompVis) the last step lands on ᾱ of timestep 0 instead: the
same schedule with its final 0 replaced by the table's smallest sigma. The model is a stand-in UNet
whose eps depends on the discrete timestep it is given, run by Weft through the real
``UNetDenoiser`` (nearest table index), so equal results also mean equal timesteps.
"""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import DDIMScheduler, PNDMScheduler

from ldm.sampling.denoiser import UNetDenoiser
from ldm.sampling.model_sampling import model_sampling
from ldm.sampling.noise import StepNoiseSampler
from ldm.sampling.samplers import COMFYUI_SAMPLER_NAMES, SAMPLER_NAMES, get_sampler
from ldm.sampling.samplers_compvis import ddim_step
from ldm.sampling.schedulers import calculate_sigmas

SD = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
          steps_offset=1, prediction_type="epsilon")
SHAPE = (1, 4, 8, 8)
STEPS = 10
RELATIVE = 1e-4


class TimestepEpsUNet:
    """eps(x_in, t) = 0.5·W x_in + cos(t/100)·b: channel mixing plus a timestep-dependent bias."""

    def __init__(self, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(4, 4, generator=g) * 0.3
        self.b = torch.randn(1, 4, 8, 8, generator=g) * 0.2
        self.timesteps: list[int] = []

    def __call__(self, x_in, timesteps, context=None, y=None, **kwargs):
        t = torch.as_tensor(timesteps, dtype=torch.float32).reshape(-1)
        self.timesteps += [int(round(float(v))) for v in t]
        return 0.5 * torch.einsum("oc,bchw->bohw", self.w, x_in) + torch.cos(t / 100).reshape(-1, 1, 1, 1) * self.b


class RecordingNoise:
    """Weft's step noise (seed + 1, one draw per step) with every draw kept, to hand to diffusers."""

    def __init__(self, x, seed: int):
        self.inner = StepNoiseSampler(x, seed)
        self.draws: list[torch.Tensor] = []

    def __call__(self, sigma, sigma_next):
        draw = self.inner(sigma, sigma_next)
        self.draws.append(draw.clone())
        return draw


@pytest.fixture(scope="module")
def sampling():
    return model_sampling("eps")


@pytest.fixture
def start():
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(7))


def weft_denoiser(unet, sampling):
    denoiser = UNetDenoiser(unet, sampling)
    return lambda x, sigma, **extra: denoiser(x, sigma, {})


def schedule(sampling, alpha_to_one: bool):
    """ddim_uniform's sigmas; ending at the smallest table sigma for ``set_alpha_to_one=False``."""
    sigmas = calculate_sigmas(sampling, "ddim_uniform", STEPS)
    assert len(sigmas) == STEPS + 1 and float(sigmas[-1]) == 0
    if not alpha_to_one:
        sigmas = sigmas.clone()
        sigmas[-1] = sampling.sigma_min
    return sigmas


def to_vp(x, sigma):
    return x / (1 + float(sigma) ** 2) ** 0.5


def assert_relatively_close(ours, expected):
    error = float((ours - expected).abs().max() / expected.abs().max())
    assert error <= RELATIVE, f"max |Δ| / max |x| = {error:.2e}"


def test_ddim_uniform_is_diffusers_leading_spacing_with_offset_one(sampling):
    ref = DDIMScheduler(**SD)
    ref.set_timesteps(STEPS)
    sigmas = calculate_sigmas(sampling, "ddim_uniform", STEPS)
    assert sampling.timestep(sigmas[:-1]).tolist() == ref.timesteps.tolist() == list(range(901, 0, -100))


@pytest.mark.parametrize("alpha_to_one", [True, False])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_eta_matches_ddim_scheduler(sampling, start, eta, alpha_to_one):
    sigmas = schedule(sampling, alpha_to_one)
    unet = TimestepEpsUNet()
    noise = RecordingNoise(start, seed=5)
    ours = get_sampler("ddim_eta").function(weft_denoiser(unet, sampling), start * (1 + sigmas[0] ** 2) ** 0.5,
                                            sigmas, noise_sampler=noise, eta=eta)
    our_timesteps, unet.timesteps = unet.timesteps, []
    # eta > 0 draws once per step except into sigma 0; set_alpha_to_one=False never reaches 0.
    draws = STEPS if eta and not alpha_to_one else STEPS - 1 if eta else 0
    assert len(noise.draws) == draws

    ref = DDIMScheduler(**SD, clip_sample=False, set_alpha_to_one=alpha_to_one)
    ref.set_timesteps(STEPS)
    sample = start.clone()  # VP space, init_noise_sigma = 1
    for i, t in enumerate(ref.timesteps):
        # diffusers adds std·variance_noise in VP space; ours adds the same draw, std/sqrt(ᾱ') in sigma space.
        variance_noise = noise.draws[i] if i < len(noise.draws) else torch.zeros(SHAPE)
        sample = ref.step(unet(sample, t), t, sample, eta=eta, variance_noise=variance_noise).prev_sample
    assert our_timesteps == unet.timesteps
    assert_relatively_close(to_vp(ours, sigmas[-1]), sample)


@pytest.mark.parametrize("alpha_to_one", [True, False])
def test_plms_matches_pndm_scheduler_without_prk_steps(sampling, start, alpha_to_one):
    sigmas = schedule(sampling, alpha_to_one)
    unet = TimestepEpsUNet(seed=3)
    ours = get_sampler("plms").function(weft_denoiser(unet, sampling), start * (1 + sigmas[0] ** 2) ** 0.5, sigmas)
    our_timesteps, unet.timesteps = unet.timesteps, []

    ref = PNDMScheduler(**SD, skip_prk_steps=True, set_alpha_to_one=alpha_to_one)
    ref.set_timesteps(STEPS)
    sample = start.clone()
    for t in ref.timesteps:
        sample = ref.step(unet(sample, t), t, sample).prev_sample
    # steps + 1 evaluations: the pseudo improved Euler start evaluates the second timestep twice.
    assert our_timesteps == unet.timesteps == [901, 801, 801, 701, 601, 501, 401, 301, 201, 101, 1]
    assert_relatively_close(to_vp(ours, sigmas[-1]), sample)


class LinearDenoiser:
    """x0(x, sigma) = x - sigma·eps with eps linear in x_vp, any sigma (for non-table schedules)."""

    def __init__(self):
        self.unet = TimestepEpsUNet(seed=1)
        self.calls = 0

    def __call__(self, x, sigma, **extra):
        self.calls += 1
        s = sigma.reshape(-1, 1, 1, 1)
        return x - s * self.unet(x / (s ** 2 + 1) ** 0.5, s.reshape(-1) * 50)


def test_ddim_eta_is_euler_ancestral_and_euler_in_sigma_space(sampling, start):
    # DDIM's sigma_t(eta), moved to sigma space, is k-diffusion's ancestral split: the noise std
    # is sigma_up and the deterministic part reaches sigma_down (and eta = 0 is Euler).
    sigmas = calculate_sigmas(sampling, "karras", 8)
    x = start * sigmas[0]
    model = LinearDenoiser()
    for eta in (1.0, 0.6):
        ddim = get_sampler("ddim_eta").function(model, x, sigmas, noise_sampler=StepNoiseSampler(x, 4), eta=eta)
        ancestral = get_sampler("euler_ancestral").function(model, x, sigmas, noise_sampler=StepNoiseSampler(x, 4),
                                                           eta=eta)
        torch.testing.assert_close(ddim, ancestral, rtol=1e-5, atol=1e-5)
    deterministic = get_sampler("ddim_eta").function(model, x, sigmas, eta=0.0)  # needs no noise source
    torch.testing.assert_close(deterministic, get_sampler("euler").function(model, x, sigmas), rtol=1e-5, atol=1e-5)


def test_ddim_step_caps_the_noise_at_the_next_noise_level():
    x, eps, noise = torch.ones(1, 4), torch.full((1, 4), 0.5), torch.full((1, 4), 2.0)
    # eta = 3 asks for more than all of sigma_next's noise: the step is x0 + sigma_next·noise.
    capped = ddim_step(x, 2.0, 1.0, eps, eta=3.0, noise=noise)
    torch.testing.assert_close(capped, (x - 2.0 * eps) + 1.0 * noise)
    with pytest.raises(ValueError, match="needs noise"):
        ddim_step(x, 2.0, 1.0, eps, eta=1.0)


def test_plms_evaluations_and_order_option(sampling, start):
    sigmas = calculate_sigmas(sampling, "karras", 6)
    x = start * sigmas[0]
    model = LinearDenoiser()
    full = get_sampler("plms").function(model, x, sigmas)
    assert model.calls == 7  # steps + 1
    model.calls = 0
    one_step = get_sampler("plms").function(model, x, sigmas[-2:])  # the only step goes to 0: plain DDIM
    assert model.calls == 1
    torch.testing.assert_close(one_step, get_sampler("euler").function(model, x, sigmas[-2:]), rtol=1e-5, atol=1e-6)
    # order 1: after the start every step is DDIM with its own eps
    lower = get_sampler("plms").function(model, x, sigmas, order=1)
    assert torch.isfinite(lower).all() and not torch.allclose(lower, full)
    with pytest.raises(ValueError, match="order"):
        get_sampler("plms").function(model, x, sigmas, order=5)


# ---- the sampler list and the node path ----------------------------------------------------------

def test_names_follow_comfyuis_list():
    assert SAMPLER_NAMES == COMFYUI_SAMPLER_NAMES + ("ddim_eta", "plms")
    assert len(COMFYUI_SAMPLER_NAMES) == 45 and COMFYUI_SAMPLER_NAMES[-3:] == ("ddim", "uni_pc", "uni_pc_bh2")


def test_object_info_lists_them_after_comfyuis_names():
    from graph.registry import NodeRegistry
    from nodes import register_builtin_nodes

    registry = NodeRegistry()
    register_builtin_nodes(registry)
    info = json.loads(json.dumps(registry.object_info()))  # what /object_info serves
    for node in ("KSampler", "KSamplerAdvanced", "KSamplerSelect"):
        assert info[node]["input"]["required"]["sampler_name"][0] == [*COMFYUI_SAMPLER_NAMES, "ddim_eta", "plms"]
    assert info["SamplerDDIM"]["input_order"]["required"] == ["eta", "s_noise"]
    assert info["SamplerDDIM"]["input"]["required"]["eta"][1]["default"] == 1.0
    assert info["SamplerPLMS"]["input"]["required"]["order"][1] == {
        "default": 4, "min": 1, "max": 4, "advanced": True, "tooltip": "How many noise predictions each step combines."}
    assert info["SamplerDDIM"]["output"] == info["SamplerPLMS"]["output"] == ["SAMPLER"]


@pytest.fixture(scope="module")
def tiny_sd1(tmp_path_factory):
    from ldm.tiny import write_tiny_checkpoint
    return write_tiny_checkpoint(tmp_path_factory.mktemp("compvis_samplers") / "tiny_sd1.safetensors", "sd1", seed=0)


@pytest.fixture
def node_setup(tmp_path, tiny_sd1):
    from ldm.model import load_checkpoint
    from tests.nodes.sampling_support import FP32_CPU, make_runner

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks run faster on one thread (see tests/nodes/sampling_support)
    model, clip, _ = load_checkpoint(tiny_sd1, compute=FP32_CPU)
    positive = clip.encode_from_tokens_scheduled(clip.tokenize("a red square"))
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(""))
    yield make_runner(tmp_path), model, positive, negative, {"samples": torch.zeros(1, 4, 8, 8)}
    torch.set_num_threads(before)


def test_ksampler_and_sampler_nodes_run_them(node_setup):
    from ldm.sampling.from_handle import model_sampling_of
    from ldm.sampling.sample import ksampler_sigmas
    from nodes import custom_sampling, samplers, sampling

    run, model, positive, negative, latent = node_setup

    def ksampler(name, seed=21):
        [out] = run(sampling.KSampler().sample, model, seed, 3, 4.0, name, "ddim_uniform", positive, negative, latent)
        return out["samples"]

    def custom(sampler, name):
        sigmas = ksampler_sigmas(model_sampling_of(model), "ddim_uniform", name, 3)
        out, _ = run(custom_sampling.SamplerCustom().sample, model, True, 21, 4.0, positive, negative, sampler,
                     sigmas, latent)
        return out["samples"]

    ddim, plms = ksampler("ddim_eta"), ksampler("plms")
    assert ddim.shape == plms.shape == (1, 4, 8, 8) and torch.isfinite(ddim).all() and torch.isfinite(plms).all()
    assert torch.equal(ddim, ksampler("ddim_eta"))  # seeded: the step noise comes from seed + 1
    assert not torch.equal(ddim, ksampler("ddim_eta", seed=22))
    # the nodes with their defaults sample exactly as KSampler with the name
    assert torch.equal(custom(samplers.SamplerDDIM().get_sampler(1.0, 1.0)[0], "ddim_eta"), ddim)
    assert torch.equal(custom(samplers.SamplerPLMS().get_sampler(4)[0], "plms"), plms)
    # eta 0 is deterministic DDIM, i.e. ComfyUI's ddim (Euler) up to rounding
    torch.testing.assert_close(custom(samplers.SamplerDDIM().get_sampler(0.0, 1.0)[0], "ddim_eta"),
                               ksampler("ddim"), rtol=1e-4, atol=1e-5)
