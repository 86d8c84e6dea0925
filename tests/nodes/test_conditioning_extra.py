"""The conditioning nodes added to nodes.conditioning for issue #15: ConditioningMultiply,
ConditioningTimestepsRange, CLIPTextEncodeControlnet, InstructPixToPixConditioning."""

from __future__ import annotations

import torch

from graph.registry import NodeRegistry
from nodes import conditioning as nc
from tests.nodes.sampling_support import make_runner
from tests.nodes.sampling_support import one_torch_thread, sd1, tiny_sd1  # noqa: F401 (fixtures)


def test_schema():
    registry = NodeRegistry()
    assert registry.register_mappings(nc.NODE_CLASS_MAPPINGS, nc.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    info = registry.object_info()
    multiply = info["ConditioningMultiply"]
    assert multiply["display_name"] == "Conditioning (Multiply)"
    assert multiply["input"]["required"]["multiplier"] == ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0,
                                                                     "step": 0.01})
    ranges = info["ConditioningTimestepsRange"]
    assert ranges["display_name"] == "Timesteps Range" and ranges["experimental"]
    assert ranges["output"] == ["TIMESTEPS_RANGE"] * 3
    assert ranges["output_name"] == ["TIMESTEPS_RANGE", "BEFORE_RANGE", "AFTER_RANGE"]
    assert ranges["input"]["required"]["end_percent"][1] == {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001}
    controlnet = info["CLIPTextEncodeControlnet"]
    assert controlnet["input_order"]["required"] == ["clip", "conditioning", "text"]
    assert controlnet["input"]["required"]["text"][1] == {"multiline": True, "dynamicPrompts": True}
    assert controlnet["category"] == "model/conditioning" and controlnet["experimental"]
    assert {name: info[name]["display_name"] for name in ("LoraLoader", "LoraLoaderModelOnly", "DualCLIPLoader",
                                                         "ConditioningAverage", "ConditioningZeroOut")} == {
        "LoraLoader": "Load LoRA (Model and CLIP)", "LoraLoaderModelOnly": "Load LoRA",
        "DualCLIPLoader": "Load CLIP (Dual)", "ConditioningAverage": "Conditioning (Average)",
        "ConditioningZeroOut": "Conditioning Zero Out"}
    assert info["CLIPSetLastLayer"]["input"]["required"]["stop_at_clip_layer"][1]["advanced"] is True
    assert info["CLIPLoader"]["input"]["required"]["type"][0][-3:] == ["mage", "minimax", "yue2"]
    assert len(info["CLIPLoader"]["input"]["required"]["type"][0]) == 29
    assert info["DualCLIPLoader"]["input"]["required"]["type"][0][6:] == [
        "hunyuan_video_15", "kandinsky5", "kandinsky5_image", "ltxv", "newbie", "ace"]
    ip2p = info["InstructPixToPixConditioning"]
    assert ip2p["input_order"]["required"] == ["positive", "negative", "vae", "pixels"]
    assert ip2p["output"] == ["CONDITIONING", "CONDITIONING", "LATENT"]
    assert ip2p["output_name"] == ["positive", "negative", "latent"]
    assert ip2p["category"] == "conditioning/instructpix2pix"


def test_conditioning_multiply_scales_embedding_and_pooled_output():
    cond, pooled = torch.randn(1, 77, 32), torch.randn(1, 32)
    conditioning = [[cond, {"pooled_output": pooled, "strength": 0.5}], [cond + 1, {}]]
    [out] = nc.ConditioningMultiply().multiply(conditioning, -2.5)
    torch.testing.assert_close(out[0][0], cond * -2.5)
    torch.testing.assert_close(out[0][1]["pooled_output"], pooled * -2.5)
    assert out[0][1]["strength"] == 0.5 and "pooled_output" not in out[1][1]
    torch.testing.assert_close(out[1][0], (cond + 1) * -2.5)
    assert conditioning[0][1]["pooled_output"] is pooled  # the input is not changed


def test_timesteps_range_splits_the_run_in_three():
    assert nc.ConditioningTimestepsRange().create_range(0.25, 0.8) == ((0.25, 0.8), (0.0, 0.25), (0.8, 1.0))


def test_clip_text_encode_controlnet_adds_the_texts_encoding(tmp_path, sd1):
    _, clip, _ = sd1
    base = [[torch.zeros(1, 77, 32), {"pooled_output": torch.zeros(1, 32)}]]
    [out] = make_runner(tmp_path)(nc.CLIPTextEncodeControlnet().encode, clip, base, "a blue house")
    expected, expected_pooled = clip.encode_from_tokens(clip.tokenize("a blue house"), return_pooled=True)
    torch.testing.assert_close(out[0][1]["cross_attn_controlnet"], expected)
    torch.testing.assert_close(out[0][1]["pooled_output_controlnet"], expected_pooled)
    assert out[0][0] is base[0][0] and "cross_attn_controlnet" not in base[0][1]


def test_instruct_pix2pix_conditioning_encodes_the_centre_crop(tmp_path, sd1):
    _, _, vae = sd1
    pixels = torch.rand(1, 21, 30, 3, generator=torch.Generator().manual_seed(2))
    positive = [[torch.ones(1, 77, 32), {"strength": 1.0}]]
    negative = [[torch.zeros(1, 77, 32), {}]]
    pos, neg, latent = make_runner(tmp_path)(nc.InstructPixToPixConditioning().encode, positive, negative, pixels,
                                             vae)
    # 21×30 → 16×24, offsets ((21 % 8) // 2, (30 % 8) // 2) = (2, 3)
    expected = vae.encode(pixels[:, 2:18, 3:27, :])
    torch.testing.assert_close(pos[0][1]["concat_latent_image"], expected)
    assert neg[0][1]["concat_latent_image"] is pos[0][1]["concat_latent_image"]
    assert pos[0][1]["strength"] == 1.0 and "concat_latent_image" not in positive[0][1]
    assert latent["samples"].shape == expected.shape and not latent["samples"].any()
