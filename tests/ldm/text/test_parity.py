"""Our text encoders against transformers' CLIPTextModel / CLIPTextModelWithProjection (fp32),
through the same loading path a downloaded checkpoint takes.

The HF models are tiny (width 32, 2 layers) with every weight randomised. SD1 and SDXL's first
encoder are stored in HF layout as in real checkpoints; the OpenCLIP encoders (SD2, SDXL bigG,
refiner) are converted HF -> OpenCLIP by a table written in the test, then loaded through ours.
"""

from __future__ import annotations

import pytest
import torch

from ldm.text import build_clip
from ldm.text.tokenizer import EOS_ID
from tests.ldm.text.conftest import (checkpoint_state, hf_to_openclip_reference, text_body,
                                    with_prefix)

ATOL = 2e-5
PROMPTS = ["a photo of a cat", "", "(masterpiece:1.3), best quality, ((red)) hair, [blue] eyes",
           "café 😀 " + "long prompt words, " * 30]


def hf_run(model, ids: list[list[int]]):
    with torch.no_grad():
        return model(torch.tensor(ids), output_hidden_states=True)


def chunk_ids(tokens):
    return [[t for t, _ in chunk] for chunk in tokens]


def expected_cond(model, tokens, pad, pick):
    """Hand-computed ComfyUI encoding: per chunk output, weighted against the empty prompt."""
    ids = chunk_ids(tokens)
    out = pick(hf_run(model, ids))
    empty = pick(hf_run(model, [[49406, EOS_ID] + [pad] * 75]))
    weights = torch.tensor([[w for _, w in chunk] for chunk in tokens]).unsqueeze(-1)
    weighted = torch.where(weights != 1.0, (out - empty) * weights + empty, out)
    return weighted.reshape(1, -1, out.shape[-1])


def last_normed(result):
    return result.last_hidden_state


def penultimate(result):
    return result.hidden_states[-2]


def pooled_of(model, tokens):
    out = hf_run(model, chunk_ids(tokens)[:1])
    return out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output


