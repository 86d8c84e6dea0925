"""nodes.guidance_patches and the continuous model samplings of nodes.model_patches: ComfyUI's
schemas, patches on MODEL clones, and their effect on real sampling runs of a tiny SD1 model (each
family of hook — cfg function, pre-cfg, post-cfg, model sampling, guider — changes the result,
and its neutral setting reproduces the unpatched run)."""

from __future__ import annotations

import math

import pytest
import torch

from graph.registry import NodeRegistry
from ldm.model import load_checkpoint
from ldm.sampling.from_handle import model_sampling_of
from ldm.tiny import write_tiny_checkpoint
from nodes import custom_sampling as cs
from nodes import guidance_patches as gp
from nodes import model_patches, sampling
from tests.nodes.sampling_support import FP32_CPU, RecordingEngine, RecordingUNet, make_runner
from tests.nodes.sampling_support import one_torch_thread, sd1, tiny_sd1  # noqa: F401 (fixtures)


def test_schema():
    registry = NodeRegistry()
    assert registry.register_mappings(gp.NODE_CLASS_MAPPINGS, gp.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    assert registry.register_mappings(model_patches.NODE_CLASS_MAPPINGS, core=True) == {}
    info = registry.object_info()
    assert info["Epsilon Scaling"]["input"]["required"]["scaling_factor"][1] == {
        "default": 1.005, "min": 0.5, "max": 1.5, "step": 0.001, "display": "number"}
    assert info["APG"]["display_name"] == "Adaptive Projected Guidance"
    assert [info["APG"]["input"]["required"][k][1]["default"] for k in ("eta", "norm_threshold", "momentum")] == [
        1.0, 5.0, 0.0]
    assert info["APG"]["input"]["required"]["momentum"][1]["min"] == -5.0
    assert info["CFGNorm"]["input"]["optional"]["pre_cfg"][1]["default"] is False
    assert info["CFGNorm"]["output_name"] == ["patched_model"] and info["CFGNorm"]["experimental"]
    assert info["CFGZeroStar"]["output_name"] == ["patched_model"]
    assert info["CFGOverride"]["input_order"]["required"] == ["model", "cfg", "start_percent", "end_percent"]
    assert info["CFGOverride"]["input"]["required"]["cfg"][1]["default"] == 1.0
    assert info["TemporalScoreRescaling"]["display_name"] == "TSR - Temporal Score Rescaling"
    assert info["TemporalScoreRescaling"]["input"]["required"]["tsr_k"][1]["default"] == 0.95
    assert info["FreSca"]["input"]["required"]["freq_cutoff"][1] == {
        "default": 20, "min": 1, "max": 10000, "step": 1,
        "tooltip": "Number of frequency indices around center to consider as low-frequency"}
    assert info["DifferentialDiffusion"]["input"]["optional"]["strength"][1] == {
        "default": 1.0, "min": 0.0, "max": 1.0, "step": 0.0001}
    assert info["PerpNeg"]["deprecated"] and info["PerpNeg"]["display_name"].startswith("Perp-Neg (DEPRECATED")
    assert info["PerpNeg"]["category"] == info["PerpNegGuider"]["category"] == "experimental"
    assert info["DifferentialDiffusion"]["category"] == "experimental"
    assert info["CFGOverride"]["category"] == info["DualModelGuider"]["category"] == "model/sampling/guiders"
    assert info["PerpNegGuider"]["input_order"]["required"] == [
        "model", "positive", "negative", "empty_conditioning", "cfg", "neg_scale"]
    assert info["PerpNegGuider"]["output"] == ["GUIDER"]
    assert info["DualModelGuider"]["input_order"] == {"required": ["model", "positive", "cfg"],
                                                      "optional": ["model_negative", "negative"]}
    assert info["DualModelGuider"]["input"]["required"]["cfg"][1]["default"] == 4.0
    assert info["TCFG"]["display_name"] == "Tangential Damping CFG"
    assert info["Mahiro"]["category"] == "_for_testing"
    edm = info["ModelSamplingContinuousEDM"]["input"]["required"]
    assert edm["sampling"][0] == ["v_prediction", "edm", "edm_playground_v2.5", "eps", "cosmos_rflow"]
    assert (edm["sigma_max"][1]["default"], edm["sigma_min"][1]["default"]) == (120.0, 0.002)
    v = info["ModelSamplingContinuousV"]["input"]["required"]
    assert v["sampling"][0] == ["v_prediction"]
    assert (v["sigma_max"][1]["default"], v["sigma_min"][1]["default"]) == (500.0, 0.03)


@pytest.mark.parametrize("node,args,field", [
    (gp.CFGZeroStar, (), "post_cfg_functions"), (gp.Mahiro, (), "post_cfg_functions"),
    (gp.EpsilonScaling, (1.01,), "post_cfg_functions"), (gp.TemporalScoreRescaling, (0.9, 1.0), "post_cfg_functions"),
    (gp.CFGNorm, (1.0,), "post_cfg_functions"), (gp.TCFG, (), "pre_cfg_functions"),
    (gp.APG, (1.0, 5.0, 0.0), "pre_cfg_functions"), (gp.FreSca, (1.0, 1.25, 20), "pre_cfg_functions"),
    (gp.DifferentialDiffusion, (), "denoise_mask_function"), (gp.CFGOverride, (2.0, 0.0, 1.0), "cfg_overrides")])
def test_patches_change_a_clone_only(sd1, node, args, field):
    model, _, _ = sd1
    [patched] = getattr(node(), node.FUNCTION)(model, *args)
    assert patched is not model and patched.unet is model.unet
    assert getattr(patched.hooks, field) and not getattr(model.hooks, field)


def _texts(clip):
    def encode(text):
        return clip.encode_from_tokens_scheduled(clip.tokenize(text))
    return encode("a red cat"), encode("blurry"), encode("")


def _ksample(run, model, positive, negative, cfg=7.0, latent=None, steps=3, scheduler="normal"):
    latent = latent if latent is not None else {"samples": torch.zeros(1, 4, 8, 8)}
    [out] = run(sampling.KSampler().sample, model, 11, steps, cfg, "euler", scheduler, positive, negative, latent)
    return out["samples"]


def _custom(run, model, guider, steps=3):
    [noise] = cs.RandomNoise().get_noise(5)
    [sampler] = cs.KSamplerSelect().get_sampler("euler")
    [sigmas] = cs.BasicScheduler().get_sigmas(model, "normal", steps, 1.0)
    output, _ = run(cs.SamplerCustomAdvanced().sample, noise, guider, sampler, sigmas,
                    {"samples": torch.zeros(1, 4, 8, 8)})
    return output["samples"]


def _close(a, b):
    # separate model calls versus one batched call differ by float32 rounding; latents are ~100
    torch.testing.assert_close(a, b, atol=2e-3, rtol=1e-4)


def _differ(a, b):
    assert (a - b).abs().max() > 0.1


def test_cfg_function_patches_in_sampling(tmp_path, sd1):
    model, clip, _ = sd1
    positive, negative, empty = _texts(clip)
    run = make_runner(tmp_path)
    plain = _ksample(run, model, positive, negative)
    # Perp-Neg with neg_scale 0 around an "empty" prompt that is the negative is plain CFG.
    _close(_ksample(run, gp.PerpNeg().patch(model, negative, 0.0)[0], positive, negative), plain)
    _differ(_ksample(run, gp.PerpNeg().patch(model, empty, 1.0)[0], positive, negative), plain)
    # CFGNorm before the combination: strength 0 blends all the way back to plain CFG.
    _close(_ksample(run, gp.CFGNorm().patch(model, 0.0, pre_cfg=True)[0], positive, negative), plain)
    _differ(_ksample(run, gp.CFGNorm().patch(model, 1.0, pre_cfg=True)[0], positive, negative), plain)


def test_pre_cfg_patches_in_sampling(tmp_path, sd1):
    model, clip, _ = sd1
    positive, negative, _ = _texts(clip)
    run = make_runner(tmp_path)
    plain = _ksample(run, model, positive, negative)
    _close(_ksample(run, gp.FreSca().patch(model, 1.0, 1.0, 20)[0], positive, negative), plain)
    _differ(_ksample(run, gp.FreSca().patch(model, 1.0, 1.5, 1)[0], positive, negative), plain)
    _differ(_ksample(run, gp.TCFG().patch(model)[0], positive, negative), plain)
    # APG with eta 1 and no cap or momentum is CFG one scale higher: cond + cfg·(cond - uncond).
    _close(_ksample(run, gp.APG().patch(model, 1.0, 0.0, 0.0)[0], positive, negative, cfg=6.0),
           _ksample(run, model, positive, negative, cfg=7.0))


def test_post_cfg_patches_in_sampling(tmp_path, sd1):
    model, clip, _ = sd1
    positive, negative, _ = _texts(clip)
    run = make_runner(tmp_path)
    plain = _ksample(run, model, positive, negative)
    _close(_ksample(run, gp.EpsilonScaling().patch(model, 1.0)[0], positive, negative), plain)
    _differ(_ksample(run, gp.EpsilonScaling().patch(model, 1.1)[0], positive, negative), plain)
    _close(_ksample(run, gp.TemporalScoreRescaling().patch(model, 1.0, 1.0)[0], positive, negative), plain)
    _differ(_ksample(run, gp.TemporalScoreRescaling().patch(model, 0.5, 1.0)[0], positive, negative), plain)
    _differ(_ksample(run, gp.CFGZeroStar().patch(model)[0], positive, negative), plain)
    _differ(_ksample(run, gp.Mahiro().patch(model)[0], positive, negative), plain)
    _differ(_ksample(run, gp.CFGNorm().patch(model, 0.5)[0], positive, negative), plain)
    # Identical prompts: CFG-Zero*'s s* is 1 and Mahiro's prompts agree, so both keep CFG.
    same = _ksample(run, model, positive, positive)
    _close(_ksample(run, gp.CFGZeroStar().patch(model)[0], positive, positive), same)
    _close(_ksample(run, gp.Mahiro().patch(model)[0], positive, positive), same)


class _BatchRecordingUNet(RecordingUNet):
    """Records the batch size and timesteps of every UNet call."""

    def __init__(self):
        super().__init__()
        self.batches: list[int] = []
        self.timesteps: list[torch.Tensor] = []

    def __call__(self, x, timesteps, context=None, y=None, **kwargs):
        self.batches.append(x.shape[0])
        self.timesteps.append(timesteps.detach().clone())
        return super().__call__(x, timesteps, context, y, **kwargs)


def test_cfg_override_replaces_cfg_within_its_range(tmp_path, sd1):
    model, clip, _ = sd1
    positive, negative, _ = _texts(clip)
    run = make_runner(tmp_path)
    everywhere = gp.CFGOverride().patch(model, 1.0, 0.0, 1.0)[0]
    _close(_ksample(run, everywhere, positive, negative, cfg=7.0), _ksample(run, model, positive, negative, cfg=1.0))
    # Later overrides (nearer the sampler) win where ranges overlap.
    stacked = gp.CFGOverride().patch(gp.CFGOverride().patch(model, 1.0, 0.0, 1.0)[0], 3.0, 0.0, 1.0)[0]
    _close(_ksample(run, stacked, positive, negative, cfg=7.0), _ksample(run, model, positive, negative, cfg=3.0))
    # cfg 1 for the second half only: the uncond batch disappears there (cfg-1 optimisation).
    engine = RecordingEngine(unet=_BatchRecordingUNet())
    half = gp.CFGOverride().patch(model, 1.0, 0.5, 1.0)[0]
    _ksample(make_runner(tmp_path, engine), half, positive, negative, cfg=7.0, steps=6)
    assert engine.unet.batches == [2, 2, 2, 1, 1, 1]


def test_continuous_model_sampling_reaches_the_unet(tmp_path, sd1):
    model, clip, _ = sd1
    [edm] = model_patches.ModelSamplingContinuousEDM().patch(model, "edm", 80.0, 0.002)
    assert model.hooks.model_sampling is None
    assert math.isclose(float(model_sampling_of(edm).sigma_max), 80.0, rel_tol=1e-5)
    engine = RecordingEngine(unet=_BatchRecordingUNet())
    run = make_runner(tmp_path, engine)
    _ksample(run, edm, *_texts(clip)[:2], steps=2)
    first_t = engine.unet.timesteps[0][0]
    assert float(first_t) == pytest.approx(math.log(80.0) / 4, rel=1e-4)  # EDM's c_noise
    start = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(11))
    # from pure noise: noise·sqrt(1+σ²), then c_in = 1/sqrt(σ² + 0.25)
    expected = start * (1 + 80.0 ** 2) ** 0.5 / (80.0 ** 2 + 0.25) ** 0.5
    torch.testing.assert_close(engine.unet.inputs[0][:1], expected, atol=1e-4, rtol=1e-4)

    [v] = model_patches.ModelSamplingContinuousV().patch(model, "v_prediction", 500.0, 0.03)
    engine = RecordingEngine(unet=_BatchRecordingUNet())
    _ksample(make_runner(tmp_path, engine), v, *_texts(clip)[:2], steps=2)
    assert float(engine.unet.timesteps[0][0]) == pytest.approx(math.atan(500.0) / math.pi * 2, rel=1e-5)

    [playground] = model_patches.ModelSamplingContinuousEDM().patch(model, "edm_playground_v2.5", 80.0, 0.002)
    assert playground.latent_format.name == "SDXL_Playground_2_5" and model.latent_format.name == "SD15"


