"""nodes.model_merging: merges and attention multiply as weight patches, against plain arithmetic
on the two state dicts."""

from __future__ import annotations

import pytest
import torch

from graph.registry import NodeRegistry
from ldm.devices import detect_compute
from ldm.loading.merging import block_ratio
from ldm.lora import patches as lora
from ldm.memory import Placement
from ldm.model import load_checkpoint
from ldm.networks.unet import UNetModel
from ldm.tiny import write_tiny_checkpoint
from nodes import model_merging as M
from tests.nodes.sampling_support import one_torch_thread  # noqa: F401 (autouse fixture)

FP32 = detect_compute("cpu", force_dtype=torch.float32)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("merging")
    return [write_tiny_checkpoint(folder / f"sd1_{seed}.safetensors", "sd1", seed=seed, dtype=torch.float32)
            for seed in (1, 2)]


@pytest.fixture
def pair(checkpoints):
    """Two tiny SD1 checkpoints with different weights: ``((model, clip), (model, clip))``."""
    return [load_checkpoint(path, compute=FP32)[:2] for path in checkpoints]


def effective(module, patches) -> dict[str, torch.Tensor]:
    """The weights ``module`` computes with under ``patches``."""
    with lora.patched(module, patches):
        return {k: v.clone() for k, v in module.state_dict().items()}


def plain(module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_weights(found: dict, expected: dict):
    assert found.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(found[key], expected[key], atol=1e-6, rtol=1e-5, msg=key)


def test_schema_is_comfyuis():
    registry = NodeRegistry()
    assert registry.register_mappings(M.NODE_CLASS_MAPPINGS, M.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    info = registry.object_info()
    simple = info["ModelMergeSimple"]
    assert simple["input"]["required"]["ratio"] == ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})
    assert info["ModelMergeSubtract"]["input"]["required"]["multiplier"][1]["min"] == -10.0
    assert list(info["ModelMergeAdd"]["input"]["required"]) == ["model1", "model2"]
    assert list(info["ModelMergeBlocks"]["input"]["required"]) == ["model1", "model2", "input", "middle", "out"]
    sd1 = list(info["ModelMergeSD1"]["input"]["required"])
    assert sd1[:5] == ["model1", "model2", "time_embed.", "label_emb.", "input_blocks.0."] and len(sd1) == 2 + 30
    assert sd1 == list(info["ModelMergeSD2"]["input"]["required"])
    sdxl = list(info["ModelMergeSDXL"]["input"]["required"])
    assert sdxl[4:6] == ["input_blocks.0", "input_blocks.1"] and sdxl[-1] == "out." and len(sdxl) == 2 + 24
    assert info["ModelMergeSDXL"]["category"] == "advanced/model_merging/model_specific"
    assert info["CLIPMergeSimple"]["output"] == ["CLIP"] and info["CLIPMergeAdd"]["category"] == "advanced/model_merging"
    attention = info["UNetCrossAttentionMultiply"]
    assert attention["category"] == "_for_testing/attention_experiments" and attention["experimental"] is True
    assert attention["input"]["required"]["q"] == ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01})
    assert list(info["CLIPAttentionMultiply"]["input"]["required"]) == ["clip", "q", "k", "v", "out"]
    bypass, model_only = info["LoraLoaderBypass"], info["LoraLoaderBypassModelOnly"]
    assert (bypass["display_name"], bypass["category"], bypass["experimental"]) == (
        "Load LoRA (Bypass) (For debugging)", "loaders", True)
    assert model_only["display_name"] == "Load LoRA (Bypass, Model Only) (for debugging)"
    # both keep nodes_lora_debug.py's own category and description, whatever LoraLoader's are
    assert model_only["category"] == "loaders" and model_only["description"] == bypass["description"]
    assert bypass["description"].startswith("Apply LoRA in bypass mode.")
    assert list(bypass["input"]["required"]) == ["model", "clip", "lora_name", "strength_model", "strength_clip"]
    assert bypass["input"]["required"]["strength_clip"][1]["min"] == -100.0 and bypass["output"] == ["MODEL", "CLIP"]
    assert list(model_only["input"]["required"]) == ["model", "lora_name", "strength_model"]
    assert (info["LoadLoraModel"]["display_name"], info["LoadLoraModel"]["category"]) == ("Load LoRA (Model)",
                                                                                          "model/loaders")
    assert info["LoadLoraTextEncoder"]["display_name"] == "Load LoRA (Text Encoder)"
    assert info["LoadLoraTextEncoder"]["output"] == ["CLIP"]


