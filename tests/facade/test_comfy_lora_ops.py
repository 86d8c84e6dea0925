"""``comfy.lora`` (a pack's own LoRA loader equals Weft's LoraLoader) and ``comfy.ops`` (layers)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ldm.lora.patches import LoraAdapter, WeightPatch, patched_weight
from tests.e2e.conftest import write_tiny_lora
from tests.facade.test_sampling_facade import base_prompt, ksampler


@pytest.fixture
def lora_studio(pack_studio, tiny_sd1):
    loras = pack_studio.services.folders.model_roots("loras")[0]
    write_tiny_lora(loras / "tiny_lora.safetensors", tiny_sd1)
    reports = pack_studio.load("sampler_pack.py", "lora_pack.py")
    assert all(r.loaded for r in reports), [r.error for r in reports]
    return pack_studio


def _sampled_with(studio, lora_node: dict) -> torch.Tensor:
    prompt = base_prompt(ksampler(sampler="euler", steps=2), model_ref=("7", 0))
    prompt["7"] = lora_node
    studio.run(prompt)
    return studio.registry.get("LatentStash").node_class.seen["out"]


def _pack_lora(strength=0.8, block_weights=""):
    return {"class_type": "PackLoraLoader", "inputs": {"model": ["1", 0], "lora_name": "tiny_lora.safetensors",
                                                       "strength_model": strength, "block_weights": block_weights}}


def test_pack_lora_loader_equals_weft_lora_loader(lora_studio):
    builtin = {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["1", 0], "lora_name": "tiny_lora.safetensors",
                                                                "strength_model": 0.8}}
    ours = _sampled_with(lora_studio, builtin)
    theirs = _sampled_with(lora_studio, _pack_lora())
    assert torch.equal(ours, theirs)
    without_output_blocks = _sampled_with(lora_studio, _pack_lora(block_weights="output_blocks:0"))
    assert not torch.equal(without_output_blocks, ours)


def test_load_lora_targets_and_adapters(pack_studio, tiny_sd1, tmp_path):
    import comfy.lora
    import comfy.utils
    from ldm.lora.patches import load_lora_for_models
    from ldm.model import load_checkpoint

    model = load_checkpoint(tiny_sd1, with_clip=False)[0]
    lora = comfy.utils.load_torch_file(str(write_tiny_lora(tmp_path / "l.safetensors", tiny_sd1)))
    key_map = comfy.lora.model_lora_keys_unet(model.model)
    assert all(v.startswith("diffusion_model.") for v in key_map.values())
    loaded = comfy.lora.load_lora(lora, key_map, log_missing=False)
    reference = load_lora_for_models(model, None, lora, 1.0, 0.0)[0].patches
    assert {"diffusion_model." + k for k in reference} == set(loaded)
    key = next(iter(loaded))
    adapter = loaded[key]
    assert isinstance(adapter, LoraAdapter) and adapter.name == "lora"
    assert adapter.weights[0] is reference[key[len("diffusion_model."):]][0].adapter.up
    # KJNodes rewrites the alpha through ComfyUI's weights tuple.
    shape = model.model_state_dict()[key].shape
    before = adapter.delta(shape)
    weights = list(adapter.weights)
    weights[2] = adapter.alpha / 2
    adapter.weights = tuple(weights)
    torch.testing.assert_close(adapter.delta(shape), before / 2)


def test_load_lora_refuses_adapter_kinds_weft_lacks():
    import comfy.lora

    loha = {"lora_unet_x.hada_w1_a": torch.zeros(1), "lora_unet_x.hada_w1_b": torch.zeros(1)}
    with pytest.raises(NotImplementedError, match="LoHa"):
        comfy.lora.load_lora(loha, {"lora_unet_x": "diffusion_model.x.weight"})
    dora = {"lora_unet_x.lora_up.weight": torch.zeros(2, 1), "lora_unet_x.lora_down.weight": torch.zeros(1, 2),
            "lora_unet_x.dora_scale": torch.ones(2, 1)}
    with pytest.raises(NotImplementedError, match="DoRA"):
        comfy.lora.load_lora(dora, {"lora_unet_x": "diffusion_model.x.weight"})
    norms = {"x.w_norm": torch.ones(3), "x.b_norm": torch.ones(3)}
    loaded = comfy.lora.load_lora(norms, {"x": "diffusion_model.x.weight"})
    assert set(loaded) == {"diffusion_model.x.weight", "diffusion_model.x.bias"}


def test_model_lora_keys_clip_uses_the_clip_handle_names(pack_studio, tiny_sd1):
    import comfy.lora
    from ldm.model import load_checkpoint

    clip = load_checkpoint(tiny_sd1)[1]
    key_map = comfy.lora.model_lora_keys_clip(clip, {"already": "there"})
    assert key_map["already"] == "there"
    target = key_map["lora_te_text_model_encoder_layers_0_self_attn_q_proj"]
    assert target == "clip_l.text_model.encoder.layers.0.self_attn.q_proj.weight"
    assert target in clip.encoders.state_dict()
    assert comfy.lora.model_lora_keys_clip(clip.encoders) == comfy.lora.model_lora_keys_clip(clip)


def test_calculate_weight_applies_comfy_patch_lists(pack_studio):
    import comfy.lora

    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(6, 4, generator=gen)
    up, down = torch.randn(6, 2, generator=gen), torch.randn(2, 4, generator=gen)
    lora = LoraAdapter(up=up, down=down, alpha=1.0)
    expected = patched_weight(weight, [WeightPatch(0.7, lora, 0.5)])
    out = comfy.lora.calculate_weight([(0.7, ("lora", (up, down, 1.0, None)), 0.5, None, None)], weight.clone(), "k")
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(comfy.lora.calculate_weight([WeightPatch(0.7, lora, 0.5)], weight.clone(), "k"),
                               expected)
    diff = torch.ones(6, 4)
    torch.testing.assert_close(comfy.lora.calculate_weight([(0.5, (diff,))], weight.clone(), "k"), weight + 0.5)
    # An offset patches a slice; a function maps the scaled difference.
    sliced = comfy.lora.calculate_weight([(1.0, ("diff", (torch.ones(2, 4),)), 1.0, (0, 2, 2), lambda d: d * 3)],
                                         weight.clone(), "k")
    torch.testing.assert_close(sliced[2:4], weight[2:4] + 3)
    torch.testing.assert_close(sliced[:2], weight[:2])
    replaced = comfy.lora.calculate_weight([(1.0, ("set", (torch.zeros(6, 4),)))], weight.clone(), "k")
    assert not replaced.any()
    as_lora = comfy.lora.calculate_weight([(2.0, ("model_as_lora", (weight + 1,)))], weight.clone(), "k",
                                          original_weights={"k": [(weight,)]})
    torch.testing.assert_close(as_lora, weight + 2)
    mismatched = comfy.lora.calculate_weight([(1.0, (torch.ones(3, 3),))], weight.clone(), "k")
    assert torch.equal(mismatched, weight)
    with pytest.raises(NotImplementedError, match="loha"):
        comfy.lora.calculate_weight([(1.0, ("loha", (up, down)))], weight.clone(), "k")


def test_manual_cast_layers_cast_per_call(pack_studio):
    import comfy.ops

    linear = comfy.ops.manual_cast.Linear(4, 3, dtype=torch.float16)
    torch.nn.init.normal_(linear.weight)
    torch.nn.init.normal_(linear.bias)
    x = torch.randn(2, 4)
    assert linear(x).dtype == torch.float32
    torch.testing.assert_close(linear(x), F.linear(x, linear.weight.float(), linear.bias.float()))
    conv = comfy.ops.manual_cast.Conv3d(2, 3, 3, padding=1, dtype=torch.bfloat16)
    torch.nn.init.normal_(conv.weight)
    torch.nn.init.normal_(conv.bias)  # the layers skip init: their memory is whatever torch.empty gave
    video = torch.randn(1, 2, 3, 4, 4)
    torch.testing.assert_close(conv(video), F.conv3d(video, conv.weight.float(), conv.bias.float(), padding=1))
    up = comfy.ops.manual_cast.ConvTranspose2d(2, 3, 3, stride=2, dtype=torch.float16)
    assert up(torch.randn(1, 2, 4, 4)).shape == (1, 3, 9, 9)
    table = comfy.ops.manual_cast.Embedding(10, 4)
    assert table(torch.tensor([1, 2]), out_dtype=torch.float16).dtype == torch.float16
    weight, bias, stream = comfy.ops.cast_bias_weight(linear, x, offloadable=True)
    assert weight.dtype == torch.float32 and stream is None
    comfy.ops.uncast_bias_weight(linear, weight, bias, stream)


def test_disable_weight_init_layers_and_weight_functions(pack_studio):
    import comfy.ops
    from ldm.networks import ops as weft_ops

    linear = comfy.ops.disable_weight_init.Linear(4, 3)
    assert isinstance(linear, weft_ops.Linear) and not linear.comfy_cast_weights
    norm = comfy.ops.disable_weight_init.GroupNorm(2, 4)
    norm.weight.data.fill_(1.0)
    norm.bias.data.zero_()
    x = torch.randn(1, 4, 2, 2)
    plain = norm(x)
    norm.weight_function = [lambda w: w * 2]
    torch.testing.assert_close(norm(x), plain * 2)

    class CleanGroupNorm(comfy.ops.manual_cast.GroupNorm):  # Advanced-ControlNet's override pattern
        calls = 0

        def forward_comfy_cast_weights(self, input):
            CleanGroupNorm.calls += 1
            weight, bias, stream = comfy.ops.cast_bias_weight(self, input, offloadable=True)
            return F.group_norm(input, self.num_groups, weight, bias, self.eps)

    CleanGroupNorm(2, 4)(x)
    assert CleanGroupNorm.calls == 1
    assert isinstance(comfy.ops.disable_weight_init.conv_nd(2, 2, 3, 1), torch.nn.Conv2d)
    assert comfy.ops.pick_operations(torch.float16, torch.float32) is comfy.ops.manual_cast
    assert comfy.ops.pick_operations(torch.float16, None) is comfy.ops.disable_weight_init
    with pytest.raises(NotImplementedError, match="scaled-fp8"):
        comfy.ops.pick_operations(torch.float8_e4m3fn, torch.float16, scaled_fp8=torch.float8_e4m3fn)