def test_continuous_sampling_changes_a_real_run(tmp_path, sd1):
    model, clip, _ = sd1
    positive, negative, _ = _texts(clip)
    run = make_runner(tmp_path)
    plain = _ksample(run, model, positive, negative)
    eps = model_patches.ModelSamplingContinuousEDM().patch(model, "eps", 14.614642, 0.0291675)[0]
    out = _ksample(run, eps, positive, negative)
    assert torch.isfinite(out).all()
    _differ(out, plain)  # same parameterisation, continuous timesteps and sigmas


def _inpaint_latent(mask):
    samples = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    return {"samples": samples, "noise_mask": mask}


def test_differential_diffusion_on_an_inpaint_latent(tmp_path, sd1):
    model, clip, _ = sd1
    positive, negative, _ = _texts(clip)
    run = make_runner(tmp_path)
    [dd] = gp.DifferentialDiffusion().apply(model)
    gradient = torch.linspace(0.0, 1.0, 8).reshape(1, 1, 8).expand(1, 8, 8).clone()
    soft = _inpaint_latent(gradient)

    def sample(patched, latent):
        # "simple" ends its steps above the model's smallest sigma: there the threshold reaches 0
        # and, as in ComfyUI, the whole latent would be denoised in that last step.
        return _ksample(run, patched, positive, negative, latent=latent, scheduler="simple")

    plain = sample(model, soft)
    differential = sample(dd, soft)
    _differ(differential, plain)
    # mask 0 stays the original latent; a binary mask is unchanged by the per-step threshold
    torch.testing.assert_close(differential[..., 0], soft["samples"][..., 0])
    binary = _inpaint_latent((gradient > 0.5).float())
    _close(sample(dd, binary), sample(model, binary))
    # below 1 the binary mask is blended with the soft one; 0 counts as "not set" (ComfyUI's
    # ``if strength and strength < 1``), so it is the full effect
    half = sample(gp.DifferentialDiffusion().apply(model, 0.5)[0], soft)
    _differ(half, differential)
    _differ(half, plain)
    _close(sample(gp.DifferentialDiffusion().apply(model, 0.0)[0], soft), differential)


