"""ldm.text.layouts: OpenCLIP's residual blocks renamed to ours and back, for text and vision towers."""

from __future__ import annotations

import pytest
import torch

from ldm.text.layouts import TextLayoutError, hf_to_openclip, openclip_to_hf
from ldm.vision.clip_vision import hf_to_openclip_visual, openclip_visual_to_hf

BLOCK = ("layer_norm1", "layer_norm2", "self_attn.out_proj", "self_attn.q_proj", "self_attn.k_proj",
         "self_attn.v_proj", "mlp.fc1", "mlp.fc2")


def hf_blocks(tower: str, layers: int = 2, width: int = 4) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {f"{tower}.encoder.layers.{i}.{name}.{kind}": torch.randn(width, generator=generator)
            for i in range(layers) for name in BLOCK for kind in ("weight", "bias")}


def test_text_tower_round_trip():
    ours = {**hf_blocks("text_model"), "text_model.final_layer_norm.weight": torch.ones(4),
            "text_projection.weight": torch.randn(3, 4)}
    theirs = hf_to_openclip(ours)
    fused = theirs["transformer.resblocks.1.attn.in_proj_bias"]
    assert torch.equal(fused, torch.cat([ours[f"text_model.encoder.layers.1.self_attn.{n}_proj.bias"]
                                         for n in "qkv"]))
    assert torch.equal(theirs["transformer.resblocks.0.mlp.c_fc.weight"],
                       ours["text_model.encoder.layers.0.mlp.fc1.weight"])
    back = openclip_to_hf(theirs)
    assert back.keys() == ours.keys() and all(torch.equal(back[k], ours[k]) for k in ours)


def test_vision_tower_round_trip():
    ours = {**hf_blocks("vision_model"), "vision_model.pre_layrnorm.bias": torch.zeros(4),
            "visual_projection.weight": torch.randn(3, 4)}
    theirs = hf_to_openclip_visual({**ours, "vision_model.embeddings.position_ids": torch.arange(4)})
    assert "transformer.resblocks.0.attn.in_proj_weight" in theirs and len(theirs) == len(ours) - 2 * 4
    back = openclip_visual_to_hf(theirs)
    assert back.keys() == ours.keys() and all(torch.equal(back[k], ours[k]) for k in ours)


def test_a_text_key_without_an_openclip_name_is_refused():
    with pytest.raises(TextLayoutError, match="no OpenCLIP name"):
        hf_to_openclip({"text_model.encoder.layers.0.mystery.weight": torch.zeros(1)})