@pytest.mark.parametrize("prompt", PROMPTS)
def test_sd1_matches_clip_text_model(hf_clip_l, prompt):
    sd = with_prefix("cond_stage_model.transformer.", checkpoint_state(hf_clip_l))
    clip = build_clip(sd, "sd1")
    tokens = clip.tokenize(prompt)
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    expected = expected_cond(hf_clip_l, tokens["l"], EOS_ID, last_normed)
    assert cond.shape == (1, 77 * len(tokens["l"]), 32)
    torch.testing.assert_close(cond, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(pooled, pooled_of(hf_clip_l, tokens["l"]), atol=ATOL, rtol=0)


def test_sd1_clip_skip_is_normed_penultimate(hf_clip_l):
    clip = build_clip(with_prefix("cond_stage_model.transformer.", checkpoint_state(hf_clip_l)), "sd1")
    skipped = clip.clone()
    skipped.set_last_layer(-2)
    tokens = clip.tokenize("a castle on a hill")
    norm = text_body(hf_clip_l).final_layer_norm
    expected = expected_cond(hf_clip_l, tokens["l"], EOS_ID, lambda r: norm(r.hidden_states[-2]))
    torch.testing.assert_close(skipped.encode_from_tokens(tokens), expected, atol=ATOL, rtol=0)
    # -1 is the last layer, the original handle is untouched by its clone
    last = expected_cond(hf_clip_l, tokens["l"], EOS_ID, last_normed)
    torch.testing.assert_close(clip.encode_from_tokens(tokens), last, atol=ATOL, rtol=0)
    skipped.set_last_layer(-1)
    torch.testing.assert_close(skipped.encode_from_tokens(tokens), last, atol=ATOL, rtol=0)


@pytest.mark.parametrize("family", ["sd2", "sd2_v", "sd_x4"])
@pytest.mark.parametrize("prompt", PROMPTS[::3])
def test_sd2_matches_openclip_h_via_hf(hf_clip_h, family, prompt):
    sd = with_prefix("cond_stage_model.model.", hf_to_openclip_reference(checkpoint_state(hf_clip_h)))
    clip = build_clip(sd, family)
    tokens = clip.tokenize(prompt)
    assert set(tokens) == {"h"} and tokens["h"][-1][-1][0] == 0  # OpenCLIP pads with 0
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    norm = text_body(hf_clip_h).final_layer_norm
    expected = expected_cond(hf_clip_h, tokens["h"], 0, lambda r: norm(r.hidden_states[-2]))
    torch.testing.assert_close(cond, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(pooled, pooled_of(hf_clip_h, tokens["h"]), atol=ATOL, rtol=0)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_sdxl_matches_both_towers(hf_clip_l, hf_clip_g, prompt):
    sd = {**with_prefix("conditioner.embedders.0.transformer.", checkpoint_state(hf_clip_l)),
          **with_prefix("conditioner.embedders.1.model.", hf_to_openclip_reference(checkpoint_state(hf_clip_g)))}
    clip = build_clip(sd, "sdxl")
    tokens = clip.tokenize(prompt)
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    l_part = expected_cond(hf_clip_l, tokens["l"], EOS_ID, penultimate)
    g_part = expected_cond(hf_clip_g, tokens["g"], 0, penultimate)
    torch.testing.assert_close(cond, torch.cat([l_part, g_part], dim=-1), atol=ATOL, rtol=0)
    torch.testing.assert_close(pooled, pooled_of(hf_clip_g, tokens["g"]), atol=ATOL, rtol=0)


def test_sdxl_refiner_is_bigg_alone(hf_clip_g):
    sd = with_prefix("conditioner.embedders.0.model.", hf_to_openclip_reference(checkpoint_state(hf_clip_g)))
    clip = build_clip(sd, "sdxl_refiner")
    tokens = clip.tokenize("a (lighthouse:1.4) at dusk")
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    torch.testing.assert_close(cond, expected_cond(hf_clip_g, tokens["g"], 0, penultimate),
                               atol=ATOL, rtol=0)
    torch.testing.assert_close(pooled, pooled_of(hf_clip_g, tokens["g"]), atol=ATOL, rtol=0)


def test_textual_inversion_vector_acts_as_a_token(hf_clip_l, tmp_path):
    """An embedding whose vector is the token embedding of "cat" encodes exactly like "cat"."""
    import safetensors.torch

    cat_id = 2368
    row = text_body(hf_clip_l).embeddings.token_embedding.weight[cat_id].detach().clone()
    safetensors.torch.save_file({"emb_params": row.unsqueeze(0)}, tmp_path / "kitty.safetensors")
    sd = with_prefix("cond_stage_model.transformer.", checkpoint_state(hf_clip_l))
    clip = build_clip(sd, "sd1", embedding_dirs=[tmp_path])
    with_embedding = clip.encode(" a photo of a embedding:kitty")
    tokens = clip.tokenize("a photo of a cat")
    expected = expected_cond(hf_clip_l, tokens["l"], EOS_ID, last_normed)
    torch.testing.assert_close(with_embedding, expected, atol=ATOL, rtol=0)


def test_weight_one_is_bit_exact(hf_clip_l):
    """Tokens of weight 1 in a weighted prompt keep the unweighted output exactly."""
    clip = build_clip(with_prefix("cond_stage_model.transformer.", checkpoint_state(hf_clip_l)), "sd1")
    plain = clip.encode("a cat")
    tokens = clip.tokenize("a cat")
    tokens["l"][0][5] = (tokens["l"][0][5][0], 1.5)  # weight a padding position only
    weighted = clip.encode_from_tokens(tokens)
    assert torch.equal(weighted[:, :5], plain[:, :5])
    assert not torch.equal(weighted[:, 5], plain[:, 5])
