"""``comfy.ldm.*``: ComfyUI's model-code paths over Weft's own layers, and UNet patches written the way
packs write them (``set_model_attn2_replace`` with ``optimized_attention``) changing what KSampler makes."""

from __future__ import annotations

import importlib
import textwrap

import pytest
import torch

import ldm.networks.autoencoder
import ldm.networks.unet
from ldm.model import load_checkpoint
from nodes.custom import load_custom_packs


@pytest.fixture
def comfy_ldm(pack_studio):
    """The facade installed; returns ``import_module`` for ComfyUI's paths."""
    return importlib.import_module


@pytest.fixture
def sd1_unet(tiny_sd1):
    return load_checkpoint(tiny_sd1)[0].unet


def test_module_paths_re_export_weft_classes(comfy_ldm):
    attention = comfy_ldm("comfy.ldm.modules.attention")
    openaimodel = comfy_ldm("comfy.ldm.modules.diffusionmodules.openaimodel")
    vae_model = comfy_ldm("comfy.ldm.modules.diffusionmodules.model")
    autoencoder = comfy_ldm("comfy.ldm.models.autoencoder")
    assert attention.CrossAttention is ldm.networks.unet.CrossAttention
    assert attention.BasicTransformerBlock is ldm.networks.unet.BasicTransformerBlock
    assert attention.SpatialTransformer is openaimodel.SpatialTransformer is ldm.networks.unet.SpatialTransformer
    assert openaimodel.UNetModel is ldm.networks.unet.UNetModel
    assert openaimodel.TimestepEmbedSequential is ldm.networks.unet.UNetBlock
    assert (vae_model.Encoder, vae_model.Decoder, vae_model.AttnBlock) == (
        ldm.networks.autoencoder.Encoder, ldm.networks.autoencoder.Decoder, ldm.networks.autoencoder.AttnBlock)
    assert autoencoder.AutoencoderKL is ldm.networks.autoencoder.AutoencoderKL
    assert comfy_ldm("comfy.ldm.util").exists(0) and attention.default(None, 3) == 3


def test_a_loaded_unet_has_the_names_packs_walk(comfy_ldm, sd1_unet):
    attention = comfy_ldm("comfy.ldm.modules.attention")
    openaimodel = comfy_ldm("comfy.ldm.modules.diffusionmodules.openaimodel")
    unet = sd1_unet
    assert isinstance(unet, openaimodel.UNetModel)
    assert (unet.model_channels, unet.in_channels, unet.out_channels, unet.num_classes) == (32, 4, 4, None)
    assert all(isinstance(block, openaimodel.TimestepEmbedSequential) for block in unet.input_blocks)
    assert isinstance(unet.middle_block, openaimodel.TimestepBlock)
    assert isinstance(unet.input_blocks[1][0], openaimodel.ResBlock) and isinstance(
        unet.input_blocks[1][0], openaimodel.TimestepBlock)
    assert isinstance(unet.input_blocks[3][0], openaimodel.Downsample)
    assert isinstance(unet.output_blocks[2][2], openaimodel.Upsample)
    transformer = unet.input_blocks[1][1]
    assert isinstance(transformer, attention.SpatialTransformer) and transformer.in_channels == 32
    block = transformer.transformer_blocks[0]
    assert isinstance(block, attention.BasicTransformerBlock) and (block.n_heads, block.d_head) == (8, 4)
    for attn in (block.attn1, block.attn2):
        assert isinstance(attn, attention.CrossAttention)
        assert (attn.heads, attn.dim_head) == (8, 4)
        x = torch.randn(1, 5, 32)
        out = attn.to_out(attn.to_q(x))  # to_out is callable, as ComfyUI's Sequential is
        assert out.shape == (1, 5, 32)
    names = {name for name, _ in unet.named_modules()}
    assert "middle_block.1.transformer_blocks.0.attn2.to_out.0" in names


def _reference_attention(q, k, v, heads, mask=None):
    b, lq, inner = q.shape
    d = inner // heads
    q, k, v = (t.reshape(b, -1, heads, d).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / d ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, lq, inner)


