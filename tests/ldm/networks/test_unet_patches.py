"""ldm.networks.unet honours ComfyUI's transformer_options patches: each changes the output exactly as an
independently computed expectation (weights zeroed, forward hooks), and fills ComfyUI's fields."""

from __future__ import annotations

import copy

import pytest
import torch

from ldm.devices import detect_compute
from ldm.loading.detect import UNET_PREFIX, detect_unet
from ldm.loading.weights import strip_prefix
from ldm.model import build_unet
from ldm.networks.unet import BasicTransformerBlock, Downsample
from ldm.networks.unet_patches import attention_with_heads
from ldm.sampling.denoiser import UNetDenoiser
from ldm.sampling.model_sampling import model_sampling
from ldm.tiny import tiny_checkpoint

#: SD1 tiny: transformers after input blocks 1, 2, 4, 5, in the middle and after every output block.
SD1_TRANSFORMER_BLOCKS = ([("input", i) for i in (1, 2, 4, 5)] + [("middle", 0)]
                          + [("output", i) for i in range(6)])


@pytest.fixture(scope="module")
def nets():
    cache = {}

    def load(family):
        if family not in cache:
            state_dict, metadata = tiny_checkpoint(family, seed=3, include_text=False)
            unet_sd = strip_prefix(state_dict, UNET_PREFIX)
            cache[family] = build_unet(unet_sd, detect_unet(unet_sd, metadata),
                                       compute=detect_compute("cpu", force_dtype=torch.float32)).unet.eval()
        return cache[family]

    return load


def inputs(unet, batch=2, size=(16, 16)):
    g = torch.Generator().manual_seed(0)
    config = unet.config
    x = torch.randn(batch, config.in_channels, *size, generator=g)
    t = torch.tensor([3.0, 741.0])[:batch]
    context = torch.randn(batch, 7, config.context_dim, generator=g)
    kwargs = {}
    if config.adm_in_channels:
        kwargs["y"] = torch.randn(batch, config.adm_in_channels, generator=g)
    if config.num_classes:
        kwargs["y"] = torch.tensor([20, 350])[:batch]
    return x, t, context, kwargs


def run(unet, transformer_options=None, context=None, **overrides):
    x, t, ctx, kwargs = inputs(unet)
    with torch.no_grad():
        return unet(x, t, ctx if context is None else context, transformer_options=transformer_options,
                    **kwargs, **overrides)


def assert_changed(unet, out):
    """The expectation is a real change of the network's output, not a no-op."""
    assert (out - run(unet)).abs().max() > 1e-3


def options(patches=None, replace=None, **fields):
    opts = {"cond_or_uncond": [0, 1], "sigmas": torch.tensor([0.03, 14.6])}
    if patches:
        opts["patches"] = patches
    if replace:
        opts["patches_replace"] = replace
    opts.update(fields)
    return opts


def transformer_blocks(unet, where):
    kind, index = where
    block = unet.middle_block if kind == "middle" else getattr(unet, f"{kind}_blocks")[index]
    return [b for layer in block if hasattr(layer, "transformer_blocks") for b in layer.transformer_blocks]


def with_hooks(unet, hooks):
    """A deep copy of ``unet`` with ``(module path, 'pre' | 'post', fn)`` hooks registered."""
    clone = copy.deepcopy(unet)
    for path, kind, fn in hooks:
        module = clone.get_submodule(path)
        if kind == "pre":
            module.register_forward_pre_hook(fn)
        else:
            module.register_forward_hook(fn)
    return clone


def zeroed(unet, attr_paths):
    """A deep copy of ``unet`` with the named linear layers' weights (and biases) set to zero."""
    clone = copy.deepcopy(unet)
    with torch.no_grad():
        for path in attr_paths:
            layer = clone.get_submodule(path)
            layer.weight = torch.nn.Parameter(torch.zeros_like(layer.weight))
            if layer.bias is not None:
                layer.bias = torch.nn.Parameter(torch.zeros_like(layer.bias))
    return clone


def attention_paths(unet, attn, where=None):
    return [name for name, module in unet.named_modules()
            if isinstance(module, BasicTransformerBlock) and (where is None or name.startswith(where))
            for name in [f"{name}.{attn}"]]


