"""nodes.custom_sampling: ComfyUI's custom-sampling nodes (NOISE, GUIDER, SAMPLER, SIGMAS)."""

from __future__ import annotations

import pytest
import torch

from graph.registry import NodeRegistry
from ldm.sampling.custom import CFGGuidance, DisabledNoise, DualCFGGuidance, RandomNoise, SamplerChoice
from ldm.sampling.from_handle import model_sampling_of
from ldm.sampling.noise import prepare_noise
from ldm.sampling.sample import ksampler_sigmas
from ldm.sampling.schedulers import karras_sigmas
from nodes import custom_sampling as cs
from nodes import sampling
from tests.nodes.sampling_support import RecordingEngine, make_runner
from tests.nodes.sampling_support import one_torch_thread  # noqa: F401 (fixture)
from tests.nodes.test_sampling import _fake_handle, cond


def test_schema():
    registry = NodeRegistry()
    assert registry.register_mappings(cs.NODE_CLASS_MAPPINGS, cs.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    info = registry.object_info()
    assert set(info) == {"SamplerCustom", "SamplerCustomAdvanced", "KSamplerSelect", "BasicScheduler",
                         "KarrasScheduler", "ExponentialScheduler", "SDTurboScheduler", "SplitSigmas",
                         "SplitSigmasDenoise", "FlipSigmas", "CFGGuider", "BasicGuider", "DualCFGGuider",
                         "RandomNoise", "DisableNoise"}
    assert info["SamplerCustomAdvanced"]["input_order"]["required"] == ["noise", "guider", "sampler", "sigmas",
                                                                        "latent_image"]
    assert info["SamplerCustomAdvanced"]["output_name"] == ["output", "denoised_output"]
    assert info["SamplerCustom"]["input_order"]["required"] == [
        "model", "add_noise", "noise_seed", "cfg", "positive", "negative", "sampler", "sigmas", "latent_image"]
    assert info["SplitSigmas"]["output_name"] == ["high_sigmas", "low_sigmas"]
    assert info["KarrasScheduler"]["input"]["required"]["sigma_max"][1]["default"] == 14.614642
    assert all(info["KarrasScheduler"]["input"]["required"][name][1]["advanced"]
               for name in ("sigma_max", "sigma_min", "rho"))
    assert info["SamplerCustom"]["input"]["required"]["add_noise"][1] == {"default": True, "advanced": True}
    assert info["SDTurboScheduler"]["input"]["required"]["steps"][1] == {"default": 1, "min": 1, "max": 10}
    assert {name: info[name]["category"] for name in ("SamplerCustom", "SamplerCustomAdvanced", "KSamplerSelect",
                                                      "BasicScheduler", "SplitSigmas", "CFGGuider",
                                                      "RandomNoise")} == {
        "SamplerCustom": "model/sampling/custom", "SamplerCustomAdvanced": "model/sampling/custom",
        "KSamplerSelect": "model/sampling/samplers", "BasicScheduler": "model/sampling/schedulers",
        "SplitSigmas": "model/sampling/sigmas", "CFGGuider": "model/sampling/guiders",
        "RandomNoise": "model/sampling/noise"}
    assert [info[name]["display_name"] for name in ("CFGGuider", "BasicGuider", "DualCFGGuider")] == [
        "CFG Guider", "Basic Guider", "Dual CFG Guider"]
    assert info["DisableNoise"]["input"] == {"required": {}}
    assert info["DualCFGGuider"]["input"]["required"]["style"][0] == ["regular", "nested"]
    assert info["DualCFGGuider"]["input_order"]["required"][-1] == "style"


def test_value_nodes():
    assert cs.KSamplerSelect().get_sampler("heun") == (SamplerChoice("heun"),)
    assert cs.RandomNoise().get_noise(5) == (RandomNoise(5),)
    assert cs.DisableNoise().get_noise() == (DisabledNoise(),)
    model = _fake_handle()
    positive, negative = cond(1.0), cond(0.0)
    [guider] = cs.CFGGuider().get_guider(model, positive, negative, 6.5)
    assert isinstance(guider, CFGGuidance) and guider.model is model and guider.cfg == 6.5
    assert guider.positive is positive and guider.negative is negative
    [basic] = cs.BasicGuider().get_guider(model, cond(1.0))
    assert basic.cfg == 1.0 and list(basic.negative) == []
    [dual] = cs.DualCFGGuider().get_guider(model, cond(1.0), cond(2.0), cond(0.0), 3.0, 5.0, "nested")
    assert isinstance(dual, DualCFGGuidance) and dual.nested and (dual.cfg_conds, dual.cfg_cond2_negative) == (3.0, 5.0)
    assert not cs.DualCFGGuider().get_guider(model, cond(), cond(), cond(), 3.0, 5.0)[0].nested


def test_schedulers():
    model = _fake_handle()
    [basic] = cs.BasicScheduler().get_sigmas(model, "karras", 6, 1.0)
    torch.testing.assert_close(basic, ksampler_sigmas(model_sampling_of(model), "karras", "euler", 6))
    [partial] = cs.BasicScheduler().get_sigmas(model, "normal", 4, 0.5)
    torch.testing.assert_close(partial, ksampler_sigmas(model_sampling_of(model), "normal", "euler", 4, 0.5))
    [karras] = cs.KarrasScheduler().get_sigmas(5, 14.614642, 0.0291675, 7.0)
    torch.testing.assert_close(karras, karras_sigmas(5, 0.0291675, 14.614642, 7.0))
    [exponential] = cs.ExponentialScheduler().get_sigmas(3, 10.0, 0.1)
    torch.testing.assert_close(exponential, torch.tensor([10.0, 1.0, 0.1, 0.0]))
    [turbo] = cs.SDTurboScheduler().get_sigmas(model, 1, 1.0)
    assert len(turbo) == 2 and float(turbo[0]) == pytest.approx(float(model_sampling_of(model).sigma_max))
    high, low = cs.SplitSigmas().get_sigmas(basic, 2)
    assert torch.equal(high, basic[:3]) and torch.equal(low, basic[2:])
    high, low = cs.SplitSigmasDenoise().get_sigmas(basic, 0.5)
    assert len(low) == 4 and torch.equal(high, basic[:4])
    [flipped] = cs.FlipSigmas().get_sigmas(basic)
    assert float(flipped[0]) == pytest.approx(1e-4) and float(flipped[-1]) == float(basic[0])


def test_sampler_custom_advanced_runs_the_guider_on_the_lent_unet(tmp_path):
    engine = RecordingEngine()
    run = make_runner(tmp_path, engine)
    model = _fake_handle()
    sigmas = ksampler_sigmas(model_sampling_of(model), "karras", "euler", 3)
    latent = {"samples": torch.zeros(2, 4, 8, 8)}
    out, denoised = run(cs.SamplerCustomAdvanced().sample, RandomNoise(4), CFGGuidance(model, cond(), cond(0.0), 3.0),
                        SamplerChoice("euler"), sigmas, latent)
    assert engine.loans == 1 and len(engine.unet.inputs) == 3
    assert engine.unet.inputs[0].shape[0] == 4  # cond and uncond of both images in one call
    torch.testing.assert_close(engine.unet.inputs[0][:2], prepare_noise(latent["samples"], 4), atol=1e-5, rtol=1e-5)
    assert [v for v, _, _ in run.progress] == [1, 2, 3]
    assert out["samples"].shape == denoised["samples"].shape == (2, 4, 8, 8)


def test_sampler_custom_equals_ksampler(tmp_path):
    engine = RecordingEngine()
    run = make_runner(tmp_path, engine)
    model = _fake_handle()
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    [reference] = run(sampling.KSampler().sample, model, 12, 4, 5.0, "euler_ancestral", "karras", cond(), cond(0.0),
                      latent)
    sigmas = ksampler_sigmas(model_sampling_of(model), "karras", "euler_ancestral", 4)
    out, _ = run(cs.SamplerCustom().sample, model, True, 12, 5.0, cond(), cond(0.0), SamplerChoice("euler_ancestral"),
                 sigmas, latent)
    assert torch.equal(out["samples"], reference["samples"])
    # add_noise off: no start noise, but the ancestral step noise still follows noise_seed
    quiet_a, _ = run(cs.SamplerCustom().sample, model, False, 1, 5.0, cond(), cond(0.0),
                     SamplerChoice("euler_ancestral"), sigmas, latent)
    quiet_b, _ = run(cs.SamplerCustom().sample, model, False, 2, 5.0, cond(), cond(0.0),
                     SamplerChoice("euler_ancestral"), sigmas, latent)
    assert not torch.equal(quiet_a["samples"], quiet_b["samples"])