def test_simple_add_and_subtract_are_the_state_dict_arithmetic(node_services, pair):
    (m1, _), (m2, _) = pair
    w1, w2 = plain(m1.unet), plain(m2.unet)
    (merged,) = M.ModelMergeSimple().merge(m1, m2, 0.3)
    assert_weights(effective(merged.unet, merged.patches), {k: 0.3 * w1[k] + 0.7 * w2[k] for k in w1})
    (added,) = M.ModelMergeAdd().merge(m1, m2)
    assert_weights(effective(added.unet, added.patches), {k: w1[k] + w2[k] for k in w1})
    (diff,) = M.ModelMergeSubtract().merge(m1, m2, 2.5)
    assert_weights(effective(diff.unet, diff.patches), {k: 2.5 * (w1[k] - w2[k]) for k in w1})
    # lazily: the inputs are untouched, the clones share the weights
    assert m1.patches == {} and merged.unet is m1.unet
    assert_weights(plain(m1.unet), w1)


def test_second_models_patches_are_baked_into_what_is_merged(node_services, pair):
    (m1, _), (m2, _) = pair
    key = "input_blocks.1.1.proj_in.weight"
    lora_patched = m2.clone()
    lora_patched.patches = {key: [lora.WeightPatch(1.0, lora.DiffAdapter(torch.ones_like(m2.unet.state_dict()[key])))]}
    (merged,) = M.ModelMergeSimple().merge(m1, lora_patched, 0.5)
    w1, w2 = plain(m1.unet), plain(m2.unet)
    torch.testing.assert_close(effective(merged.unet, merged.patches)[key], 0.5 * w1[key] + 0.5 * (w2[key] + 1))


def test_merged_model_runs_through_the_engine_as_the_blended_unet(node_services, pair):
    (m1, _), (m2, _) = pair
    w1, w2 = plain(m1.unet), plain(m2.unet)
    (merged,) = M.ModelMergeSimple().merge(m1, m2, 0.25)
    oracle = UNetModel(m1.config)
    oracle.load_state_dict({k: 0.25 * w1[k] + 0.75 * w2[k] for k in w1}, assign=True)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([500.0])
    context = torch.randn(1, 77, m1.config.context_dim, generator=torch.Generator().manual_seed(1))
    with node_services.engine.use_unet(merged) as unet:
        found = unet(x, t, context=context)
    with torch.no_grad():
        expected = oracle(x, t, context=context)
    torch.testing.assert_close(found, expected, atol=1e-5, rtol=1e-4)
    # the second merge reads m1's stored weights, not the loaded copies that carry the first merge
    (again,) = M.ModelMergeSimple().merge(merged, m2, 1.0)
    node_services.engine.unload_all()  # the stored weights back in the module, for `effective`
    assert_weights(effective(again.unet, again.patches), {k: 0.25 * w1[k] + 0.75 * w2[k] for k in w1})


def test_facade_merge_of_a_loaded_model_reads_its_stored_weights(node_services, pair):
    """ComfyUI's merge recipe as packs write it (``get_key_patches`` then ``add_patches``) on a
    model the engine holds loaded with a LoRA in its device copies: the LoRA counts once."""
    (m1, c1), (m2, c2) = pair
    key = "input_blocks.1.1.proj_in.weight"
    w1, w2 = plain(m1.unet), plain(m2.unet)
    lora_patched = m2.clone()
    lora_patched.patches = {key: [lora.WeightPatch(1.0, lora.DiffAdapter(torch.ones_like(w2[key])))]}
    with node_services.engine.use_unet(lora_patched):
        pass  # stays loaded: m2's module now holds the patched copies
    assert torch.equal(m2.unet.state_dict()[key], w2[key] + 1)
    merged = m1.clone()
    added = merged.add_patches(lora_patched.get_key_patches("diffusion_model."), 0.5, 0.5)
    assert "diffusion_model." + key in added
    node_services.engine.unload_all()  # the stored weights back in the modules, for `effective`
    expected = {k: 0.5 * w1[k] + 0.5 * w2[k] for k in w1}
    expected[key] = 0.5 * w1[key] + 0.5 * (w2[key] + 1)
    assert_weights(effective(merged.unet, merged.patches), expected)
    # the same for a CLIP whose encoders are held as converted copies
    tower = "clip_l.text_model.encoder.layers.0.mlp.fc1.weight"
    stored = plain(c2.encoders)[tower]
    with node_services.engine.memory.use(c2.encoders, Placement(torch.device("cpu"), torch.float16)):
        assert c2.encoders.state_dict()[tower].dtype == torch.float16
        found = c2.get_key_patches()["clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight"][0][0]
    assert torch.equal(found, stored)


