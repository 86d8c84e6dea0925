"""``comfy.model_sampling``: ComfyUI's schedule classes and prediction mixins over Weft's, as packs
compose them (``class ModelSamplingAdvanced(ModelSamplingDiscrete, EPS)``), patch them onto a MODEL
and test Weft's own sampling objects with ``isinstance``."""

from __future__ import annotations

import copy

import pytest
import torch

from ldm.sampling.discrete_variants import discrete_model_sampling
from ldm.sampling.model_sampling import model_sampling_for_family
from nodes.custom import load_custom_packs

#: A pack written as AnimateDiff-Evolved and ComfyUI's own ModelSamplingDiscrete node write it.
PACK = '''
import comfy.model_sampling


class PackModelSampling:
    CATEGORY = "test/pack"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "sampling": (["eps", "v_prediction", "x0"],),
                             "zsnr": ("BOOLEAN", {"default": False})}}

    def patch(self, model, sampling, zsnr):
        kind = {"eps": comfy.model_sampling.EPS, "v_prediction": comfy.model_sampling.V_PREDICTION,
                "x0": comfy.model_sampling.X0}[sampling]

        class ModelSamplingAdvanced(comfy.model_sampling.ModelSamplingDiscrete, kind):
            pass

        patched = model.clone()
        patched.add_object_patch("model_sampling", ModelSamplingAdvanced(model.model.model_config, zsnr=zsnr))
        return (patched,)


class PackPredictionKind:
    CATEGORY = "test/pack"
    FUNCTION = "check"
    RETURN_TYPES = ("STRING",)
    OUTPUT_NODE = True
    seen = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def check(self, model):
        sampling = model.get_model_object("model_sampling")
        ms = comfy.model_sampling
        PackPredictionKind.seen.append({name: isinstance(sampling, getattr(ms, name)) for name in
                                        ("EPS", "V_PREDICTION", "X0", "ModelSamplingDiscrete", "EDM", "CONST")})
        return {"ui": {}, "result": ("",)}


NODE_CLASS_MAPPINGS = {"PackModelSampling": PackModelSampling, "PackPredictionKind": PackPredictionKind}
'''


@pytest.fixture
def studio(pack_studio):
    target = pack_studio.base / "custom_nodes"
    target.mkdir(exist_ok=True)
    (target / "model_sampling_pack.py").write_text(PACK)
    reports = load_custom_packs([target], pack_studio.registry, whitelist={"model_sampling_pack"},
                                host=pack_studio.host)
    reports += pack_studio.load("sampler_pack.py")  # LatentStash
    assert all(report.loaded for report in reports), [report.error for report in reports]
    return pack_studio


def _prompt(model_node: dict | None, sampler="euler_ancestral", scheduler="karras") -> dict:
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd1.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red square", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["7", 0] if model_node else ["1", 0], "seed": 7, "steps": 4, "cfg": 6.0,
            "sampler_name": sampler, "scheduler": scheduler, "denoise": 1.0,
            "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0]}},
        "6": {"class_type": "LatentStash", "inputs": {"samples": ["5", 0], "key": "out"}},
    }
    if model_node:
        model_node["inputs"]["model"] = ["1", 0]
        prompt["7"] = model_node
    return prompt


def _latent(studio, prompt) -> torch.Tensor:
    studio.run(prompt)
    return studio.registry.get("LatentStash").node_class.seen["out"]


def _pack_sampling(sampling="eps", zsnr=False) -> dict:
    return {"class_type": "PackModelSampling", "inputs": {"sampling": sampling, "zsnr": zsnr}}


def _weft_sampling(sampling="eps", zsnr=False) -> dict:
    return {"class_type": "ModelSamplingDiscrete", "inputs": {"sampling": sampling, "zsnr": zsnr}}


def test_pack_built_eps_sampling_samples_as_the_unpatched_model(studio):
    plain = _latent(studio, _prompt(None))
    patched = _latent(studio, _prompt(_pack_sampling("eps")))
    assert torch.equal(plain, patched)


@pytest.mark.parametrize("sampling,zsnr", [("v_prediction", False), ("eps", True)])
def test_pack_built_sampling_equals_weft_model_sampling_discrete(studio, sampling, zsnr):
    ours = _latent(studio, _prompt(_weft_sampling(sampling, zsnr), sampler="euler", scheduler="normal"))
    theirs = _latent(studio, _prompt(_pack_sampling(sampling, zsnr), sampler="euler", scheduler="normal"))
    assert torch.equal(ours, theirs)
    plain = _latent(studio, _prompt(None, sampler="euler", scheduler="normal"))
    assert not torch.equal(plain, theirs)


