"""nodes.attention_patches: ComfyUI's schemas, and each patch sampled end to end on the tiny SD1
model — neutral settings reproduce the plain model, others change it as the technique says."""

from __future__ import annotations

import logging

import pytest
import torch

from graph.registry import NodeRegistry
from nodes import attention_patches as ap
from nodes import sampling
from tests.nodes.sampling_support import make_runner
from tests.nodes.sampling_support import one_torch_thread, sd1, tiny_sd1  # noqa: F401 (fixtures)

LATENT = 16  # latent side: the tiny SD1's middle block works at 8x8


@pytest.fixture
def setup(tmp_path, sd1):
    model, clip, _ = sd1
    positive = clip.encode_from_tokens_scheduled(clip.tokenize("a red cat"))
    negative = clip.encode_from_tokens_scheduled(clip.tokenize("blurry"))
    run = make_runner(tmp_path)

    def sample(patched, steps: int = 2, cfg: float = 5.0, sampler: str = "euler") -> torch.Tensor:
        latent = {"samples": torch.zeros(1, 4, LATENT, LATENT)}
        [out] = run(sampling.KSampler().sample, patched, 7, steps, cfg, sampler, "normal", positive, negative,
                    latent)
        return out["samples"]

    return model, run, sample


def counting_wrapper(model):
    """A clone of ``model`` whose UNet network calls are counted (an innermost wrapper)."""
    calls = []

    def count(executor, *args):
        calls.append(args[0].dtype)
        return executor(*args)

    counted = model.clone()
    counted.add_wrapper_with_key("diffusion_model", "count", count)
    return counted, calls


