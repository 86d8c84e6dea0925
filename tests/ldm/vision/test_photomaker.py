"""PhotoMaker: the ID embedding and fuse module by hand, ComfyUI's trigger-word rule, file layouts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ldm.loading.checkpoint import save_state_dict
from ldm.vision.photomaker import PhotoMakerError, load_photomaker, trigger_tokens
from ldm.vision.tiny import tiny_photomaker_weights, write_tiny_photomaker


def _mlp(x, w, prefix, residual):
    h = F.layer_norm(x, (x.shape[-1],), w[f"{prefix}.layernorm.weight"], w[f"{prefix}.layernorm.bias"])
    h = F.gelu(h @ w[f"{prefix}.fc1.weight"].T + w[f"{prefix}.fc1.bias"]) @ w[f"{prefix}.fc2.weight"].T + w[f"{prefix}.fc2.bias"]
    return h + x if residual else h


def test_fuse_prompt_by_hand(tmp_path):
    weights = tiny_photomaker_weights(seed=1)
    encoder = load_photomaker(write_tiny_photomaker(tmp_path / "pm.bin", seed=1))
    pixels = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    prompt = torch.randn(1, 77, 64, generator=torch.Generator().manual_seed(3))
    out = encoder.fuse_prompt(pixels, prompt, class_position=5)

    with torch.no_grad():
        pooled = encoder.encode(pixels[:1])[2]
    identity = torch.cat([pooled @ weights["visual_projection.weight"].T, pooled @ weights["visual_projection_2.weight"].T], -1)
    token = prompt[:, 5]
    fused = _mlp(torch.cat([token, identity], -1), weights, "fuse_module.mlp1", False) + token
    fused = _mlp(fused, weights, "fuse_module.mlp2", True)
    fused = F.layer_norm(fused, (64,), weights["fuse_module.layer_norm.weight"], weights["fuse_module.layer_norm.bias"])
    assert torch.allclose(out[:, 5], fused, atol=1e-5)
    untouched = torch.ones(77, dtype=torch.bool)
    untouched[5] = False
    assert torch.equal(out[:, untouched], prompt[:, untouched])
    with pytest.raises(ValueError, match="beyond the prompt's 77 tokens"):
        encoder.fuse_prompt(pixels, prompt, class_position=80)


def test_trigger_word_rule_is_comfyuis():
    # word ids as the tokenizer gives them: here the trigger is the first word of the segment
    tokens = {"l": [[(49406, 1.0, 0), (10, 1.0, 1), (11, 1.0, 1), (12, 1.0, 2), (49407, 1.0, 0), (0, 1.0, 0)]]}
    out, position = trigger_tokens(tokens, "photomaker man")
    assert position == 0
    assert out["l"][0] == [(49406, 1.0, 0), (12, 1.0, 2), (49407, 1.0, 0), (0, 1.0, 0), (0, 1.0, 0), (0, 1.0, 0)]
    # the trigger as the third word: nothing carries word id 3, the class token is position 2
    out, position = trigger_tokens(tokens, "a man photomaker")
    assert position == 2 and out == tokens
    assert trigger_tokens(tokens, "a man") == (tokens, None)


def test_layouts(tmp_path):
    weights = tiny_photomaker_weights(seed=4)
    save_state_dict(tmp_path / "pm.safetensors", {f"id_encoder.{k}": v for k, v in weights.items()})
    from_st = load_photomaker(tmp_path / "pm.safetensors")
    from_bin = load_photomaker(write_tiny_photomaker(tmp_path / "pm.bin", seed=4))
    pixels = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.equal(from_st.id_embeds(pixels), from_bin.id_embeds(pixels))
    save_state_dict(tmp_path / "x.safetensors", {"vision_model.embeddings.class_embedding": torch.zeros(4)})
    with pytest.raises(PhotoMakerError, match="not a PhotoMaker ID encoder"):
        load_photomaker(tmp_path / "x.safetensors")
