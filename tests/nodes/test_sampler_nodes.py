"""nodes.samplers: ComfyUI's sampler nodes. Each node's SAMPLER, with its defaults, must sample
exactly as KSampler with the sampler's name (same seed, same model, same sigmas), and its options
must reach the algorithm."""

from __future__ import annotations

import pytest
import torch

from graph.registry import NodeRegistry
from ldm.sampling.from_handle import model_sampling_of
from ldm.sampling.sample import ksampler_sigmas
from nodes import custom_sampling, sampling
from nodes import samplers as nodes
from tests.nodes.sampling_support import make_runner
from tests.nodes.sampling_support import one_torch_thread, sd1, tiny_sd1  # noqa: F401 (fixtures)

STEPS, CFG, SEED = 3, 4.0, 21
CATEGORY = "model/sampling/samplers"
#: nodes_advanced_samplers.py and the LCM sampler have no source newer than the Oct 2025 copy
OLD_CATEGORY = "sampling/custom_sampling/samplers"


def test_schema_is_comfyuis():
    registry = NodeRegistry()
    assert registry.register_mappings(nodes.NODE_CLASS_MAPPINGS, nodes.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    info = registry.object_info()
    assert set(info) == {"SamplerEulerAncestral", "SamplerEulerAncestralCFGPP", "SamplerEulerCFGpp", "SamplerLMS",
                         "SamplerDPMPP_2S_Ancestral", "SamplerDPMPP_SDE", "SamplerDPMPP_2M_SDE", "SamplerDPMPP_3M_SDE",
                         "SamplerDPMAdaptative", "SamplerER_SDE", "SamplerSASolver", "SamplerSEEDS2",
                         "SamplerLCMUpscale", "SamplerLCM", "SamplerDDIM", "SamplerPLMS"}
    assert all(node["output"] == ["SAMPLER"] for node in info.values())
    assert {name for name, node in info.items() if node["category"] != CATEGORY} == {
        "SamplerEulerCFGpp", "SamplerLCM", "SamplerLCMUpscale"}
    assert info["SamplerLCM"]["category"] == info["SamplerLCMUpscale"]["category"] == OLD_CATEGORY
    assert info["SamplerEulerCFGpp"]["category"] == "_for_testing" and info["SamplerEulerCFGpp"]["experimental"]
    assert info["SamplerEulerCFGpp"]["display_name"] == "SamplerEulerCFG++"
    assert info["SamplerEulerAncestralCFGPP"]["display_name"] == "SamplerEulerAncestralCFG++"
    required = {name: node["input"]["required"] for name, node in info.items()}
    assert required["SamplerEulerAncestralCFGPP"]["eta"][1] == {"default": 1.0, "min": 0.0, "max": 1.0,
                                                               "step": 0.01, "round": False}
    assert required["SamplerEulerAncestral"]["s_noise"][1]["advanced"] is True
    assert info["SamplerDPMAdaptative"]["input_order"]["required"] == [
        "order", "rtol", "atol", "h_init", "pcoeff", "icoeff", "dcoeff", "accept_safety", "eta", "s_noise"]
    assert required["SamplerDPMAdaptative"]["atol"][1]["default"] == 0.0078
    assert required["SamplerDPMAdaptative"]["order"][1] == {"default": 3, "min": 2, "max": 3, "advanced": True}
    assert required["SamplerDPMPP_2M_SDE"]["solver_type"][0] == ["midpoint", "heun"]
    assert required["SamplerDPMPP_SDE"]["noise_device"][0] == ["gpu", "cpu"]
    assert required["SamplerER_SDE"]["solver_type"][0] == ["ER-SDE", "Reverse-time SDE", "ODE"]
    assert required["SamplerER_SDE"]["eta"][1]["max"] == 10.0 and "tooltip" in required["SamplerER_SDE"]["eta"][1]
    assert info["SamplerSASolver"]["input_order"]["required"] == [
        "model", "eta", "sde_start_percent", "sde_end_percent", "s_noise", "predictor_order", "corrector_order",
        "use_pece", "simple_order_2"]
    assert required["SamplerSASolver"]["corrector_order"][1] == {"default": 4, "min": 0, "max": 6, "advanced": True}
    assert required["SamplerSEEDS2"]["r"][1]["min"] == 0.01 and "exp_heun_2_x0" in info["SamplerSEEDS2"]["description"]
    assert required["SamplerLCMUpscale"]["upscale_method"][0] == ["bislerp", "nearest-exact", "bilinear", "area",
                                                                  "bicubic"]
    assert required["SamplerLCMUpscale"]["scale_steps"][1] == {"default": -1, "min": -1, "max": 1000, "step": 1}


@pytest.fixture
def setup(tmp_path, sd1):
    model, clip, _ = sd1
    positive = clip.encode_from_tokens_scheduled(clip.tokenize("a red square"))
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(""))
    return make_runner(tmp_path), model, positive, negative, {"samples": torch.zeros(1, 4, 8, 8)}


