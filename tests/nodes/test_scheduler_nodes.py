"""nodes.schedulers: ComfyUI's scheduler and sigma nodes (schema, and what each computes)."""

from __future__ import annotations

import math

import pytest
import torch

from graph.registry import NodeRegistry
from ldm.sampling.custom import DisabledNoise, RandomNoise
from ldm.sampling.from_handle import model_sampling_of
from ldm.sampling.noise import prepare_noise
from ldm.sampling.schedulers import calculate_sigmas, exponential_sigmas
from nodes import custom_sampling
from nodes import schedulers as nodes
from tests.nodes.test_sampling import _fake_handle

SCHEDULERS = "model/sampling/schedulers"
SIGMAS = "model/sampling/sigmas"
#: Align Your Steps, GITS and Optimal Steps have no source newer than the Oct 2025 copy
OLD_SCHEDULERS = "sampling/custom_sampling/schedulers"


def test_schema_is_comfyuis():
    registry = NodeRegistry()
    assert registry.register_mappings(nodes.NODE_CLASS_MAPPINGS, nodes.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    info = registry.object_info()
    categories = {name: node["category"] for name, node in info.items()}
    assert categories == {
        "PolyexponentialScheduler": SCHEDULERS, "LaplaceScheduler": SCHEDULERS, "VPScheduler": SCHEDULERS,
        "BetaSamplingScheduler": SCHEDULERS, "AlignYourStepsScheduler": OLD_SCHEDULERS,
        "GITSScheduler": OLD_SCHEDULERS, "OptimalStepsScheduler": OLD_SCHEDULERS, "SamplingPercentToSigma": SIGMAS,
        "SetFirstSigma": SIGMAS, "ExtendIntermediateSigmas": SIGMAS, "ManualSigmas": SIGMAS,
        "AddNoise": "model/sampling/noise"}
    required = {name: node["input"]["required"] for name, node in info.items()}
    assert info["LaplaceScheduler"]["input_order"]["required"] == ["steps", "sigma_max", "sigma_min", "mu", "beta"]
    assert required["LaplaceScheduler"]["mu"][1] == {"default": 0.0, "min": -10.0, "max": 10.0, "step": 0.1,
                                                     "round": False, "advanced": True}
    assert required["PolyexponentialScheduler"]["rho"][1]["default"] == 1.0
    assert required["VPScheduler"]["eps_s"][1]["step"] == 0.0001
    assert required["VPScheduler"]["beta_d"][1]["default"] == 19.9
    assert required["AlignYourStepsScheduler"]["model_type"][0] == ["SD1", "SDXL", "SVD"]
    assert required["AlignYourStepsScheduler"]["steps"][1] == {"default": 10, "min": 1, "max": 10000}
    assert required["GITSScheduler"]["coeff"][1] == {"default": 1.2, "min": 0.8, "max": 1.5, "step": 0.05}
    assert required["GITSScheduler"]["steps"][1]["min"] == 2
    assert required["OptimalStepsScheduler"]["model_type"][0] == ["FLUX", "Wan", "Chroma"]
    assert required["OptimalStepsScheduler"]["steps"][1]["min"] == 3
    assert info["SamplingPercentToSigma"]["output"] == ["FLOAT"]
    assert info["SamplingPercentToSigma"]["output_name"] == ["sigma_value"]
    assert required["SamplingPercentToSigma"]["return_actual_sigma"][1]["default"] is False
    assert required["SetFirstSigma"]["sigma"][1] == {"default": 136.0, "min": 0.0, "max": 20000.0, "step": 0.001,
                                                     "round": False}
    assert info["ExtendIntermediateSigmas"]["input_order"]["required"] == [
        "sigmas", "steps", "start_at_sigma", "end_at_sigma", "spacing"]
    assert required["ExtendIntermediateSigmas"]["spacing"][0] == ["linear", "cosine", "sine"]
    assert required["ManualSigmas"]["sigmas"] == ("STRING", {"default": "1, 0.5", "multiline": False})
    assert info["ManualSigmas"]["experimental"] and info["AddNoise"]["experimental"]
    assert info["AddNoise"]["output"] == ["LATENT"]


def test_formula_schedulers():
    [poly] = nodes.PolyexponentialScheduler().get_sigmas(6, 14.614642, 0.0291675, 1.0)
    torch.testing.assert_close(poly, exponential_sigmas(6, 0.0291675, 14.614642))
    [steeper] = nodes.PolyexponentialScheduler().get_sigmas(6, 14.614642, 0.0291675, 2.0)
    assert float(steeper[1]) < float(poly[1]) and float(steeper[0]) == pytest.approx(14.614642)
    [laplace] = nodes.LaplaceScheduler().get_sigmas(5, 14.614642, 0.0291675, 0.0, 0.5)
    assert len(laplace) == 5 and float(laplace[2]) == pytest.approx(1.0, rel=1e-4)
    [vp] = nodes.VPScheduler().get_sigmas(3, 19.9, 0.1, 0.001)
    assert float(vp[0]) == pytest.approx(math.sqrt(math.expm1(19.9 / 2 + 0.1))) and float(vp[-1]) == 0.0


def test_beta_sampling_scheduler_is_the_beta_scheduler_with_its_shape():
    model = _fake_handle()
    [default] = nodes.BetaSamplingScheduler().get_sigmas(model, 8, 0.6, 0.6)
    torch.testing.assert_close(default, calculate_sigmas(model_sampling_of(model), "beta", 8))
    [skewed] = nodes.BetaSamplingScheduler().get_sigmas(model, 8, 0.6, 2.0)
    assert len(skewed) == 9 and not torch.equal(skewed, default)


def test_table_schedulers():
    [ays] = nodes.AlignYourStepsScheduler().get_sigmas("SDXL", 10, 1.0)
    assert float(ays[1]) == pytest.approx(6.3184485287) and float(ays[-1]) == 0.0
    [half] = nodes.AlignYourStepsScheduler().get_sigmas("SDXL", 10, 0.5)
    torch.testing.assert_close(half[:-1], ays[5:-1])
    [gits] = nodes.GITSScheduler().get_sigmas(1.2, 10, 1.0)
    assert len(gits) == 11 and float(gits[0]) == pytest.approx(14.61464119)
    [optimal] = nodes.OptimalStepsScheduler().get_sigmas("Wan", 20, 1.0)
    # the table itself (21 sigmas), its smallest (0.001) replaced by the final 0
    assert float(optimal[0]) == 1.0 and float(optimal[-2]) == pytest.approx(0.208) and float(optimal[-1]) == 0.0
    assert len(nodes.OptimalStepsScheduler().get_sigmas("Chroma", 20, 0.0)[0]) == 0


def test_sigma_nodes():
    sigmas = torch.tensor([14.6, 8.0, 3.0, 0.0])
    [first] = nodes.SetFirstSigma().set_first_sigma(sigmas, 136.0)
    assert first.tolist() == pytest.approx([136.0, 8.0, 3.0, 0.0]) and float(sigmas[0]) == pytest.approx(14.6)
    [extended] = nodes.ExtendIntermediateSigmas().extend(sigmas, 2, -1.0, 12.0, "linear")
    assert extended.tolist() == pytest.approx([14.6, 11.3, 8.0, 3.0, 0.0])
    [manual] = nodes.ManualSigmas().get_sigmas("14.6, 8, 3, 0")
    torch.testing.assert_close(manual, sigmas)
    model = _fake_handle()
    sampling = model_sampling_of(model)
    [mid] = nodes.SamplingPercentToSigma().get_sigma(model, 0.5, False)
    assert isinstance(mid, float) and mid == pytest.approx(sampling.percent_to_sigma(0.5))
    assert nodes.SamplingPercentToSigma().get_sigma(model, 1.0, False) == (0.0,)
    [bottom] = nodes.SamplingPercentToSigma().get_sigma(model, 1.0, True)
    assert bottom == pytest.approx(float(sampling.sigma_min))


def test_add_noise_noises_to_the_schedules_span():
    model = _fake_handle()
    latent = {"samples": torch.full((2, 4, 8, 8), 0.5), "batch_index": [0, 3]}
    sigmas = torch.tensor([6.0, 2.0, 1.0])
    [out] = nodes.AddNoise().add_noise(model, RandomNoise(9), sigmas, latent)
    expected = 0.5 + prepare_noise(latent["samples"], 9, [0, 3]) * 5.0  # |6 - 1|
    torch.testing.assert_close(out["samples"], expected)
    assert out["batch_index"] == [0, 3] and latent["samples"].eq(0.5).all()
    [quiet] = nodes.AddNoise().add_noise(model, DisabledNoise(), sigmas, latent)
    torch.testing.assert_close(quiet["samples"], latent["samples"])
    [unchanged] = nodes.AddNoise().add_noise(model, RandomNoise(9), torch.zeros(0), latent)
    assert unchanged is latent
    # The NOISE nodes' objects plug straight in.
    [noise] = custom_sampling.RandomNoise().get_noise(9)
    torch.testing.assert_close(nodes.AddNoise().add_noise(model, noise, sigmas, latent)[0]["samples"], expected)