def test_schemas_are_comfyuis():
    registry = NodeRegistry()
    assert registry.register_mappings(ap.NODE_CLASS_MAPPINGS, ap.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    info = registry.object_info()
    assert info["FreeU"]["input"]["required"]["b1"][1] == {"default": 1.1, "min": 0.0, "max": 10.0, "step": 0.01,
                                                          "advanced": True}
    assert [info["FreeU_V2"]["input"]["required"][k][1]["default"] for k in ("b1", "b2", "s1", "s2")] == [
        1.3, 1.4, 0.9, 0.2]
    assert info["HyperTile"]["input_order"]["required"] == ["model", "tile_size", "swap_size", "max_depth",
                                                            "scale_depth"]
    assert info["PerturbedAttentionGuidance"]["input"]["required"]["scale"][1]["round"] == 0.01
    downscale = info["PatchModelAddDownscale"]
    assert downscale["display_name"] == "PatchModelAddDownscale (Kohya Deep Shrink)"
    assert downscale["input"]["required"]["downscale_method"][0] == ["bicubic", "nearest-exact", "bilinear",
                                                                     "area", "bislerp"]
    assert downscale["input"]["required"]["end_percent"][1]["default"] == 0.35
    assert info["SelfAttentionGuidance"]["display_name"] == "Self-Attention Guidance"
    assert info["NAGuidance"]["category"] == "advanced/guidance" and info["NAGuidance"]["experimental"]
    assert info["EasyCache"]["input"]["required"]["reuse_threshold"][1]["max"] == 3.0
    assert info["LazyCache"]["category"] == "advanced/debug/model"
    backend = info["ModelAttentionBackend"]["input"]["required"]["attention"]
    assert backend[0] == ["pytorch attention"] and backend[1]["display_name"] == "backend"
    assert info["TorchCompileModel"]["input"]["required"]["backend"][0] == ["inductor", "cudagraphs"]
    assert info["ModelComputeDtype"]["input"]["required"]["dtype"][0] == ["default", "fp32", "fp16", "bf16"]
    assert all(entry["output"] == ["MODEL"] for name, entry in info.items())


def test_patches_go_on_a_clone(setup):
    model, _, _ = setup
    for node, args in ((ap.FreeU(), (1.1, 1.2, 0.9, 0.2)), (ap.HyperTile(), (256, 2, 0, False)),
                       (ap.TomePatchModel(), (0.3,)), (ap.NAGuidance(), (5.0, 0.5, 1.5)),
                       (ap.EasyCacheNode(), (0.2, 0.15, 0.95, False))):
        [patched] = getattr(node, node.FUNCTION)(model, *args)
        assert patched is not model and patched.unet is model.unet
        assert patched.hooks.transformer_options and not model.hooks.transformer_options


@pytest.mark.parametrize(("node", "neutral", "active"), [
    (ap.FreeU(), (1.0, 1.0, 1.0, 1.0), (1.1, 1.2, 0.9, 0.2)),
    (ap.FreeU_V2(), (1.0, 1.0, 1.0, 1.0), (1.3, 1.4, 0.9, 0.2)),
    (ap.HyperTile(), (128, 2, 0, False), (64, 1, 0, False)),  # 128 px = the whole 16-latent map
    (ap.TomePatchModel(), (0.0,), (0.5,)),
    (ap.PatchModelAddDownscale(), (3, 1.0, 0.0, 0.35, True, "bicubic", "bicubic"),
     (1, 2.0, 0.0, 0.5, True, "bicubic", "bicubic")),
    (ap.NAGuidance(), (5.0, 0.0, 1.5), (5.0, 0.5, 1.5)),
    (ap.SelfAttentionGuidance(), (0.0, 2.0), (0.5, 2.0)),
    (ap.PerturbedAttentionGuidance(), (0.0,), (3.0,)),
])
def test_neutral_setting_is_the_plain_model_and_active_one_changes_it(setup, node, neutral, active):
    model, _, sample = setup
    plain = sample(model)
    [neutral_model] = getattr(node, node.FUNCTION)(model, *neutral)
    # float32 round-offs (FreeU's FFT round trip, SAG's explicit softmax) grow under cfg 5 and the
    # latent scale 1/0.18215: a tolerance of 1e-3 against changes of 1e-2 and more
    torch.testing.assert_close(sample(neutral_model), plain, atol=1e-3, rtol=1e-3)
    [active_model] = getattr(node, node.FUNCTION)(model, *active)
    changed = sample(active_model)
    assert torch.isfinite(changed).all() and (changed - plain).abs().max() > 1e-2


def test_pag_pushes_away_from_the_identity_attention_prediction(setup):
    """One Euler step is affine in the denoised prediction, so PAG's ``cfg + s·(cond - perturbed)``
    shows as ``step(cfg) + s·(step(cond) - step(perturbed))``; cond-only steps are cfg-1 runs."""
    model, _, sample = setup
    scale = 2.0
    [pag] = ap.PerturbedAttentionGuidance().patch(model, scale)
    perturbed = model.clone()
    perturbed.set_model_attn1_replace(lambda q, k, v, extra: v, "middle", 0)
    want = sample(model, 1) + scale * (sample(model, 1, cfg=1.0) - sample(perturbed, 1, cfg=1.0))
    torch.testing.assert_close(sample(pag, 1), want, atol=5e-4, rtol=1e-4)


def test_sag_evaluates_the_negative_side_again_on_the_blurred_image(setup):
    model, _, sample = setup
    counted, calls = counting_wrapper(model)
    [sag] = ap.SelfAttentionGuidance().patch(counted, 0.5, 2.0)
    sample(sag, steps=2, cfg=1.0)  # cfg 1 still evaluates the negative side: SAG needs it
    # per step: one batch of both sides, then one of the degraded negative
    assert len(calls) == 4


def test_easycache_threshold_zero_is_exact_and_a_large_one_skips(setup):
    model, _, sample = setup
    counted, calls = counting_wrapper(model)
    plain = sample(counted, steps=6)
    plain_calls = len(calls)
    # the counter goes inside EasyCache's wrapper, so it sees only the evaluations that ran
    exact, calls = counting_wrapper(ap.EasyCacheNode().execute(model, 0.0, 0.0, 1.0, False)[0])
    torch.testing.assert_close(sample(exact, steps=6), plain)
    assert len(calls) == plain_calls
    eager, calls = counting_wrapper(ap.EasyCacheNode().execute(model, 3.0, 0.0, 1.0, False)[0])
    skipping = sample(eager, steps=6)
    assert len(calls) < plain_calls and torch.isfinite(skipping).all()
    calls.clear()
    assert torch.equal(sample(eager, steps=6), skipping)  # a new run starts afresh
    assert len(calls) < plain_calls


def test_lazycache_threshold_zero_is_exact_and_a_large_one_skips(setup):
    model, _, sample = setup
    counted, calls = counting_wrapper(model)
    plain = sample(counted, steps=6)
    plain_calls = len(calls)
    calls.clear()
    [exact] = ap.LazyCacheNode().execute(counted, 0.0, 0.0, 1.0, False)
    torch.testing.assert_close(sample(exact, steps=6), plain)
    assert len(calls) == plain_calls
    calls.clear()
    [lazy] = ap.LazyCacheNode().execute(counted, 3.0, 0.0, 1.0, False)
    skipping = sample(lazy, steps=6)
    assert len(calls) < plain_calls and torch.isfinite(skipping).all()
    assert (skipping - plain).abs().max() > 1e-4


def test_model_compute_dtype(setup):
    model, run, sample = setup
    counted, calls = counting_wrapper(model)
    plain = sample(counted)
    [fp32] = run(ap.ModelComputeDtype().patch, counted, "fp32")
    assert torch.equal(sample(fp32), plain)  # the engine computes in fp32 already
    calls.clear()
    [bf16] = run(ap.ModelComputeDtype().patch, counted, "bf16")
    reduced = sample(bf16)
    assert set(calls) == {torch.bfloat16} and torch.isfinite(reduced).all()
    assert 0 < (reduced - plain).abs().max() < 0.5 * plain.abs().max()
    calls.clear()
    [back] = run(ap.ModelComputeDtype().patch, bf16, "default")
    assert torch.equal(sample(back), plain) and set(calls) == {torch.float32}


def test_attention_backend_runs_pytorch_attention(setup, caplog):
    model, _, sample = setup
    [patched] = ap.ModelAttentionBackend().execute(model, "pytorch attention")
    assert patched.hooks.transformer_options["optimized_attention_override"] is ap.BACKENDS["pytorch attention"]
    torch.testing.assert_close(sample(patched), sample(model))
    with caplog.at_level(logging.WARNING):
        [fallback] = ap.ModelAttentionBackend().execute(model, "comfy kitchen attention")
    assert "unavailable" in caplog.text
    assert fallback.hooks.transformer_options["optimized_attention_override"] is ap.BACKENDS["pytorch attention"]
    assert ap.ModelAttentionBackend.VALIDATE_INPUTS("comfy kitchen attention") is True


def test_torch_compile_model_runs_the_compiled_unet(setup):
    """The node's backends need a compiler toolchain; any torch.compile backend goes through the
    same path, so a recording one (eager underneath) shows the UNet ran compiled."""
    model, _, sample = setup
    compiled_graphs = []

    def recording_backend(graph_module, example_inputs):
        compiled_graphs.append(graph_module)
        return graph_module.forward

    [patched] = ap.TorchCompileModel().execute(model, "inductor")
    assert patched.hooks.extra["torch_compile_kwargs"]["backend"] == "inductor"
    assert "torch_compile_kwargs" not in model.hooks.extra
    patched.hooks.extra["torch_compile_kwargs"]["backend"] = recording_backend
    torch._dynamo.reset()
    try:
        # A compiled UNet computes its convolutions from plain weights, the eager one from oneDNN-packed
        # ones (ldm.networks.onednn): the same sums, rounded to the compute dtype at other points.
        torch.testing.assert_close(sample(patched, steps=1), sample(model, steps=1), atol=1e-2, rtol=1e-2)
    finally:
        torch._dynamo.reset()
    assert compiled_graphs