def test_block_ratio_takes_the_longest_prefix_and_defaults_to_the_first():
    ratios = {"time_embed.": 0.1, "input_blocks.1.": 0.2, "input_blocks.10.": 0.3, "out.": 0.4}
    assert block_ratio("input_blocks.1.0.in_layers.0.weight", ratios) == 0.2
    assert block_ratio("input_blocks.10.0.in_layers.0.weight", ratios) == 0.3
    assert block_ratio("output_blocks.0.0.skip_connection.weight", ratios) == 0.1
    assert block_ratio("input", {"input": 0.5, "in": 0.7}) == 0.5


def test_merge_blocks_picks_each_keys_ratio(node_services, pair):
    (m1, _), (m2, _) = pair
    w1, w2 = plain(m1.unet), plain(m2.unet)
    (merged,) = M.ModelMergeBlocks().merge(m1, m2, input=0.2, middle=0.5, out=0.9)

    def ratio(key):  # "out" also prefixes "output_blocks"; keys no input names take the first ratio
        return 0.5 if key.startswith("middle") else 0.9 if key.startswith("out") else 0.2

    assert_weights(effective(merged.unet, merged.patches), {k: ratio(k) * w1[k] + (1 - ratio(k)) * w2[k] for k in w1})
    names = M.ModelMergeSD1.INPUT_TYPES()["required"]
    ratios = {name: 0.0 for name in names if name not in ("model1", "model2")}
    ratios.update({"time_embed.": 0.4, "input_blocks.1.": 1.0, "out.": 0.7})
    (sd1,) = M.ModelMergeSD1().merge(m1, m2, **ratios)
    weights = effective(sd1.unet, sd1.patches)
    torch.testing.assert_close(weights["time_embed.0.weight"], 0.4 * w1["time_embed.0.weight"] + 0.6 * w2["time_embed.0.weight"])
    key = next(k for k in w1 if k.startswith("input_blocks.1."))
    torch.testing.assert_close(weights[key], w1[key])
    key = next(k for k in w1 if k.startswith("middle_block.1."))
    torch.testing.assert_close(weights[key], w2[key])
    torch.testing.assert_close(weights["out.2.weight"], 0.7 * w1["out.2.weight"] + 0.3 * w2["out.2.weight"])


def test_clip_merges_are_the_state_dict_arithmetic_and_change_the_encoding(node_services, pair):
    (_, c1), (_, c2) = pair
    w1, w2 = plain(c1.encoders), plain(c2.encoders)
    (merged,) = M.CLIPMergeSimple().merge(c1, c2, 0.6)
    assert_weights(effective(merged.encoders, merged.patches), {k: 0.6 * w1[k] + 0.4 * w2[k] for k in w1})
    (added,) = M.CLIPMergeAdd().merge(c1, c2)
    assert_weights(effective(added.encoders, added.patches), {k: w1[k] + w2[k] for k in w1})
    (diff,) = M.CLIPMergeSubtract().merge(c1, c2, -1.5)
    assert_weights(effective(diff.encoders, diff.patches), {k: -1.5 * (w1[k] - w2[k]) for k in w1})
    tokens = c1.tokenize("a red cube")
    (keep,) = M.CLIPMergeSimple().merge(c1, c2, 1.0)
    torch.testing.assert_close(keep.encode_from_tokens(tokens), c1.encode_from_tokens(tokens))
    assert not torch.allclose(merged.encode_from_tokens(tokens), c1.encode_from_tokens(tokens))
    assert c1.patches == {}


def test_attention_multiply_scales_q_k_v_out(node_services, pair):
    (m1, c1), _ = pair
    w = plain(m1.unet)
    (patched,) = M.UNetSelfAttentionMultiply().patch(m1, 0.5, 2.0, 1.0, 3.0)
    found = effective(patched.unet, patched.patches)
    scales = {"attn1.to_q.weight": 0.5, "attn1.to_k.weight": 2.0, "attn1.to_out.0.weight": 3.0,
              "attn1.to_out.0.bias": 3.0}
    scaled = 0
    for key in w:
        scale = next((s for tail, s in scales.items() if key.endswith(tail)), 1.0)
        torch.testing.assert_close(found[key], w[key] * scale, msg=key)
        scaled += scale != 1.0
    blocks = sum(1 for k in w if k.endswith("attn1.to_q.weight"))
    assert blocks > 0 and scaled == 4 * blocks  # q and k have no bias in the SD UNet
    (cross,) = M.UNetCrossAttentionMultiply().patch(m1, 1.0, 1.0, 0.0, 1.0)
    found = effective(cross.unet, cross.patches)
    assert all(float(found[k].abs().max()) == 0.0 for k in w if k.endswith("attn2.to_v.weight"))
    assert all(torch.equal(found[k], w[k]) for k in w if "attn2.to_v" not in k)
    (clip,) = M.CLIPAttentionMultiply().patch(c1, 1.0, 1.0, 1.0, 0.25)
    weights, original = effective(clip.encoders, clip.patches), plain(c1.encoders)
    for key in original:
        scale = 0.25 if ".self_attn.out_proj." in key else 1.0
        torch.testing.assert_close(weights[key], original[key] * scale, msg=key)
    assert m1.patches == {} and c1.patches == {}