def ksampler(setup, sampler_name):
    run, model, positive, negative, latent = setup
    [out] = run(sampling.KSampler().sample, model, SEED, STEPS, CFG, sampler_name, "karras", positive, negative,
                latent)
    return out["samples"]


def custom(setup, sampler, sampler_name="euler", add_noise=True, seed=SEED):
    run, model, positive, negative, latent = setup
    sigmas = ksampler_sigmas(model_sampling_of(model), "karras", sampler_name, STEPS)
    out, _ = run(custom_sampling.SamplerCustom().sample, model, add_noise, seed, CFG, positive, negative, sampler,
                 sigmas, latent)
    return out["samples"]


# (node, its inputs with ComfyUI's defaults, the KSampler name it equals)
DEFAULTS = [
    (nodes.SamplerEulerAncestral, (1.0, 1.0), "euler_ancestral"),
    (nodes.SamplerEulerAncestralCFGPP, (1.0, 1.0), "euler_ancestral_cfg_pp"),
    (nodes.SamplerEulerCFGpp, ("regular",), "euler_cfg_pp"),
    (nodes.SamplerLMS, (4,), "lms"),
    (nodes.SamplerLCM, (1.0, 1.0, 0.0), "lcm"),
    (nodes.SamplerDPMPP_2S_Ancestral, (1.0, 1.0), "dpmpp_2s_ancestral"),
    (nodes.SamplerDPMPP_SDE, (1.0, 1.0, 0.5, "cpu"), "dpmpp_sde"),
    (nodes.SamplerDPMPP_SDE, (1.0, 1.0, 0.5, "gpu"), "dpmpp_sde_gpu"),
    (nodes.SamplerDPMPP_2M_SDE, ("midpoint", 1.0, 1.0, "cpu"), "dpmpp_2m_sde"),
    (nodes.SamplerDPMPP_2M_SDE, ("heun", 1.0, 1.0, "gpu"), "dpmpp_2m_sde_heun_gpu"),
    (nodes.SamplerDPMPP_3M_SDE, (1.0, 1.0, "cpu"), "dpmpp_3m_sde"),
    (nodes.SamplerDPMAdaptative, (3, 0.05, 0.0078, 0.05, 0.0, 1.0, 0.0, 0.81, 0.0, 1.0), "dpm_adaptive"),
    (nodes.SamplerER_SDE, ("ER-SDE", 3, 1.0, 1.0), "er_sde"),
    (nodes.SamplerSEEDS2, ("phi_1", 1.0, 1.0, 0.5), "seeds_2"),
    # the settings its description names for the exponential Heun samplers
    (nodes.SamplerSEEDS2, ("phi_2", 0.0, 1.0, 1.0), "exp_heun_2_x0"),
    (nodes.SamplerSEEDS2, ("phi_2", 1.0, 1.0, 1.0), "exp_heun_2_x0_sde"),
    # Weft's nodes for the paper's samplers
    (nodes.SamplerDDIM, (1.0, 1.0), "ddim_eta"),
    (nodes.SamplerPLMS, (4,), "plms"),
    # options reach the algorithm: ancestral Euler without noise is Euler; LMS of order 1 too
    (nodes.SamplerEulerAncestral, (0.0, 1.0), "euler"),
    (nodes.SamplerLMS, (1,), "euler"),
]


@pytest.mark.parametrize("node,inputs,name", DEFAULTS, ids=[f"{n.__name__}-{k}" for n, _, k in DEFAULTS])
def test_node_sampler_equals_ksampler(setup, node, inputs, name):
    [sampler] = node().get_sampler(*inputs)
    assert torch.equal(custom(setup, sampler, name), ksampler(setup, name))