def test_attention_functions_keep_comfyui_signature(comfy_ldm):
    attention = comfy_ldm("comfy.ldm.modules.attention")
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, n, 4 * 8, generator=g) for n in (6, 5, 5))
    expected = _reference_attention(q, k, v, 4)
    for name in ("optimized_attention", "optimized_attention_masked", "attention_basic", "attention_pytorch",
                 "attention_split", "attention_sub_quad", "attention_xformers"):
        torch.testing.assert_close(getattr(attention, name)(q, k, v, 4), expected)
    torch.testing.assert_close(attention.get_attention_function("pytorch")(q, k, v, 4), expected)

    split = [t.reshape(2, -1, 4, 8).transpose(1, 2) for t in (q, k, v)]
    heads_out = attention.optimized_attention(*split, 4, skip_reshape=True, skip_output_reshape=True)
    assert heads_out.shape == (2, 4, 6, 8)
    torch.testing.assert_close(heads_out.transpose(1, 2).reshape(2, 6, 32), expected)

    bool_mask = torch.rand(6, 5, generator=g) > 0.3
    bool_mask[:, 0] = True
    torch.testing.assert_close(attention.optimized_attention(q, k, v, 4, mask=bool_mask),
                               _reference_attention(q, k, v, 4, bool_mask))
    additive = torch.randn(2, 6, 5, generator=g)  # [B, Lq, Lk]: the same for every head
    torch.testing.assert_close(attention.optimized_attention_masked(q, k, v, 4, additive),
                               _reference_attention(q, k, v, 4, additive[:, None]))


def test_attention_override_is_honoured_without_recursion(comfy_ldm):
    attention = comfy_ldm("comfy.ldm.modules.attention")
    calls = []

    def override(func, q, k, v, heads, **kwargs):
        calls.append(sorted(kwargs))
        return attention.optimized_attention(q, k, v, heads, **kwargs) * 2  # a wrapped function again

    q = torch.randn(1, 3, 8)
    out = attention.optimized_attention(q, q, q, 2, transformer_options={"optimized_attention_override": override})
    torch.testing.assert_close(out, 2 * _reference_attention(q, q, q, 2))
    assert calls == [["_inside_attn_wrapper", "transformer_options"]]

    @attention.wrap_attn
    def custom(q, k, v, heads, **kwargs):
        return q
    assert custom(q, q, q, 2) is q


def test_replace_patch_with_optimized_attention_equals_no_patch_in_the_unet(comfy_ldm, sd1_unet):
    attention = comfy_ldm("comfy.ldm.modules.attention")
    unet = sd1_unet
    heads_seen = []

    def replace(q, k, v, extra_options):
        heads_seen.append(extra_options["n_heads"])
        return attention.optimized_attention(q, k, v, extra_options["n_heads"])

    g = torch.Generator().manual_seed(1)
    x, context = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 7, 32, generator=g)
    options = {"patches_replace": {"attn2": {("input", 1): replace, ("output", 5, 0): replace}}}
    with torch.no_grad():
        assert torch.equal(unet(x, torch.tensor([400.0]), context, transformer_options=options),
                           unet(x, torch.tensor([400.0]), context))
    assert heads_seen == [8, 8]


def test_forward_timestep_embed_runs_a_block(comfy_ldm, sd1_unet):
    openaimodel = comfy_ldm("comfy.ldm.modules.diffusionmodules.openaimodel")
    unet = sd1_unet
    g = torch.Generator().manual_seed(2)
    h, emb, context = torch.randn(1, 32, 8, 8, generator=g), torch.randn(1, 128, generator=g), torch.randn(1, 7, 32)
    with torch.no_grad():
        ours = openaimodel.forward_timestep_embed(unet.input_blocks[1], h, emb, context, {})
        assert torch.equal(ours, unet.input_blocks[1](h, emb, context))
        wide = torch.randn(1, 64, 4, 4, generator=g)
        up = openaimodel.forward_timestep_embed(unet.output_blocks[2], torch.cat([wide, wide[:, :32]], 1), emb,
                                                context, output_shape=(1, 32, 7, 9))
    assert up.shape == (1, 64, 7, 9)
    control = {"input": [torch.ones(1, 32, 8, 8)]}
    torch.testing.assert_close(openaimodel.apply_control(h.clone(), control, "input"), h + 1)
    assert control == {"input": []}


def test_util_helpers(comfy_ldm):
    util = comfy_ldm("comfy.ldm.modules.diffusionmodules.util")
    t = torch.tensor([0.0, 10.0])
    assert torch.equal(util.timestep_embedding(t, 8), ldm.networks.unet.timestep_embedding(t, 8))
    assert torch.equal(util.timestep_embedding(t, 3, repeat_only=True), torch.tensor([[0.0] * 3, [10.0] * 3]))
    conv = util.zero_module(util.conv_nd(2, 4, 8, 3, padding=1))
    assert isinstance(conv, torch.nn.Conv2d) and conv.weight.abs().sum() == 0
    assert isinstance(util.avg_pool_nd(1, 2), torch.nn.AvgPool1d)
    assert isinstance(util.normalization(64), torch.nn.GroupNorm) and util.normalization(64).num_groups == 32
    torch.testing.assert_close(util.mean_flat(torch.ones(2, 3, 4)), torch.ones(2))
    betas = util.make_beta_schedule("linear", 1000, linear_start=0.00085, linear_end=0.012)
    assert betas.dtype == torch.float64 and betas.shape == (1000,)
    torch.testing.assert_close(betas[[0, -1]], torch.tensor([0.00085, 0.012], dtype=torch.float64))
    with pytest.raises(ValueError, match="cosine"):
        util.make_beta_schedule("cosine", 10)