def test_clip_handle_speaks_comfyuis_patch_keys(pair):
    (_, c1), (_, c2) = pair
    patches = c2.get_key_patches()
    key = "clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight"
    assert key in patches and torch.equal(patches[key][0][0], c2.encoders.state_dict()["clip_l.text_model.encoder.layers.0.mlp.fc1.weight"])
    twin = c1.clone()
    added = twin.add_patches({key: patches[key], "clip_l.transformer.no.such.weight": patches[key]}, 0.5, 0.5)
    assert added == [key] and list(twin.patches) == ["clip_l.text_model.encoder.layers.0.mlp.fc1.weight"]
    own = "clip_l.text_model.encoder.layers.0.mlp.fc1.weight"
    torch.testing.assert_close(effective(twin.encoders, twin.patches)[own],
                               0.5 * plain(c1.encoders)[own] + 0.5 * plain(c2.encoders)[own])


def tiny_lora(unet: torch.nn.Module, rank: int = 2) -> dict[str, torch.Tensor]:
    """A kohya-named LoRA on a linear layer, 1x1 and 3x3 convolutions (one Tucker LoCon), with a
    bias difference and a norm-scale difference."""
    weights = unet.state_dict()
    g = torch.Generator().manual_seed(5)
    out: dict[str, torch.Tensor] = {}

    def name(module):
        return "lora_unet_" + module.replace(".", "_")

    for module in ("input_blocks.1.1.transformer_blocks.0.attn2.to_k", "input_blocks.1.1.proj_in",
                   "input_blocks.1.0.in_layers.2"):
        shape = weights[module + ".weight"].shape
        out[name(module) + ".lora_down.weight"] = torch.randn(rank, shape[1], *shape[2:], generator=g) * 0.3
        out[name(module) + ".lora_up.weight"] = torch.randn(shape[0], rank, *[1] * (len(shape) - 2), generator=g) * 0.3
        out[name(module) + ".alpha"] = torch.tensor(1.0)
    tucker = "output_blocks.0.0.in_layers.2"
    shape = weights[tucker + ".weight"].shape
    out[name(tucker) + ".lora_down.weight"] = torch.randn(rank, shape[1], 1, 1, generator=g) * 0.3
    out[name(tucker) + ".lora_mid.weight"] = torch.randn(rank, rank, 3, 3, generator=g) * 0.3
    out[name(tucker) + ".lora_up.weight"] = torch.randn(shape[0], rank, 1, 1, generator=g) * 0.3
    out[name("out.2") + ".diff_b"] = torch.randn(weights["out.2.bias"].shape, generator=g)
    out[name("out.2") + ".diff"] = torch.randn(weights["out.2.weight"].shape, generator=g) * 0.05
    out[name("out.0") + ".diff"] = torch.randn(weights["out.0.weight"].shape, generator=g) * 0.1
    return out


def unet_output(engine, model) -> torch.Tensor:
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    context = torch.randn(1, 77, model.config.context_dim, generator=torch.Generator().manual_seed(1))
    options = dict(model.hooks.transformer_options)  # what the sampler hands the UNet (its wrappers)
    with engine.use_unet(model) as unet:
        return unet(x, torch.tensor([300.0]), context=context, transformer_options=options)