# --- no patches -----------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_options_without_patches_leave_the_output_bit_identical(nets, family):
    unet = nets(family)
    plain = run(unet)
    fields_only = options()
    assert torch.equal(run(unet, fields_only), plain)
    assert "block" not in fields_only  # the plain walk: nothing written
    assert torch.equal(run(unet, options(patches={}, replace={})), plain)


@pytest.mark.parametrize("family", ["sd1", "sdxl", "sd_x4"])
def test_patched_walk_with_neutral_patches_is_bit_identical(nets, family):
    unet = nets(family)
    identity = options(patches={"input_block_patch": [lambda h, opts: h],
                                "attn1_patch": [lambda n, c, v, extra: (n, c, v)],
                                "attn2_patch": [lambda n, c, v, extra: (n, c, v)],
                                "output_block_patch": [lambda h, hsp, opts: (h, hsp)]})
    assert torch.equal(run(unet, identity), run(unet))


# --- attention patches ---------------------------------------------------------------------------

def test_attn2_patch_zeroing_the_context_equals_a_zero_context(nets):
    unet = nets("sd1")
    zero_context = options(patches={"attn2_patch": [
        lambda n, context, value, extra: (n, torch.zeros_like(context), torch.zeros_like(value))]})
    _, _, context, _ = inputs(unet)
    expected = run(unet, context=torch.zeros_like(context))
    assert_changed(unet, expected)
    assert torch.equal(run(unet, zero_context), expected)


