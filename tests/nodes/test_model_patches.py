"""nodes.model_patches: ModelSamplingDiscrete and RescaleCFG on MODEL clones."""

from __future__ import annotations

import torch

from graph.registry import NodeRegistry
from ldm.sampling.from_handle import model_sampling_of
from nodes import model_patches, sampling
from tests.nodes.sampling_support import RecordingEngine, make_runner
from tests.nodes.sampling_support import one_torch_thread, sd1, tiny_sd1  # noqa: F401 (fixtures)
from tests.nodes.test_sampling import cond


def test_schema():
    registry = NodeRegistry()
    assert registry.register_mappings(model_patches.NODE_CLASS_MAPPINGS, core=True) == {}
    info = registry.object_info()
    assert info["ModelSamplingDiscrete"]["input"]["required"]["sampling"][0] == [
        "eps", "v_prediction", "lcm", "x0", "img_to_img", "img_to_img_flow"]
    assert info["ModelSamplingDiscrete"]["input"]["required"]["zsnr"] == ("BOOLEAN", {"default": False,
                                                                                       "advanced": True})
    assert info["RescaleCFG"]["input"]["required"]["multiplier"][1] == {"default": 0.7, "min": 0.0, "max": 1.0,
                                                                         "step": 0.01}
    assert info["RescaleCFG"]["category"] == info["ModelSamplingDiscrete"]["category"] == "model/patch"


def test_model_sampling_discrete_patches_a_clone(sd1):
    model, _, _ = sd1
    [patched] = model_patches.ModelSamplingDiscrete().patch(model, "v_prediction", True)
    assert model_sampling_of(patched).prediction.name == "v"
    assert float(model_sampling_of(patched).sigma_max) > 4000  # zero terminal SNR
    assert model_sampling_of(model).prediction.name == "eps" and model.hooks.model_sampling is None
    assert patched.unet is model.unet  # weights shared
    [lcm] = model_patches.ModelSamplingDiscrete().patch(patched, "lcm", False)
    assert len(model_sampling_of(lcm).sigmas) == 50


def test_patched_sampling_is_used_by_ksampler(tmp_path, sd1):
    model, _, _ = sd1
    engine = RecordingEngine()
    run = make_runner(tmp_path, engine)
    [img2img] = model_patches.ModelSamplingDiscrete().patch(model, "img_to_img", False)
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    run(sampling.KSampler().sample, img2img, 3, 1, 1.0, "euler", "normal", cond(), cond(0.0), latent)
    start = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    sigma_max = float(model_sampling_of(img2img).sigma_max)
    # img_to_img feeds the unscaled state: noise·sqrt(1+σ²) reaches the network as it is
    torch.testing.assert_close(engine.unet.inputs[0], start * (1 + sigma_max ** 2) ** 0.5, atol=1e-4, rtol=1e-5)


def test_img_to_img_flow_starts_from_the_latent_and_reads_the_result_inverted(tmp_path, sd1):
    model, _, _ = sd1
    [flow] = model_patches.ModelSamplingDiscrete().patch(model, "img_to_img_flow", False)
    assert model_sampling_of(flow).prediction.name == "img_to_img_flow"
    latent = {"samples": torch.full((1, 4, 8, 8), 0.5)}
    outputs, inputs = [], []
    for seed in (3, 4):
        engine = RecordingEngine()
        run = make_runner(tmp_path, engine)
        [out] = run(sampling.KSampler().sample, flow, seed, 2, 1.0, "euler", "normal", cond(), cond(0.0), latent)
        outputs.append(out["samples"])
        inputs.append(engine.unet.inputs[0])
    # no noise is added: the network first sees the (scaled) latent itself, whatever the seed
    torch.testing.assert_close(inputs[0], inputs[1])
    torch.testing.assert_close(inputs[0], torch.full_like(inputs[0], 0.5 * 0.18215))
    # the recording UNet predicts x0 = 0; the sampled latent is read back as 1 - x0 (then unscaled)
    torch.testing.assert_close(outputs[0], torch.full_like(outputs[0], 1 / 0.18215))
    torch.testing.assert_close(outputs[0], outputs[1])


def test_rescale_cfg_installs_the_cfg_hook_on_a_clone(tmp_path, sd1):
    model, clip, _ = sd1
    [patched] = model_patches.RescaleCFG().patch(model, 0.7)
    assert patched.hooks.cfg_function is not None and model.hooks.cfg_function is None
    positive = clip.encode_from_tokens_scheduled(clip.tokenize("a cat"))
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(""))
    run = make_runner(tmp_path)
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    [plain] = run(sampling.KSampler().sample, model, 1, 2, 9.0, "euler", "normal", positive, negative, latent)
    [rescaled] = run(sampling.KSampler().sample, patched, 1, 2, 9.0, "euler", "normal", positive, negative, latent)
    [off] = run(sampling.KSampler().sample, model_patches.RescaleCFG().patch(model, 0.0)[0], 1, 2, 9.0, "euler",
                "normal", positive, negative, latent)
    assert not torch.allclose(plain["samples"], rescaled["samples"])
    torch.testing.assert_close(off["samples"], plain["samples"], atol=1e-4, rtol=1e-4)
