"""nodes.sampling: KSampler / KSamplerAdvanced — ComfyUI's schema, the glue to ldm.sampling,
seeds and batch_index, interrupts, progress and previews."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from graph.context import Interrupted
from graph.registry import NodeRegistry
from ldm.networks.taesd import taesd_decoder
from ldm.sampling.from_handle import guided_model
from ldm.sampling.hooks import SamplingHooks
from ldm.sampling.noise import prepare_noise
from ldm.sampling.sample import common_ksampler
from nodes import sampling
from tests.nodes.sampling_support import RecordingEngine, RecordingUNet, make_runner
from tests.nodes.sampling_support import one_torch_thread, sd1, tiny_sd1  # noqa: F401 (fixtures)

COMFYUI_SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "exp_heun_2_x0",
    "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm",
    "lcm", "ipndm", "ipndm_v", "deis", "cfgpp_ud10_ab", "res_multistep", "res_multistep_cfg_pp",
    "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
    "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2"]
COMFYUI_SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
                      "linear_quadratic", "kl_optimal"]


def cond(value: float = 1.0, tokens: int = 77, width: int = 32):
    return [[torch.full((1, tokens, width), value), {}]]


def test_schema_is_comfyuis():
    registry = NodeRegistry()
    assert registry.register_mappings(sampling.NODE_CLASS_MAPPINGS, sampling.NODE_DISPLAY_NAME_MAPPINGS,
                                      core=True) == {}
    info = registry.node_info("KSampler")
    assert info["input_order"]["required"] == ["model", "seed", "steps", "cfg", "sampler_name", "scheduler",
                                               "positive", "negative", "latent_image", "denoise"]
    required = info["input"]["required"]
    assert required["seed"][1]["max"] == 0xFFFFFFFFFFFFFFFF and required["seed"][1]["control_after_generate"]
    assert {k: required["steps"][1][k] for k in ("default", "min", "max")} == {"default": 20, "min": 1, "max": 10000}
    assert {k: required["cfg"][1][k] for k in ("default", "min", "max", "step", "round")} == {
        "default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}
    # ComfyUI's names in its order (comfy.samplers.SAMPLER_NAMES), then the paper's samplers Weft adds
    assert required["sampler_name"][0] == COMFYUI_SAMPLERS + ["ddim_eta", "plms"]
    assert required["scheduler"][0] == COMFYUI_SCHEDULERS
    assert info["output"] == ["LATENT"] and info["category"] == "model/sampling"
    advanced = registry.node_info("KSamplerAdvanced")
    assert advanced["display_name"] == "KSampler (Advanced)"
    assert advanced["input_order"]["required"] == [
        "model", "add_noise", "noise_seed", "steps", "cfg", "sampler_name", "scheduler", "positive", "negative",
        "latent_image", "start_at_step", "end_at_step", "return_with_leftover_noise"]
    assert advanced["category"] == "model/sampling"
    assert advanced["input"]["required"]["add_noise"] == (["enable", "disable"], {"advanced": True})
    assert advanced["input"]["required"]["return_with_leftover_noise"] == (["disable", "enable"], {"advanced": True})
    assert advanced["input"]["required"]["end_at_step"][1] == {"default": 10000, "min": 0, "max": 10000,
                                                               "advanced": True}
    assert advanced["input"]["required"]["start_at_step"][1]["advanced"] is True


def test_ksampler_is_common_ksampler_on_the_handle(tmp_path, sd1):
    model, clip, _ = sd1
    positive, negative = clip.encode_from_tokens_scheduled(clip.tokenize("a cat")), \
        clip.encode_from_tokens_scheduled(clip.tokenize(""))
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    run = make_runner(tmp_path)
    [out] = run(sampling.KSampler().sample, model, 3, 3, 5.0, "dpmpp_2m", "karras", positive, negative, latent, 0.8)
    direct = common_ksampler(guided_model(model, model.unet), 3, 3, 5.0, "dpmpp_2m", "karras", positive, negative,
                             latent, denoise=0.8)
    assert torch.equal(out["samples"], direct["samples"])
    assert latent["samples"].abs().sum() == 0 and out is not latent  # the input LATENT is not changed


def test_batch_index_picks_the_noise_draw(tmp_path):
    engine = RecordingEngine()
    run = make_runner(tmp_path, engine)
    model = _fake_handle()
    latent = {"samples": torch.zeros(1, 4, 8, 8), "batch_index": [2]}
    [out] = run(sampling.KSampler().sample, model, 77, 1, 1.0, "euler", "normal", cond(), cond(0.0), latent)
    assert out["batch_index"] == [2]
    expected = prepare_noise(torch.zeros(3, 4, 8, 8), 77)[2:3]
    # txt2img starts at noise·sqrt(1+σ²); the eps network sees it divided by the same
    torch.testing.assert_close(engine.unet.inputs[0], expected, atol=1e-5, rtol=1e-5)
    assert engine.loans == 1


def test_empty_latent_channels_fit_the_model(tmp_path):
    engine = RecordingEngine(RecordingUNet(out_channels=16))
    run = make_runner(tmp_path, engine)
    model = _fake_handle(channels=16)
    [out] = run(sampling.KSampler().sample, model, 1, 1, 1.0, "euler", "normal", cond(), cond(0.0),
                {"samples": torch.zeros(2, 4, 8, 8)})
    assert out["samples"].shape == (2, 16, 8, 8) and engine.unet.inputs[0].shape == (2, 16, 8, 8)


def test_ksampler_advanced_slices_and_disables_noise(tmp_path):
    engine = RecordingEngine()
    run = make_runner(tmp_path, engine)
    model = _fake_handle()
    latent = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))}
    node = sampling.KSamplerAdvanced()
    [out] = run(node.sample, model, "disable", 5, 4, 1.0, "euler", "normal", cond(), cond(0.0), latent, 2, 10000,
                "disable")
    assert len(engine.unet.inputs) == 2  # steps 2 and 3 of 4
    # no noise added: the first input is the (scaled) latent itself at the third sigma
    sigma = float(sampling_sigmas(model, 4)[2])
    torch.testing.assert_close(engine.unet.inputs[0], latent["samples"] / (sigma ** 2 + 1) ** 0.5)
    [untouched] = run(node.sample, model, "enable", 5, 4, 1.0, "euler", "normal", cond(), cond(0.0), latent, 4,
                      10000, "disable")
    assert torch.equal(untouched["samples"], latent["samples"]) and len(engine.unet.inputs) == 2


def test_progress_and_latent2rgb_previews_every_step(tmp_path, sd1):
    model, _, _ = sd1
    run = make_runner(tmp_path, preview_size=512)
    run(sampling.KSampler().sample, model, 1, 3, 1.0, "euler", "normal", cond(), cond(0.0),
        {"samples": torch.zeros(2, 4, 8, 8)})
    assert [(v, t) for v, t, _ in run.progress] == [(1, 3), (2, 3), (3, 3)]
    assert all(isinstance(p, Image.Image) and p.size == (8, 8) for _, _, p in run.progress)


def test_no_previews_when_disabled_and_taesd_when_its_file_is_there(tmp_path, sd1):
    model, _, _ = sd1
    run = make_runner(tmp_path / "a", preview_method="none")
    run(sampling.KSampler().sample, model, 1, 2, 1.0, "euler", "normal", cond(), cond(0.0),
        {"samples": torch.zeros(1, 4, 8, 8)})
    assert [p for _, _, p in run.progress] == [None, None]
    run = make_runner(tmp_path / "b", preview_method="taesd")
    from safetensors.torch import save_file
    vae_approx = run.services.folders.model_roots("vae_approx")[0]
    save_file(taesd_decoder().state_dict(), str(vae_approx / "taesd_decoder.safetensors"))
    run(sampling.KSampler().sample, model, 1, 2, 1.0, "euler", "normal", cond(), cond(0.0),
        {"samples": torch.zeros(1, 4, 8, 8)})
    assert [p.size for _, _, p in run.progress] == [(64, 64), (64, 64)]


def test_interrupt_stops_sampling_and_gives_the_weights_back(tmp_path, sd1):
    model, _, _ = sd1
    key = next(k for k in model.unet.state_dict() if k.endswith("attn1.to_q.weight"))
    original = model.unet.state_dict()[key].clone()
    patched = model.clone()
    from ldm.lora.patches import LoraAdapter, WeightPatch
    rank = 2
    out_f, in_f = original.shape
    patched.patches = {key: [WeightPatch(1.0, LoraAdapter(torch.ones(out_f, rank), torch.ones(rank, in_f)))]}
    run = make_runner(tmp_path)
    run.interrupt_after = 2
    with pytest.raises(Interrupted):
        run(sampling.KSampler().sample, patched, 1, 10, 1.0, "euler", "normal", cond(), cond(0.0),
            {"samples": torch.zeros(1, 4, 8, 8)})
    assert len(run.progress) == 2
    # The engine keeps the run's (patched) device copy loaded for the next use; the stored
    # weights are never written, and unloading puts them back.
    assert not run.services.engine.memory.find(model.unet).users
    run.services.engine.unload_all()
    assert torch.equal(model.unet.state_dict()[key], original)


def _fake_handle(channels: int = 4):
    from types import SimpleNamespace

    from ldm.latent_formats import LatentFormat

    latent_format = LatentFormat("test", channels, 1.0, ((0.1, 0.2, 0.3),) * channels)
    return SimpleNamespace(family="sd1", prediction="eps", hooks=SamplingHooks(), latent_format=latent_format,
                           device=torch.device("cpu"), dtype=torch.float32)


def sampling_sigmas(model, steps):
    from ldm.sampling.from_handle import model_sampling_of
    from ldm.sampling.schedulers import calculate_sigmas

    return calculate_sigmas(model_sampling_of(model), "normal", steps)