def test_perp_neg_guider_matches_the_patch_and_cfg(tmp_path, sd1):
    model, clip, _ = sd1
    positive, negative, empty = _texts(clip)
    run = make_runner(tmp_path)
    [guider] = gp.PerpNegGuider().get_guider(model, positive, negative, empty, 6.0, 0.7)
    perp = _custom(run, model, guider)
    # the deprecated model patch computes the same combination (empty prompt in an extra call)
    [patched] = gp.PerpNeg().patch(model, empty, 0.7)
    _close(perp, _custom(run, model, cs.CFGGuider().get_guider(patched, positive, negative, 6.0)[0]))
    _differ(perp, _custom(run, model, cs.CFGGuider().get_guider(model, positive, negative, 6.0)[0]))
    # neg_scale 0: CFG of the positive against the empty prompt
    [neutral] = gp.PerpNegGuider().get_guider(model, positive, negative, empty, 6.0, 0.0)
    _close(_custom(run, model, neutral), _custom(run, model, cs.CFGGuider().get_guider(model, positive, empty, 6.0)[0]))


@pytest.fixture
def other_sd1(tmp_path):
    return load_checkpoint(write_tiny_checkpoint(tmp_path / "other.safetensors", "sd1", seed=1), compute=FP32_CPU)


def test_dual_model_guider(tmp_path, sd1, other_sd1):
    model, clip, _ = sd1
    positive, negative, _ = _texts(clip)
    run = make_runner(tmp_path)
    cfg_run = _custom(run, model, cs.CFGGuider().get_guider(model, positive, negative, 4.0)[0])
    [same] = gp.DualModelGuider().get_guider(model, positive, 4.0, model_negative=model.clone(), negative=negative)
    _close(_custom(run, model, same), cfg_run)
    [single] = gp.DualModelGuider().get_guider(model, positive, 4.0, negative=negative)
    _close(_custom(run, model, single), cfg_run)
    other, _, _ = other_sd1
    [dual] = gp.DualModelGuider().get_guider(model, positive, 4.0, model_negative=other, negative=negative)
    _differ(_custom(run, model, dual), cfg_run)
    # at cfg 1 only the positive model runs
    [one] = gp.DualModelGuider().get_guider(model, positive, 1.0, model_negative=other, negative=negative)
    _close(_custom(run, model, one), _custom(run, model, cs.BasicGuider().get_guider(model, positive)[0]))


