"""NaN / Inf results fail the job with a message that says why (ldm.finite), instead of a black image.

Tiny SD1 checkpoints with one non-finite weight in the UNet, the VAE or the text encoder run
ComfyUI's default prompt through the real executor; the job must fail at the node that produced the
numbers, naming the weight and what to try. A clean checkpoint still succeeds, and the checks'
own time is a negligible part of its run.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import ldm.sampling.sample
import ldm.vae
from graph.executor import Executor
from graph.folders import FolderPaths
from graph.registry import NodeRegistry
from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.finite import NonFiniteError, file_report, main as check_main, sampling_error
from ldm.model import build_vae, load_checkpoint
from ldm.tiny import tiny_vae_state_dict, write_tiny_checkpoint
from ldm.vae import VaeHandle
from nodes import register_builtin_nodes
from nodes.conditioning import CLIPTextEncode
from nodes.sampling import KSampler
from nodes.services import NodeOptions, Services
from nodes.vae import VAEDecode, VAEEncode
from tests.e2e.prompts import default_txt2img, node
from tests.nodes.sampling_support import make_runner
from tests.nodes.sampling_support import one_torch_thread, sd1, tiny_sd1  # noqa: F401 (fixtures)

UNET_KEY = "model.diffusion_model.input_blocks.0.0.weight"
VAE_DECODER_KEY = "first_stage_model.decoder.conv_out.weight"
VAE_ENCODER_KEY = "first_stage_model.encoder.conv_in.weight"
TEXT_KEY = "cond_stage_model.transformer.text_model.final_layer_norm.weight"


def _with_nan(source: Path, target: Path, key: str) -> Path:
    """A copy of ``source`` with one value of ``key`` set to NaN (as a corrupt download would)."""
    weights = load_file(str(source))
    broken = weights[key].clone()
    broken.view(-1)[0] = float("nan")
    weights[key] = broken
    save_file(weights, str(target))
    return target


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("non_finite")
    clean = write_tiny_checkpoint(folder / "clean.safetensors", "sd1", seed=0)
    for name, key in (("nan_unet", UNET_KEY), ("nan_vae", VAE_DECODER_KEY), ("nan_text", TEXT_KEY),
                      ("nan_encoder", VAE_ENCODER_KEY)):
        _with_nan(clean, folder / f"{name}.safetensors", key)
    return folder


@pytest.fixture
def run(tmp_path, checkpoints):
    """Execute a prompt on the fp32 CPU engine: ``(outcome, error event or None, output folder)``."""
    folders = FolderPaths.under(tmp_path)
    folders.ensure()
    folders.add_model_root("checkpoints", checkpoints, first=True)
    services = Services(folders=folders, options=NodeOptions(preview_method="latent2rgb", preview_size=64),
                        engine=Engine(detect_compute("cpu", force_dtype=torch.float32)))
    registry = NodeRegistry()
    register_builtin_nodes(registry)

    def execute(prompt: dict):
        events = []
        executor = Executor(registry, services=services, emit=lambda event, data: events.append((event, data)))
        outputs = [node_id for node_id, entry in prompt.items() if entry["class_type"] == "SaveImage"]
        outcome = executor.execute("p", prompt, outputs)
        errors = [data for event, data in events if event == "execution_error"]
        return outcome, (errors[-1] if errors else None), folders.output

    return execute


def _txt2img(ckpt: str) -> dict:
    return default_txt2img(ckpt, steps=3, size=64)


def test_a_clean_checkpoint_still_renders(run):
    outcome, error, output = run(_txt2img("clean.safetensors"))
    assert outcome.status == "success" and error is None
    assert list(output.glob("*.png"))


def test_nan_in_the_unet_fails_the_sampler_at_its_first_step(run):
    outcome, error, output = run(_txt2img("nan_unet.safetensors"))
    assert outcome.status == "error"
    assert error["node_type"] == "KSampler" and error["exception_type"] == "ldm.finite.NonFiniteError"
    message = error["exception_message"]
    assert message.startswith("Sampling (euler) produced NaN/Inf at step 1 of 3: ")
    assert "the UNet's weights (with any LoRA or merge applied) hold 1 NaN/Inf value in 1 tensor " \
           "(first: input_blocks.0.0.weight)" in message
    assert "python -m ldm.finite FILE" in message
    assert not list(output.glob("*.png"))  # no black image saved


def test_custom_sampling_fails_the_same_way(run):
    prompt = _txt2img("nan_unet.safetensors")
    del prompt["3"]
    prompt.update({
        "20": node("CFGGuider", model=["4", 0], positive=["6", 0], negative=["7", 0], cfg=8.0),
        "21": node("KSamplerSelect", sampler_name="dpmpp_2m"),
        "22": node("BasicScheduler", model=["4", 0], scheduler="karras", steps=4, denoise=1.0),
        "23": node("RandomNoise", noise_seed=3),
        "3": node("SamplerCustomAdvanced", noise=["23", 0], guider=["20", 0], sampler=["21", 0],
                  sigmas=["22", 0], latent_image=["5", 0]),
    })
    outcome, error, _ = run(prompt)
    assert outcome.status == "error" and error["node_type"] == "SamplerCustomAdvanced"
    assert error["exception_message"].startswith("Sampling (dpmpp_2m) produced NaN/Inf at step 1 of 4: ")


def test_nan_in_the_text_encoder_is_blamed_on_the_conditioning(run):
    outcome, error, _ = run(_txt2img("nan_text.safetensors"))
    assert outcome.status == "error" and error["node_type"] == "KSampler"
    message = error["exception_message"]
    assert "the positive conditioning already holds NaN/Inf, so the text encoder produced it" in message


@pytest.mark.parametrize("decoder", ["VAEDecode", "VAEDecodeTiled"])
def test_nan_in_the_vae_fails_the_decode_naming_the_vae(run, decoder):
    prompt = _txt2img("nan_vae.safetensors")
    if decoder == "VAEDecodeTiled":
        prompt["8"] = node("VAEDecodeTiled", samples=["3", 0], vae=["4", 2], tile_size=64, overlap=32,
                           temporal_size=64, temporal_overlap=8)
    outcome, error, output = run(prompt)
    assert outcome.status == "error" and error["node_type"] == decoder
    message = error["exception_message"]
    assert message.startswith("VAE decode produced NaN/Inf (the VAE ran in float32 on cpu): ")
    assert "the VAE's weights hold 1 NaN/Inf value in 1 tensor (first: decoder.conv_out.weight)" in message
    assert not list(output.glob("*.png"))


def test_nan_in_the_vae_encoder_fails_the_encode(run, checkpoints):
    _, _, vae = load_checkpoint(checkpoints / "nan_encoder.safetensors",
                                compute=detect_compute("cpu", force_dtype=torch.float32))
    with pytest.raises(NonFiniteError, match=r"VAE encode produced NaN/Inf .*first: encoder\.conv_in\.weight"):
        VAEEncode().encode(vae, torch.rand(1, 32, 32, 3))


def test_a_non_finite_latent_given_to_the_vae_is_blamed_on_its_maker(sd1):
    _, _, vae = sd1
    latent = torch.zeros(1, 4, 4, 4)
    latent[0, 0, 0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match="the latent given to it already holds NaN/Inf"):
        VAEDecode().decode(vae, {"samples": latent})


def test_a_non_finite_input_latent_is_blamed_on_its_maker(sd1, tmp_path):
    model, clip, _ = sd1
    runner = make_runner(tmp_path)

    (positive,) = runner(CLIPTextEncode().encode, clip, "a cat")
    latent = torch.full((1, 4, 8, 8), 0.5)
    latent[0, 1, 2, 3] = float("nan")
    with pytest.raises(NonFiniteError, match=r"at step 1 of 2: the input latent already holds NaN/Inf"):
        runner(KSampler().sample, model, 0, 2, 7.0, "euler", "normal", positive, positive,
               {"samples": latent}, denoise=0.5)


def test_fp16_vae_overflow_that_the_fallback_cannot_fix_suggests_the_flags():
    weights = tiny_vae_state_dict()
    weights["decoder.conv_out.weight"] = weights["decoder.conv_out.weight"] * 1e5  # beyond fp16's 65504
    model = build_vae(weights, compute=detect_compute("cpu", force_dtype=torch.float16)).model
    vae = VaeHandle(model, dtype=torch.float16, fallback_dtype=torch.float16)  # no wider dtype to retry in
    latents = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(NonFiniteError) as caught:
        vae.decode(latents)
    assert str(caught.value) == ("VAE decode produced NaN/Inf (the VAE ran in float16 on cpu). Its input and "
                                 "weights are finite, so the VAE overflowed its precision — try --fp32-vae "
                                 "(or --cpu-vae).")


def test_an_overflow_with_finite_weights_suggests_the_precision_flags():
    message = str(sampling_error("euler", 4, 20, latent_in=torch.zeros(1, 4, 8, 8),
                                 conditioning=[("positive", torch.zeros(1, 77, 8))],
                                 diffusion_model=torch.nn.Linear(2, 2)))
    assert message.startswith("Sampling (euler) produced NaN/Inf at step 5 of 20. Its inputs and the UNet's "
                              "weights are finite, so the numbers overflowed")
    assert "--bf16-unet, --fp32-unet or --force-fp32" in message
    final = str(sampling_error("euler", None, 20))
    assert final.startswith("Sampling (euler) produced NaN/Inf in the sampled latent after the last step. "
                            "Its inputs are finite")


def test_the_file_check_counts_per_part(checkpoints, capsys):
    lines = file_report(str(checkpoints / "nan_unet.safetensors"))
    assert any(": UNet (" in line and "1 NaN/Inf value in 1 tensor (first: " + UNET_KEY + ")" in line
               for line in lines)
    assert all(line.endswith("all finite") for line in lines if ": UNet (" not in line)
    assert check_main([str(checkpoints / "clean.safetensors")]) == 0
    assert check_main([str(checkpoints / "nan_vae.safetensors")]) == 1
    assert "VAE (" in capsys.readouterr().out


def test_the_checks_cost_is_negligible(run, monkeypatch):
    """Every step's x0, the final latent and each VAE pass are checked; the checks' time is a tiny
    part of the run (measured: about 0.01 % on this 64×64, 3-step run)."""
    spent = {"calls": 0, "seconds": 0.0}

    def timed(original):
        def check(tensor):
            start = time.perf_counter()
            try:
                return original(tensor)
            finally:
                spent["calls"] += 1
                spent["seconds"] += time.perf_counter() - start
        return check

    for module in (ldm.sampling.sample, ldm.vae):
        monkeypatch.setattr(module, "is_finite", timed(module.is_finite))
    start = time.perf_counter()
    outcome, _, _ = run(_txt2img("clean.safetensors"))
    total = time.perf_counter() - start
    assert outcome.status == "success"
    assert spent["calls"] == 3 + 1 + 1  # three steps, the sampled latent, one decode pass
    assert spent["seconds"] < 0.05 * total, (spent, total)
