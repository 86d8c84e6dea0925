"""The T2I style adapter against a reference built on torch.nn.MultiheadAttention (the published
adapter's own attention layer) with the same weights, and ComfyUI's token appending."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ldm.loading.checkpoint import save_state_dict
from ldm.vision.clip_vision import ClipVisionOutput
from ldm.vision.style_model import StyleModelError, append_style_tokens, load_style_model
from ldm.vision.tiny import tiny_style_adapter_state_dict, write_tiny_style_model


def _reference(sd: dict, hidden: torch.Tensor) -> torch.Tensor:
    """The style branch as published: sequence-first nn.MultiheadAttention blocks with quick-GELU."""
    width = sd["style_embedding"].shape[-1]
    tokens = sd["style_embedding"].shape[1]

    def norm(x, name):
        return nn.functional.layer_norm(x, (width,), sd[f"{name}.weight"], sd[f"{name}.bias"])

    x = torch.cat([hidden, sd["style_embedding"].expand(hidden.shape[0], -1, -1)], dim=1)
    x = norm(x, "ln_pre").permute(1, 0, 2)  # NLD -> LND
    layer = 0
    while f"transformer_layes.{layer}.ln_1.weight" in sd:
        p = f"transformer_layes.{layer}."
        attention = nn.MultiheadAttention(width, 8)
        attention.load_state_dict({"in_proj_weight": sd[p + "attn.in_proj_weight"], "in_proj_bias": sd[p + "attn.in_proj_bias"],
                                   "out_proj.weight": sd[p + "attn.out_proj.weight"], "out_proj.bias": sd[p + "attn.out_proj.bias"]})
        h = norm(x, p + "ln_1")
        x = x + attention(h, h, h, need_weights=False)[0]
        h = norm(x, p + "ln_2") @ sd[p + "mlp.c_fc.weight"].T + sd[p + "mlp.c_fc.bias"]
        x = x + (h * torch.sigmoid(1.702 * h)) @ sd[p + "mlp.c_proj.weight"].T + sd[p + "mlp.c_proj.bias"]
        layer += 1
    x = x.permute(1, 0, 2)
    return norm(x[:, -tokens:], "ln_post") @ sd["proj"]


def _vision(hidden):
    return ClipVisionOutput(image_embeds=hidden[:, 0], last_hidden_state=hidden, penultimate_hidden_states=hidden)


def test_adapter_matches_the_reference(tmp_path):
    sd = tiny_style_adapter_state_dict(seed=1)
    model = load_style_model(write_tiny_style_model(tmp_path / "style.safetensors", seed=1))
    hidden = torch.randn(2, 50, 32, generator=torch.Generator().manual_seed(2))
    got = model.get_cond(_vision(hidden))
    with torch.no_grad():
        expected = _reference(sd, hidden)
    assert got.shape == (2, 4, 32)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4)


def test_non_style_files_are_refused(tmp_path):
    save_state_dict(tmp_path / "redux.safetensors", {"redux_down.weight": torch.zeros(2, 2)})
    with pytest.raises(StyleModelError, match="Flux Redux"):
        load_style_model(tmp_path / "redux.safetensors")
    save_state_dict(tmp_path / "other.safetensors", {"x": torch.zeros(2)})
    with pytest.raises(StyleModelError, match="not a style model"):
        load_style_model(tmp_path / "other.safetensors")


def test_multiply_scales_and_appends_the_tokens():
    text = torch.randn(1, 77, 32)
    tokens = torch.randn(2, 4, 32)
    out = append_style_tokens([[text, {"pooled_output": None}]], tokens, 0.5, "multiply")
    cond, extras = out[0]
    assert cond.shape == (1, 77 + 8, 32)
    assert torch.equal(cond[:, :77], text)
    assert torch.allclose(cond[:, 77:], 0.5 * tokens.reshape(1, 8, 32))
    assert "attention_mask" not in extras


def test_attn_bias_keeps_the_tokens_and_records_log_strength():
    text = torch.randn(1, 10, 32)
    tokens = torch.randn(1, 3, 32)
    (cond, extras), = append_style_tokens([[text, {}]], tokens, 0.25, "attn_bias")
    assert torch.equal(cond[:, 10:], tokens)
    mask = extras["attention_mask"].float()
    n_ref = 1  # the default reference shape (1, 1)
    assert mask.shape == (1, 10 + 3 + n_ref, 10 + 3 + n_ref)
    assert torch.allclose(mask[:, :10, 10:13], torch.full((1, 10, 3), math.log(0.25)), atol=1e-3)
    assert torch.allclose(mask[:, 13:, 10:13], torch.full((1, n_ref, 3), math.log(0.25)), atol=1e-3)
    assert torch.count_nonzero(mask[:, 10:13, :]) == 0 and torch.count_nonzero(mask[:, :10, :10]) == 0
    # strength 1 with attn_bias and no mask: nothing to record
    (_, plain), = append_style_tokens([[text, {}]], tokens, 1.0, "attn_bias")
    assert "attention_mask" not in plain


def test_an_existing_boolean_mask_grows_around_the_new_tokens():
    text = torch.randn(1, 2, 8)
    mask = torch.tensor([[[True, False, True], [True, True, True], [False, True, True]]])
    (_, extras), = append_style_tokens([[text, {"attention_mask": mask}]], torch.randn(1, 1, 8), 2.0, "multiply")
    grown = extras["attention_mask"].float()
    as_bias = torch.log(mask.float())
    assert grown.shape == (1, 4, 4)
    assert torch.equal(grown[:, :2, :2], as_bias[:, :2, :2])
    assert torch.equal(grown[:, :2, 3:], as_bias[:, :2, 2:])
    assert torch.equal(grown[:, 3:, :2], as_bias[:, 2:, :2])
    assert torch.count_nonzero(grown[:, :, 2]) == 0  # multiply: log(1) on the style column