def test_guiders_run_the_model_predict_noise_wrappers(tmp_path, sd1, other_sd1):
    # ComfyUI's guiders all inherit CFGGuider's outer_predict_noise: a MODEL's predict_noise
    # wrappers (EasyCache, LazyCache, packs') wrap every guided prediction.
    model, clip, _ = sd1
    positive, negative, empty = _texts(clip)
    run = make_runner(tmp_path)
    seen = []

    def recording(executor, x, sigma, model_options, seed):
        seen.append((type(executor.class_obj).__name__, seed, "sampler_cfg_function" in model_options))
        return executor(x, sigma, model_options, seed)

    wrapped = model.clone()
    wrapped.hooks.predict_noise_wrappers.append(recording)
    wrapped.hooks.cfg_function = lambda args: args["uncond"] + (args["cond"] - args["uncond"]) * args["cond_scale"]
    other, _, _ = other_sd1
    guiders = {
        "GuidedDenoiser": cs.CFGGuider().get_guider(wrapped, positive, negative, 6.0)[0],
        "PerpNegDenoiser": gp.PerpNegGuider().get_guider(wrapped, positive, negative, empty, 6.0, 0.7)[0],
        "DualModelDenoiser": gp.DualModelGuider().get_guider(wrapped, positive, 4.0, model_negative=other,
                                                             negative=negative)[0],
        "DualCFGDenoiser": cs.DualCFGGuider().get_guider(wrapped, positive, empty, negative, 4.0, 2.0)[0]}
    for name, guider in guiders.items():
        seen.clear()
        _custom(run, model, guider)
        assert seen == [(name, 5, True)] * 3, name