def test_bypass_lora_computes_what_the_merged_lora_computes(node_services, pair):
    from nodes import conditioning
    (m1, c1), _ = pair
    folder = node_services.folders.model_roots("loras")[0]
    folder.mkdir(parents=True, exist_ok=True)
    from ldm.loading.checkpoint import save_state_dict
    save_state_dict(folder / "tiny.safetensors", tiny_lora(m1.unet))
    weights = plain(m1.unet)
    merged, merged_clip = conditioning.LoraLoader().load_lora(m1, c1, "tiny.safetensors", 0.7, 0.7)
    bypass, bypass_clip = M.LoraLoaderBypass().load_lora(m1, c1, "tiny.safetensors", 0.7, 0.7)
    # Only the norm scale stays a weight patch; the rest runs beside the untouched weights.
    assert set(bypass.patches) == {"out.0.weight"}
    engine = node_services.engine
    base = unet_output(engine, m1)
    expected = unet_output(engine, merged)
    found = unet_output(engine, bypass)
    assert (expected - base).abs().max() > 1e-2  # the LoRA matters
    torch.testing.assert_close(found, expected, atol=1e-4, rtol=1e-4)
    engine.unload_all()
    assert all(torch.equal(v, weights[k]) for k, v in m1.unet.state_dict().items())
    (only,) = M.LoraLoaderBypassModelOnly().load_lora_model_only(m1, "tiny.safetensors", 0.7)
    torch.testing.assert_close(unet_output(engine, only), expected, atol=1e-4, rtol=1e-4)
    assert M.LoraLoaderBypass().load_lora(m1, c1, "tiny.safetensors", 0.0, 0.0) == (m1, c1)
    assert bypass_clip.patches.keys() == merged_clip.patches.keys()


def test_text_cache_tells_apart_patches_that_differ_only_in_strength_model(node_services, pair):
    import dataclasses
    (_, c1), (_, c2) = pair
    (half,) = M.CLIPMergeSimple().merge(c1, c2, 0.5)
    other = half.clone()
    other.patches = {k: [dataclasses.replace(p, strength_model=0.9) for p in found] for k, found in half.patches.items()}
    tokens = c1.tokenize("a blue sphere")
    first = node_services.engine.encode_tokens(half, tokens)[0][0]
    second = node_services.engine.encode_tokens(other, tokens)[0][0]
    assert not torch.allclose(first, second)


def test_lora_stacks_apply_their_rows_in_order_and_skip_off_rows(node_services, pair):
    from ldm.loading.checkpoint import save_state_dict
    from nodes import conditioning
    (m1, c1), _ = pair
    folder = node_services.folders.model_roots("loras")[0]
    folder.mkdir(parents=True, exist_ok=True)
    save_state_dict(folder / "a.safetensors", tiny_lora(m1.unet))
    text = {f"lora_te_text_model_encoder_layers_0_mlp_fc1.{part}": torch.randn(shape, generator=torch.Generator().manual_seed(i))
            for i, (part, shape) in enumerate((("lora_down.weight", (2, c1.encoders["clip_l"].config.width)),
                                               ("lora_up.weight", (c1.encoders.state_dict()["clip_l.text_model.encoder.layers.0.mlp.fc1.weight"].shape[0], 2))))}
    save_state_dict(folder / "b.safetensors", {**tiny_lora(m1.unet, rank=1), **text})
    spec = M.LoadLoraModel.INPUT_TYPES()
    assert list(spec["required"]) == ["model", "loras.0.lora_name", "loras.0.strength", "loras.0.enabled"]
    assert "loras.19.enabled" in spec["optional"] and "loras.20.lora_name" not in spec["optional"]
    assert spec["required"]["loras.0.strength"][1]["min"] == -100.0
    rows = {"loras.0.lora_name": "a.safetensors", "loras.0.strength": 0.5, "loras.0.enabled": True,
            "loras.1.lora_name": "b.safetensors", "loras.1.strength": 1.0, "loras.1.enabled": False,
            "loras.2.lora_name": "b.safetensors", "loras.2.strength": 0.0, "loras.2.enabled": True,
            "loras.3.lora_name": "b.safetensors", "loras.3.strength": -0.25, "loras.3.enabled": True}
    (stacked,) = M.LoadLoraModel().load(m1, **rows)
    (first,) = conditioning.LoraLoaderModelOnly().load_lora_model_only(m1, "a.safetensors", 0.5)
    (chained,) = conditioning.LoraLoaderModelOnly().load_lora_model_only(first, "b.safetensors", -0.25)
    assert_weights(effective(stacked.unet, stacked.patches), effective(chained.unet, chained.patches))
    assert m1.patches == {}
    (clip,) = M.LoadLoraTextEncoder().load(c1, **rows)
    expected = conditioning.LoraLoader().load_lora(m1, c1, "b.safetensors", 0.0, -0.25)[1]
    assert_weights(effective(clip.encoders, clip.patches), effective(expected.encoders, expected.patches))
    assert clip.patches and c1.patches == {}