def test_isinstance_on_weft_and_pack_samplings(studio):
    seen = studio.registry.get("PackPredictionKind").node_class.seen
    seen.clear()
    loader = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd1.safetensors"}}}
    for patch in (None, _weft_sampling("v_prediction"), _weft_sampling("lcm"), _pack_sampling("x0")):
        prompt = dict(loader, **{"9": {"class_type": "PackPredictionKind", "inputs": {"model": ["1", 0]}}})
        if patch is not None:
            patch["inputs"]["model"] = ["1", 0]
            prompt["7"], prompt["9"]["inputs"]["model"] = patch, ["7", 0]
        studio.run(prompt)
    plain, v, lcm, x0 = seen
    assert plain == {"EPS": True, "V_PREDICTION": False, "X0": False, "ModelSamplingDiscrete": True,
                     "EDM": False, "CONST": False}
    assert v["V_PREDICTION"] and v["EPS"] and v["ModelSamplingDiscrete"] and not v["X0"]  # V is an EPS, as in ComfyUI
    assert lcm["EPS"] and lcm["ModelSamplingDiscrete"] and not lcm["V_PREDICTION"]
    assert x0["X0"] and x0["EPS"] and not x0["V_PREDICTION"]


def test_discrete_schedule_matches_weft_tables(pack_studio):
    import comfy.model_sampling as ms

    class Sampling(ms.ModelSamplingDiscrete, ms.EPS):
        pass

    ours, weft = Sampling(), model_sampling_for_family("sd1", "eps")
    assert torch.equal(ours.sigmas, weft.sigmas) and torch.equal(ours.log_sigmas, weft.schedule.log_sigmas)
    sigmas = torch.tensor([14.6, 3.0, 0.5, 0.03])
    assert torch.equal(ours.timestep(sigmas), weft.timestep(sigmas))
    timesteps = torch.tensor([0.0, 10.5, 500.25, 999.0])
    assert torch.equal(ours.sigma(timesteps), weft.sigma(timesteps))
    assert ours.percent_to_sigma(0.3) == weft.percent_to_sigma(0.3)
    assert ours.percent_to_sigma(0.0) > 1e8 and ours.percent_to_sigma(1.0) == 0.0
    x, sigma = torch.randn(2, 4, 8, 8), torch.tensor([2.0, 0.7])
    assert torch.equal(ours.calculate_input(sigma, x), weft.calculate_input(sigma, x))
    assert torch.equal(ours.calculate_denoised(sigma, x, x * 3), weft.calculate_denoised(sigma, x, x * 3))
    assert torch.equal(ours.noise_scaling(sigma[:1], x, x * 2, True), weft.noise_scaling(sigma[:1], x, x * 2, True))
    assert ours.is_max_denoise(ours.sigmas.flip(0)) and not ours.is_max_denoise(torch.tensor([1.0, 0.0]))
    assert ours.sigma_data == 1.0 and ours.num_timesteps == 1000

    zsnr = Sampling(zsnr=True)
    assert torch.equal(zsnr.sigmas, discrete_model_sampling("sd1", "eps", zsnr=True).sigmas)


def test_schedule_settings_and_sigma_edits(pack_studio):
    import comfy.model_sampling as ms

    class Sampling(ms.ModelSamplingDiscrete, ms.V_PREDICTION):
        pass

    class X4Config:  # ComfyUI's SD_X4Upscaler settings
        sampling_settings = {"linear_start": 0.0001, "linear_end": 0.02}

    x4 = model_sampling_for_family("sd_x4", "v")
    assert torch.equal(Sampling(X4Config()).sigmas, x4.sigmas)

    class SqrtLinear:
        sampling_settings = {"beta_schedule": "sqrt_linear"}

    betas = torch.linspace(0.00085, 0.012, 1000, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - betas, 0)
    torch.testing.assert_close(Sampling(SqrtLinear()).sigmas, ((1 - alpha_bar) / alpha_bar).sqrt().float())

    given = Sampling()
    given._register_schedule(given_betas=betas)
    torch.testing.assert_close(given.sigmas, Sampling(SqrtLinear()).sigmas)

    # What AnimateDiff-Evolved does: deep-copy, average two tables, set_sigmas; the copy moves alone.
    original = Sampling()
    edited = copy.deepcopy(original)
    edited.set_sigmas((original.sigmas + given.sigmas) / 2)
    assert torch.equal(edited.sigmas, (original.sigmas + given.sigmas) / 2)
    assert float(original.sigma_max) < float(given.sigma_max)
    assert edited.timestep(edited.sigmas[5:6]).item() == 5
    assert torch.equal(edited.sigma(torch.tensor([5.0])), edited.sigmas[5:6])

    class Cosine:
        sampling_settings = {"beta_schedule": "cosine"}

    from _weft_absent import NotInWeftError

    with pytest.raises(NotInWeftError, match="cosine"):
        Sampling(Cosine())


def test_samplings_of_other_families_are_placeholders(pack_studio):
    import comfy.model_sampling as ms
    from _weft_absent import NotInWeftError

    class EDMSampling(ms.ModelSamplingDiscrete, ms.EDM):
        pass

    with pytest.raises(NotInWeftError, match=r"comfy\.model_sampling\.EDM"):
        EDMSampling()
    for name in ("ModelSamplingContinuousEDM", "ModelSamplingContinuousV", "ModelSamplingDiscreteFlow",
                 "ModelSamplingFlux", "StableCascadeSampling", "ModelSamplingDiscreteEDM", "CONST"):
        with pytest.raises(NotInWeftError, match=name):
            getattr(ms, name)()
    assert ms.time_snr_shift(3.0, 0.5) == pytest.approx(0.75) and ms.time_snr_shift(1.0, 0.3) == 0.3
    assert ms.flux_time_shift(0.0, 1.0, 0.5) == pytest.approx(0.5)