def test_diagonal_gaussian_distribution(comfy_ldm):
    distributions = comfy_ldm("comfy.ldm.modules.distributions.distributions")
    g = torch.Generator().manual_seed(3)
    mean, logvar = torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 3, 3, generator=g)
    posterior = distributions.DiagonalGaussianDistribution(torch.cat([mean, logvar], 1))
    assert torch.equal(posterior.mode(), mean)
    torch.manual_seed(5)
    sample = posterior.sample()
    torch.manual_seed(5)
    torch.testing.assert_close(sample, mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape))
    expected_kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum(dim=[1, 2, 3])
    torch.testing.assert_close(posterior.kl(), expected_kl)
    assert torch.equal(distributions.DiagonalGaussianDistribution(torch.cat([mean, logvar], 1),
                                                                  deterministic=True).sample(), mean)


PATCH_PACK = '''
import comfy.ldm.modules.attention as attention
import torch


class _ModelPatch:
    CATEGORY = "test/ldm"
    FUNCTION = "patch"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}


class SDPAReplace(_ModelPatch):
    seen = []

    def patch(self, model):
        def replace(q, k, v, extra_options):
            SDPAReplace.seen.append((extra_options["block"], list(extra_options["cond_or_uncond"])))
            return attention.optimized_attention(q, k, v, extra_options["n_heads"])

        patched = model.clone()
        for block in (("input", 1), ("middle", 0), ("output", 3)):
            patched.set_model_attn2_replace(replace, *block)
        return (patched,)


class ZeroContext(_ModelPatch):
    def patch(self, model):
        patched = model.clone()
        patched.set_model_attn2_patch(lambda n, context, value, extra_options:
                                      (n, torch.zeros_like(context), torch.zeros_like(value)))
        return (patched,)


class StashLatent:
    CATEGORY = "test/ldm"
    FUNCTION = "stash"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    seen = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "key": ("STRING", {"default": "out"})}}

    def stash(self, samples, key):
        StashLatent.seen[key] = samples["samples"].clone()
        return ()


NODE_CLASS_MAPPINGS = {"SDPAReplace": SDPAReplace, "ZeroContext": ZeroContext, "StashLatent": StashLatent}
'''


@pytest.fixture
def patch_studio(pack_studio):
    target = pack_studio.base / "custom_nodes"
    target.mkdir(exist_ok=True)
    (target / "ldm_patch_pack.py").write_text(textwrap.dedent(PATCH_PACK))
    reports = load_custom_packs([target], pack_studio.registry, whitelist={"ldm_patch_pack"}, host=pack_studio.host)
    assert reports[0].loaded, reports[0].error
    return pack_studio


def _sample(studio, patch=None, zero_conditioning=False):
    model = ["1", 0]
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd1.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red square", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    }
    positive, negative = ["2", 0], ["3", 0]
    if patch:
        prompt["7"] = {"class_type": patch, "inputs": {"model": model}}
        model = ["7", 0]
    if zero_conditioning:
        prompt["8"] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": positive}}
        prompt["9"] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": negative}}
        positive, negative = ["8", 0], ["9", 0]
    prompt["5"] = {"class_type": "KSampler", "inputs": {
        "model": model, "positive": positive, "negative": negative, "latent_image": ["4", 0], "seed": 7,
        "steps": 3, "cfg": 6.0, "sampler_name": "euler", "scheduler": "karras", "denoise": 1.0}}
    prompt["6"] = {"class_type": "StashLatent", "inputs": {"samples": ["5", 0], "key": "out"}}
    studio.run(prompt)
    return studio.registry.get("StashLatent").node_class.seen["out"]


def test_pack_attention_patches_change_ksampler_as_in_comfyui(patch_studio):
    plain = _sample(patch_studio)
    sdpa_class = patch_studio.registry.get("SDPAReplace").node_class
    sdpa_class.seen.clear()
    torch.testing.assert_close(_sample(patch_studio, "SDPAReplace"), plain, rtol=0, atol=1e-6)
    assert {entry[0] for entry in sdpa_class.seen} == {("input", 1), ("middle", 0), ("output", 3)}
    assert all(entry[1] in ([0, 1], [1, 0]) for entry in sdpa_class.seen)  # cond and uncond in one batch

    zero_context = _sample(patch_studio, "ZeroContext")
    assert (zero_context - plain).abs().max() > 1e-3
    torch.testing.assert_close(zero_context, _sample(patch_studio, zero_conditioning=True), rtol=0, atol=1e-6)