def test_sa_solver_node_equals_ksampler(setup):
    model = setup[1]
    [sampler] = nodes.SamplerSASolver().get_sampler(model, 1.0, 0.2, 0.8, 1.0, 3, 4, False, False)
    assert torch.equal(custom(setup, sampler, "sa_solver"), ksampler(setup, "sa_solver"))
    [pece] = nodes.SamplerSASolver().get_sampler(model, 1.0, 0.2, 0.8, 1.0, 3, 4, True, False)
    assert torch.equal(custom(setup, pece, "sa_solver_pece"), ksampler(setup, "sa_solver_pece"))


def test_options_change_the_result(setup):
    model = setup[1]
    base = custom(setup, nodes.SamplerDPMPP_2M_SDE().get_sampler("midpoint", 1.0, 1.0, "cpu")[0])
    assert not torch.equal(base, custom(setup, nodes.SamplerDPMPP_2M_SDE().get_sampler("midpoint", 0.5, 1.0, "cpu")[0]))
    sa = nodes.SamplerSASolver().get_sampler(model, 1.0, 0.2, 0.8, 1.0, 3, 4, False, False)[0]
    assert not torch.equal(custom(setup, sa), custom(setup, nodes.SamplerSASolver().get_sampler(
        model, 0.0, 0.2, 0.8, 1.0, 3, 4, False, False)[0]))


def test_er_sde_ode_ignores_the_step_noise(setup):
    # Without start noise the seed only drives the per-step noise: the ODE must not depend on it.
    ode = nodes.SamplerER_SDE().get_sampler("ODE", 3, 1.0, 1.0)[0]
    assert torch.equal(custom(setup, ode, add_noise=False, seed=1), custom(setup, ode, add_noise=False, seed=2))
    zero_eta = nodes.SamplerER_SDE().get_sampler("Reverse-time SDE", 3, 0.0, 1.0)[0]
    assert torch.equal(custom(setup, zero_eta, add_noise=False, seed=1), custom(setup, ode, add_noise=False, seed=1))
    sde = nodes.SamplerER_SDE().get_sampler("Reverse-time SDE", 3, 1.0, 1.0)[0]
    assert not torch.equal(custom(setup, sde, add_noise=False, seed=1), custom(setup, sde, add_noise=False, seed=2))


def test_alternative_euler_cfg_pp_steps_along_the_unconditional_prediction(setup):
    regular = custom(setup, nodes.SamplerEulerCFGpp().get_sampler("regular")[0])
    alternative = custom(setup, nodes.SamplerEulerCFGpp().get_sampler("alternative")[0])
    euler = custom(setup, nodes.SamplerEulerAncestral().get_sampler(0.0, 1.0)[0])
    assert torch.isfinite(alternative).all()
    assert not torch.equal(alternative, regular) and not torch.equal(alternative, euler)


@pytest.mark.parametrize("ratio,size", [(2.0, 16), (1.5, 12)])
def test_lcm_upscale_returns_the_enlarged_latent(setup, ratio, size):
    [sampler] = nodes.SamplerLCMUpscale().get_sampler(ratio, -1, "bislerp")
    out = custom(setup, sampler, "lcm")
    assert out.shape == (1, 4, size, size) and torch.isfinite(out).all()


def test_lcm_noise_schedule_scales_and_clips_the_step_noise():
    # A denoiser that always predicts zero leaves only the re-noising: after the step from sigma 2 to
    # sigma 1 the state is exactly noise * 1 * multiplier, so the multiplier and clip are visible.
    from ldm.sampling.samplers_stochastic import sample_lcm

    draw = torch.tensor([[-3.0, -0.5, 0.5, 3.0]])
    sigmas = torch.tensor([2.0, 1.0, 0.5, 0.0])
    seen = []

    def zero_model(x, sigma, **_):
        seen.append(x.clone())
        return torch.zeros_like(x)

    sample_lcm(zero_model, torch.zeros(1, 4), sigmas, noise_sampler=lambda *_: draw.clone(),
               s_noise=2.0, s_noise_end=0.0)
    # steps 0, 1 re-noise with multipliers 2.0 and 1.0 (linear from 2 to 0 over 3 steps)
    assert torch.allclose(seen[1], draw * 1.0 * 2.0) and torch.allclose(seen[2], draw * 0.5 * 1.0)
    seen.clear()
    sample_lcm(zero_model, torch.zeros(1, 4), sigmas, noise_sampler=lambda *_: draw.clone(), noise_clip_std=0.5)
    bound = 0.5 * draw.std()
    assert torch.allclose(seen[1], draw.clamp(-bound, bound))