def test_attn1_patch_value_feeds_to_v(nets):
    unet = nets("sd1")
    zero_value = options(patches={"attn1_patch": [lambda n, context, value, extra: (n, context, value * 0)]})
    # v = to_v(0) = 0 everywhere is what zero to_v weights give
    expected = run(zeroed(unet, [p + ".to_v" for p in attention_paths(unet, "attn1")]))
    assert_changed(unet, expected)
    torch.testing.assert_close(run(unet, zero_value), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("family", ["sd1", "sd_x4"])
def test_attn1_replace_returning_sdpa_equals_no_patch(nets, family):
    unet = nets(family)
    seen = []

    def replace(q, k, v, extra):
        seen.append((extra["block"], extra["block_index"]))
        return attention_with_heads(q, k, v, extra["n_heads"])

    where = [("input", 4), ("middle", 0), ("output", 1)]
    table = {("input", 4): replace, ("middle", 0, 0): replace, ("output", 1): replace}
    assert torch.equal(run(unet, options(replace={"attn1": table, "attn2": table})), run(unet))
    assert seen == [(w, 0) for w in where for _ in ("attn1", "attn2")]


def test_attention_replace_returning_zeros_equals_zeroed_values(nets):
    unet = nets("sd1")
    zeros = options(replace={"attn2": {("output", 4): lambda q, k, v, extra: torch.zeros_like(q)}})
    expected = run(zeroed(unet, [p + ".to_v" for p in attention_paths(unet, "attn2", "output_blocks.4.")]))
    assert_changed(unet, expected)
    torch.testing.assert_close(run(unet, zeros), expected, rtol=0, atol=1e-6)


def test_replace_key_with_transformer_index_wins_and_picks_its_block(nets):
    unet = nets("sdxl")  # input blocks 4 and 5 hold two transformer blocks each
    calls = []

    def recorder(tag):
        def replace(q, k, v, extra):
            calls.append((tag, extra["block"], extra["block_index"]))
            return attention_with_heads(q, k, v, extra["n_heads"])
        return replace

    table = {("input", 4): recorder("block"), ("input", 4, 1): recorder("index"), ("input", 5, 1): recorder("index")}
    assert torch.equal(run(unet, options(replace={"attn2": table})), run(unet))
    assert calls == [("block", ("input", 4), 0), ("index", ("input", 4), 1), ("index", ("input", 5), 1)]


@pytest.mark.parametrize("attn", ["attn1", "attn2"])
def test_attention_output_patch_scaling_to_zero_equals_a_silent_attention(nets, attn):
    unet = nets("sd1")
    silent = options(patches={f"{attn}_output_patch": [lambda n, extra: n * 0]})
    expected = run(zeroed(unet, [p + ".to_out.0" for p in attention_paths(unet, attn)]))
    assert_changed(unet, expected)
    torch.testing.assert_close(run(unet, silent), expected, rtol=0, atol=1e-6)


def test_patches_run_in_comfyui_order_and_chain(nets):
    unet = nets("sd1")
    order = []

    def step(name):
        def patch(*args):  # (n, context, value, extra) -> (n, context, value); (x, extra) -> x
            order.append(name)
            return args[:-1] if len(args) > 2 else args[0]
        return patch

    patches = {name: [step(name)] for name in
               ("attn1_patch", "attn1_output_patch", "middle_patch", "attn2_patch", "attn2_output_patch")}
    patches["attn2_patch"].append(step("attn2_patch#2"))
    assert torch.equal(run(unet, options(patches=patches)), run(unet))
    per_block = ["attn1_patch", "attn1_output_patch", "middle_patch", "attn2_patch", "attn2_patch#2",
                 "attn2_output_patch"]
    assert order == per_block * len(SD1_TRANSFORMER_BLOCKS)


def test_extra_options_carry_comfyui_fields(nets):
    unet = nets("sd1")
    seen = []

    def record(n, context, value, extra):
        seen.append(dict(extra))
        return n, context, value

    opts = options(patches={"attn2_patch": [record]})
    run(unet, opts)
    assert [e["block"] for e in seen] == SD1_TRANSFORMER_BLOCKS
    assert [e["transformer_index"] for e in seen] == list(range(len(SD1_TRANSFORMER_BLOCKS)))
    assert all(e["block_index"] == 0 for e in seen)
    assert [(e["n_heads"], e["dim_head"]) for e in seen[:2]] == [(8, 4)] * 2  # 32 channels, 8 heads
    assert (seen[2]["n_heads"], seen[2]["dim_head"]) == (8, 8)  # 64 channels
    first = seen[0]
    assert first["cond_or_uncond"] == [0, 1] and torch.equal(first["sigmas"], opts["sigmas"])
    assert first["original_shape"] == [2, 4, 16, 16]
    assert first["activations_shape"] == [2, 32, 16, 16] and seen[2]["activations_shape"] == [2, 64, 8, 8]
    assert first["attn_precision"] is None
    assert "patches" not in first and "patches_replace" not in first
    # the caller's dict is written as ComfyUI writes it
    assert opts["block"] == ("output", 5) and opts["transformer_index"] == len(SD1_TRANSFORMER_BLOCKS)


def test_block_index_counts_inside_a_spatial_transformer(nets):
    unet = nets("sdxl")
    seen = []
    run(unet, options(patches={"attn1_patch": [lambda n, c, v, e: (seen.append((e["block"], e["block_index"]))
                                                                    or (n, c, v))]}))
    assert seen[:4] == [(("input", 4), 0), (("input", 4), 1), (("input", 5), 0), (("input", 5), 1)]


# --- block patches ---------------------------------------------------------------------------------

def test_input_block_patch_and_after_skip(nets):
    unet = nets("sd1")
    blocks = []

    def zero_at_2(h, opts):
        blocks.append(opts["block"])
        return h * 0 if opts["block"] == ("input", 2) else h

    zero_output = lambda module, args, out: out * 0  # noqa: E731
    expected = run(with_hooks(unet, [("input_blocks.2", "post", zero_output)]))
    assert_changed(unet, expected)
    assert torch.equal(run(unet, options(patches={"input_block_patch": [zero_at_2]})), expected)
    assert blocks == [("input", i) for i in range(6)]

    # after the skip is kept: the skip stays, only the next block sees zeros
    zero_input = lambda module, args: (args[0] * 0,) + args[1:]  # noqa: E731
    expected = run(with_hooks(unet, [("input_blocks.3", "pre", zero_input)]))
    assert_changed(unet, expected)
    after_skip = options(patches={"input_block_patch_after_skip": [
        lambda h, opts: h * 0 if opts["block"] == ("input", 2) else h]})
    assert torch.equal(run(unet, after_skip), expected)


def test_output_block_patch_scaling_h_by_zero_at_one_block(nets):
    unet = nets("sd1")
    seen = []

    def zero_h_at_3(h, hsp, opts):
        seen.append((opts["block"], h.shape[1], hsp.shape[1]))
        return (h * 0 if opts["block"] == ("output", 3) else h), hsp

    h_channels = unet.output_blocks[2][0].out_channels

    def zero_h_part(module, args):
        x = args[0].clone()
        x[:, :h_channels] = 0
        return (x,) + args[1:]

    expected = run(with_hooks(unet, [("output_blocks.3", "pre", zero_h_part)]))
    assert_changed(unet, expected)
    assert torch.equal(run(unet, options(patches={"output_block_patch": [zero_h_at_3]})), expected)
    assert [s[0] for s in seen] == [("output", i) for i in range(6)]
    assert seen[3][1:] == (h_channels, 32)


def test_emb_patch_sees_the_timestep_embedding(nets):
    unet = nets("sd1")
    seen = []

    def zero_emb(emb, model_channels, opts):
        seen.append((tuple(emb.shape), model_channels))
        return emb * 0

    expected = run(with_hooks(unet, [("time_embed", "post", lambda module, args, out: out * 0)]))
    assert_changed(unet, expected)
    assert torch.equal(run(unet, options(patches={"emb_patch": [zero_emb]})), expected)
    assert seen == [((2, 128), 32)]


def test_forward_timestep_embed_patch_runs_matching_layers(nets):
    unet = nets("sd1")
    seen = []

    def handler(layer, x, emb, context, opts, output_shape, time_context, frames, indicator):
        seen.append((opts["block"], type(layer).__name__, emb.shape[0]))
        return layer(x) * 0

    expected = run(with_hooks(unet, [("input_blocks.3.0", "post", lambda module, args, out: out * 0)]))
    assert_changed(unet, expected)
    assert torch.equal(run(unet, options(patches={"forward_timestep_embed_patch": [(Downsample, handler)]})),
                       expected)
    assert seen == [(("input", 3), "Downsample", 2)]


# --- wrappers, attention override, the denoiser ----------------------------------------------------

def test_diffusion_model_wrappers_wrap_the_walk_in_order(nets):
    unet = nets("sd1")
    calls = []

    def outer(executor, x, t, context, y, control, opts):
        calls.append(("outer", executor.class_obj is unet, control))
        return executor(x, t, torch.zeros_like(context), y, control, opts)

    def inner(executor, x, t, context, y, control, opts):
        calls.append(("inner", bool(context.abs().sum() == 0), opts["cond_or_uncond"]))
        return executor(x, t, context, y, control, opts)

    opts = options(wrappers={"diffusion_model": {"a": [outer], "b": [inner]}})
    _, _, context, _ = inputs(unet)
    assert torch.equal(run(unet, opts), run(unet, context=torch.zeros_like(context)))
    assert calls == [("outer", True, None), ("inner", True, [0, 1])]


def test_optimized_attention_override_sees_every_attention(nets):
    unet = nets("sd2")
    calls = []

    def override(func, q, k, v, heads, **kwargs):
        calls.append((q.ndim, heads, "transformer_options" in kwargs))
        return func(q, k, v, heads, **kwargs)

    torch.testing.assert_close(run(unet, options(optimized_attention_override=override)), run(unet),
                               rtol=0, atol=1e-6)
    assert len(calls) == 2 * len(SD1_TRANSFORMER_BLOCKS)  # sd2's tiny layout is sd1's
    assert all(ndim == 3 and handed_options for ndim, _, handed_options in calls)


def test_unet_denoiser_hands_transformer_options_to_the_network(nets):
    unet = nets("sd1")
    denoiser = UNetDenoiser(unet, model_sampling("eps"))
    x, _, context, _ = inputs(unet)
    sigma = torch.tensor([14.6, 14.6])
    seen = []
    opts = options(patches={"input_block_patch": [lambda h, o: seen.append(o["cond_or_uncond"]) or h * 0]})
    with torch.no_grad():
        plain = denoiser(x, sigma, {"c_crossattn": context})
        patched = denoiser(x, sigma, {"c_crossattn": context, "transformer_options": opts})
        assert torch.equal(denoiser(x, sigma, {"c_crossattn": context, "transformer_options": options()}), plain)
    assert seen == [[0, 1]] * 6
    assert not torch.equal(patched, plain)
