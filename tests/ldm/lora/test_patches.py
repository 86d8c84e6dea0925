"""LoRA: key mapping (diffusers' own LDM converter as the oracle), patch maths by hand,
bit-exact removal, and patches on MODEL / CLIP handles."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ldm.lora import patches as lora
from ldm.text import build_clip, tiny_text_state_dict
from tests.ldm.lora_fixtures import (SD1_NAMES, SDXL_NAMES, StandInModelHandle, TinyUNetSpec,
                                     compvis_unet_shapes, random_unet)

TINY = TinyUNetSpec()

# diffusers configurations of the two real architectures whose CompVis names we generate
SD1_DIFFUSERS = dict(layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
                     down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                     up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                     cross_attention_dim=768, attention_head_dim=8)
SDXL_DIFFUSERS = dict(layers_per_block=2, block_out_channels=(320, 640, 1280),
                      down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                      up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                      cross_attention_dim=2048, attention_head_dim=(5, 10, 20),
                      transformer_layers_per_block=(1, 2, 10), use_linear_projection=True,
                      addition_embed_type="text_time", addition_time_embed_dim=256,
                      projection_class_embeddings_input_dim=2816)


@pytest.mark.parametrize("spec, config", [(SD1_NAMES, SD1_DIFFUSERS), (SDXL_NAMES, SDXL_DIFFUSERS)],
                         ids=["sd1", "sdxl"])
def test_diffusers_names_match_diffusers_converter(spec, config):
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    keys = list(compvis_unet_shapes(spec))
    tagged = {f"model.diffusion_model.{k}": torch.tensor(i) for i, k in enumerate(keys)}
    converted = convert_ldm_unet_checkpoint(tagged, config)
    with torch.device("meta"):
        diffusers_keys = set(UNet2DConditionModel(**config).state_dict())
    assert set(converted) == diffusers_keys  # our CompVis names are the real ones
    oracle = {diffusers: keys[int(index)] for diffusers, index in converted.items()}
    assert lora.diffusers_unet_weights(keys) == oracle


def test_known_kohya_names():
    sd1 = lora.unet_key_map(compvis_unet_shapes(SD1_NAMES))
    assert sd1["lora_unet_down_blocks_0_attentions_0_proj_in"] == "input_blocks.1.1.proj_in.weight"
    assert sd1["lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_out_0"] == \
        "output_blocks.11.1.transformer_blocks.0.attn2.to_out.0.weight"
    assert sd1["lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj"] == \
        "middle_block.1.transformer_blocks.0.ff.net.0.proj.weight"
    assert sd1["lora_unet_down_blocks_1_resnets_0_conv_shortcut"] == "input_blocks.4.0.skip_connection.weight"
    assert sd1["unet.up_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_out"] == \
        "output_blocks.3.1.transformer_blocks.0.attn1.to_out.0.weight"
    xl = lora.unet_key_map(compvis_unet_shapes(SDXL_NAMES))
    # kohya's SDXL LoRAs use CompVis names
    assert xl["lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k"] == \
        "input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight"
    assert xl["lora_unet_output_blocks_2_2_conv"] == "output_blocks.2.2.conv.weight"
    assert xl["unet.down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_k"] == \
        "input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight"


def lora_pair(out_features, in_shape, rank, generator):
    down = torch.randn((rank, *in_shape), generator=generator)
    up = torch.randn((out_features, rank) + (1, 1) * (len(in_shape) > 1), generator=generator)
    return up, down


def test_linear_and_conv_patches_by_hand():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(32, 16, 3, 3, generator=g)
    up, down = lora_pair(32, (16, 3, 3), 4, g)
    adapter = lora.LoraAdapter(up=up, down=down, alpha=2.0)
    expected = weight + -0.7 * (2.0 / 4) * (up.reshape(32, 4) @ down.reshape(4, -1)).reshape(weight.shape)
    got = lora.patched_weight(weight, [lora.WeightPatch(-0.7, adapter)])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)

    linear = torch.randn(8, 6, generator=g)
    up, down = lora_pair(8, (6,), 2, g)
    no_alpha = lora.LoraAdapter(up=up, down=down)  # alpha missing: scale 1
    torch.testing.assert_close(lora.patched_weight(linear, [lora.WeightPatch(1.5, no_alpha)]),
                               linear + 1.5 * up @ down, atol=1e-5, rtol=0)


def test_tucker_locon_by_hand():
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(12, 10, 3, 3, generator=g)
    down = torch.randn(4, 10, 1, 1, generator=g)
    mid = torch.randn(4, 4, 3, 3, generator=g)
    up = torch.randn(12, 4, 1, 1, generator=g)
    adapter = lora.LoraAdapter(up=up, down=down, alpha=1.0, mid=mid)
    expected = weight.clone()
    for o in range(12):
        for c in range(10):
            # delta[o, c] = sum_a sum_b up[o, a] · mid[a, b] · down[b, c]   (3x3 kernels)
            kernel = sum(up[o, a, 0, 0] * mid[a, b] * down[b, c, 0, 0] for a in range(4) for b in range(4))
            expected[o, c] += 0.5 * (1.0 / 4) * kernel
    got = lora.patched_weight(weight, [lora.WeightPatch(0.5, adapter)])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def kohya_file(generator, rank=4, alpha=2.0):
    """A LoRA in several naming styles at once, aimed at the tiny UNet (32/64 channels)."""
    sd = {}

    def add(name, up_suffix, down_suffix, out_features, in_shape, with_alpha=True, mid=False):
        up, down = lora_pair(out_features, in_shape, rank, generator)
        if mid:
            down = torch.randn(rank, in_shape[0], 1, 1, generator=generator)
            sd[f"{name}.lora_mid.weight"] = torch.randn(rank, rank, 3, 3, generator=generator)
        sd[name + up_suffix] = up
        sd[name + down_suffix] = down
        if with_alpha:
            sd[f"{name}.alpha"] = torch.tensor(alpha)

    add("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
        ".lora_up.weight", ".lora_down.weight", 32, (32,))
    add("lora_unet_down_blocks_0_attentions_0_proj_in", ".lora_up.weight", ".lora_down.weight", 32, (32, 1, 1))
    add("lora_unet_down_blocks_0_resnets_1_conv1", ".lora_up.weight", ".lora_down.weight", 32, (32, 3, 3))
    add("lora_unet_up_blocks_0_resnets_0_conv2", ".lora_up.weight", ".lora_down.weight", 64, (64, 3, 3),
        mid=True)
    add("lora_unet_output_blocks_4_1_transformer_blocks_0_attn2_to_v", ".lora_up.weight",
        ".lora_down.weight", 32, (32,))
    add("unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k", ".lora_B.weight", ".lora_A.weight",
        64, (32,), with_alpha=False)
    add("unet.up_blocks.1.attentions.2.transformer_blocks.0.attn1.processor.to_out", "_lora.up.weight",
        "_lora.down.weight", 32, (32,), with_alpha=False)
    add("unet.down_blocks.0.attentions.1.transformer_blocks.0.ff.net.2", ".lora.up.weight",
        ".lora.down.weight", 32, (128,), with_alpha=False)
    sd["lora_unet_not_a_layer.lora_up.weight"] = torch.zeros(1, 1)
    sd["lora_unet_not_a_layer.lora_down.weight"] = torch.zeros(1, 1)
    return sd


EXPECTED_TARGETS = {
    "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight",
    "input_blocks.1.1.proj_in.weight",
    "input_blocks.2.0.in_layers.2.weight",
    "output_blocks.0.0.out_layers.3.weight",
    "output_blocks.4.1.transformer_blocks.0.attn2.to_v.weight",
    "middle_block.1.transformer_blocks.0.attn2.to_k.weight",
    "output_blocks.5.1.transformer_blocks.0.attn1.to_out.0.weight",
    "input_blocks.2.1.transformer_blocks.0.ff.net.2.weight",
}


def test_lora_file_maps_to_unet_weights():
    unet = random_unet(TINY)
    adapters, unmatched = lora.load_lora(kohya_file(torch.Generator().manual_seed(2)),
                                         lora.unet_key_map(unet.state_dict()))
    assert set(adapters) == EXPECTED_TARGETS
    assert unmatched == ["lora_unet_not_a_layer"]
    state = unet.state_dict()
    for key, adapter in adapters.items():
        assert adapter.delta(state[key].shape).shape == state[key].shape


@pytest.mark.parametrize("strength", [1.0, 0.35, -1.3, 4.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_apply_then_remove_is_bit_exact(strength, dtype):
    unet = random_unet(TINY, dtype=dtype)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    model = StandInModelHandle(unet)
    patched_model, _ = lora.load_lora_for_models(model, None, kohya_file(torch.Generator().manual_seed(3)),
                                                 strength, 0.0)
    assert model.patches == {} and set(patched_model.patches) == EXPECTED_TARGETS
    with lora.patched(unet, patched_model.patches):
        changed = {k for k, v in unet.state_dict().items() if not torch.equal(v, before[k])}
        assert changed == EXPECTED_TARGETS  # only the touched weights move
    for key, value in unet.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_patched_output_equals_hand_computed_layer():
    unet = random_unet(TINY)
    model = StandInModelHandle(unet)
    g = torch.Generator().manual_seed(4)
    up, down = lora_pair(32, (32,), 4, g)
    file = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight": up,
            "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight": down,
            "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha": torch.tensor(8.0)}
    key = "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"
    base = unet.state_dict()[key].clone()
    x = torch.randn(3, 32, generator=g)
    once, _ = lora.load_lora_for_models(model, None, file, 0.8, 1.0)
    twice, _ = lora.load_lora_for_models(once, None, file, -0.3, 1.0)  # stacked LoRAs add up
    with lora.patched(unet, twice.patches):
        got = F.linear(x, unet.get_parameter(key))
    expected = F.linear(x, base + (0.8 - 0.3) * (8.0 / 4) * up @ down)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_failed_application_restores_what_it_touched():
    unet = random_unet(TINY)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    good = lora.WeightPatch(1.0, lora.DiffAdapter(torch.ones(32, 32)))
    patches = {"input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight": [good],
               "input_blocks.1.1.nowhere.weight": [good]}
    with pytest.raises(KeyError):
        lora.apply_patches(unet, patches)
    assert all(torch.equal(v, before[k]) for k, v in unet.state_dict().items())


def text_lora(clip, prefix: str, layer: int, generator, rank=2):
    width = 32
    name = f"{prefix}text_model_encoder_layers_{layer}_self_attn_q_proj"
    return {f"{name}.lora_up.weight": torch.randn(width, rank, generator=generator),
            f"{name}.lora_down.weight": torch.randn(rank, width, generator=generator),
            f"{name}.alpha": torch.tensor(1.0)}


def test_text_encoder_lora_changes_only_the_clone():
    clip = build_clip(tiny_text_state_dict("sd1"), "sd1")
    before = {k: v.clone() for k, v in clip.encoders.state_dict().items()}
    plain = clip.encode("a red fox")
    file = text_lora(clip, "lora_te_", 1, torch.Generator().manual_seed(5))
    _, patched_clip = lora.load_lora_for_models(None, clip, file, 1.0, 0.9)
    assert list(patched_clip.patches) == ["clip_l.text_model.encoder.layers.1.self_attn.q_proj.weight"]
    with_lora = patched_clip.encode("a red fox")
    assert not torch.allclose(with_lora, plain)
    assert torch.equal(clip.encode("a red fox"), plain)
    assert all(torch.equal(v, before[k]) for k, v in clip.encoders.state_dict().items())
    # the same result as weights edited by hand before loading
    sd = dict(tiny_text_state_dict("sd1"))
    key = "cond_stage_model.transformer.text_model.encoder.layers.1.self_attn.q_proj.weight"
    up = file["lora_te_text_model_encoder_layers_1_self_attn_q_proj.lora_up.weight"]
    down = file["lora_te_text_model_encoder_layers_1_self_attn_q_proj.lora_down.weight"]
    sd[key] = sd[key] + 0.9 * (1.0 / 2) * up @ down
    torch.testing.assert_close(with_lora, build_clip(sd, "sd1").encode("a red fox"), atol=1e-5, rtol=0)


def test_sdxl_te1_te2_and_diffusers_text_names():
    clip = build_clip(tiny_text_state_dict("sdxl"), "sdxl")
    g = torch.Generator().manual_seed(6)
    file = {**text_lora(clip, "lora_te1_", 0, g), **text_lora(clip, "lora_te2_", 1, g)}
    file["text_encoder_2.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer.up.weight"] = torch.randn(128, 2)
    file["text_encoder_2.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer.down.weight"] = torch.randn(2, 32)
    _, patched_clip = lora.load_lora_for_models(None, clip, file, 1.0, 1.0)
    assert set(patched_clip.patches) == {
        "clip_l.text_model.encoder.layers.0.self_attn.q_proj.weight",
        "clip_g.text_model.encoder.layers.1.self_attn.q_proj.weight",
        "clip_g.text_model.encoder.layers.0.mlp.fc1.weight"}
    refiner = build_clip(tiny_text_state_dict("sdxl_refiner"), "sdxl_refiner")
    keys = lora.clip_key_map(refiner.encoders.state_dict())
    assert keys["lora_te_text_model_encoder_layers_0_mlp_fc2"] == "clip_g.text_model.encoder.layers.0.mlp.fc2.weight"
    assert "lora_te2_text_model_encoder_layers_0_mlp_fc2" not in keys


def test_zero_strength_changes_nothing():
    unet = random_unet(TINY)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    model, _ = lora.load_lora_for_models(StandInModelHandle(unet), None,
                                         kohya_file(torch.Generator().manual_seed(7)), 0.0, 0.0)
    with lora.patched(unet, model.patches):
        assert all(torch.equal(v, before[k]) for k, v in unet.state_dict().items())
