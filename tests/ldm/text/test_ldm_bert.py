"""The LDM BERT text encoder against diffusers' ``LDMBertModel`` holding the same random weights.

The key mapping below (CompVis x-transformers layout -> diffusers) is written here, from the two
codebases' module trees, independently of ``ldm.text.ldm_bert``; it agrees with the copy order of
diffusers' own ``convert_ldm_bert_checkpoint``.
"""

from __future__ import annotations

import pytest
import torch

from ldm.text.ldm_bert import (
    CHECKPOINT_PREFIX,
    COMPVIS_HEADS,
    LDMBertConfig,
    build_ldm_bert,
    find_ldm_bert,
    read_ldm_bert,
)
from ldm.text.ldm_bert_handle import TOKENS_KEY, LDMBertHandle, build_ldm_bert_handle
from ldm.text.tiny_ldm_bert import TINY_LDM_BERT, tiny_ldm_bert_state_dict
from ldm.text.wordpiece import PAD_ID, SEP_ID, WordPieceTokenizer

PROMPTS = ["a photo of a cat", "", "A painting of a squirrel eating a burger, 4k, trending on artstation",
           "naïve café — 東京 " * 12]  # the last one is cut at 77


def compvis_to_diffusers(compvis: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """Unprefixed CompVis keys -> diffusers ``LDMBertModel`` keys."""
    out = {
        "model.embed_tokens.weight": compvis["token_emb.weight"],
        "model.embed_positions.weight": compvis["pos_emb.emb.weight"],
        "model.layer_norm.weight": compvis["norm.weight"],
        "model.layer_norm.bias": compvis["norm.bias"],
        "to_logits.weight": compvis["to_logits.weight"],
        "to_logits.bias": compvis["to_logits.bias"],
    }
    for i in range(depth):
        attn, ff, ours = f"attn_layers.layers.{2 * i}.", f"attn_layers.layers.{2 * i + 1}.", f"model.layers.{i}."
        for p in ("weight", "bias"):
            out[f"{ours}self_attn_layer_norm.{p}"] = compvis[f"{attn}0.{p}"]
            out[f"{ours}final_layer_norm.{p}"] = compvis[f"{ff}0.{p}"]
            out[f"{ours}self_attn.out_proj.{p}"] = compvis[f"{attn}1.to_out.{p}"]
            out[f"{ours}fc1.{p}"] = compvis[f"{ff}1.net.0.0.{p}"]
            out[f"{ours}fc2.{p}"] = compvis[f"{ff}1.net.2.{p}"]
        for name in ("q", "k", "v"):
            out[f"{ours}self_attn.{name}_proj.weight"] = compvis[f"{attn}1.to_{name}.weight"]
    return out


def diffusers_model(state: dict[str, torch.Tensor], config: LDMBertConfig):
    from diffusers.pipelines.latent_diffusion.pipeline_latent_diffusion import LDMBertConfig as HFConfig
    from diffusers.pipelines.latent_diffusion.pipeline_latent_diffusion import LDMBertModel

    hf_config = HFConfig(vocab_size=config.vocab_size, max_position_embeddings=config.positions,
                         encoder_layers=config.depth, encoder_ffn_dim=config.mlp_width,
                         encoder_attention_heads=config.heads, head_dim=config.head_dim, d_model=config.width,
                         dropout=0.0, activation_function="gelu")
    model = LDMBertModel(hf_config).eval()
    weights = {key.removeprefix(CHECKPOINT_PREFIX): tensor for key, tensor in state.items()}
    missing, unexpected = model.load_state_dict(compvis_to_diffusers(weights, config.depth), strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    return model


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer.load()


@pytest.fixture(scope="module")
def ids(tokenizer) -> torch.Tensor:
    return torch.tensor([tokenizer.encode(text) for text in PROMPTS])


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float((ours - reference).norm() / reference.norm())


@pytest.mark.parametrize("heads, head_dim", [(COMPVIS_HEADS, 8), (2, 16)])
def test_matches_diffusers(ids, heads, head_dim):
    config = LDMBertConfig(width=32, depth=2, heads=heads, head_dim=head_dim, mlp_width=128)
    state = tiny_ldm_bert_state_dict(seed=3, config=config)
    ours = build_ldm_bert(state, heads=heads)
    assert ours.config == config
    reference = diffusers_model(state, config)
    with torch.no_grad():
        expected = reference(ids)[0]
        got = ours(ids)
    assert got.shape == (len(PROMPTS), 77, 32)
    assert relative_error(got, expected) <= 1e-4


def test_stopping_early_matches_diffusers_hidden_state(ids):
    state = tiny_ldm_bert_state_dict(seed=4, config=LDMBertConfig(width=32, depth=3, head_dim=8, mlp_width=128))
    ours = build_ldm_bert(state)
    reference = diffusers_model(state, ours.config)
    with torch.no_grad():
        states = reference(ids, output_hidden_states=True).hidden_states  # before each layer, then final
        for layer, blocks in ((-2, 2), (-3, 1)):
            expected = reference.model.layer_norm(states[blocks])
            assert relative_error(ours(ids, layer=layer), expected) <= 1e-4
        assert torch.equal(ours(ids, layer=-1), ours(ids))
        assert torch.equal(ours(ids, layer=-10), ours(ids))  # beyond the depth: all blocks


def test_config_and_prefixes_from_the_weights():
    state = tiny_ldm_bert_state_dict()
    config, weights = read_ldm_bert(state)
    assert config == TINY_LDM_BERT and config.inner_width == 64 != config.width
    assert not any(key.startswith("to_logits.") for key in weights)
    assert find_ldm_bert(state) == CHECKPOINT_PREFIX
    bare = {key.removeprefix(CHECKPOINT_PREFIX): tensor for key, tensor in state.items()}
    assert find_ldm_bert(bare) == ""
    assert find_ldm_bert({"transformer." + key: tensor for key, tensor in bare.items()}) == "transformer."
    assert find_ldm_bert({"cond_stage_model.transformer.text_model.x": torch.zeros(1)}) is None
    with pytest.raises(ValueError, match="no LDM BERT"):
        read_ldm_bert({"model.diffusion_model.x": torch.zeros(1)})


def test_wrong_weights_are_named():
    state = tiny_ldm_bert_state_dict()
    del state[CHECKPOINT_PREFIX + "attn_layers.layers.1.1.net.2.bias"]
    state[CHECKPOINT_PREFIX + "attn_layers.layers.0.1.to_q.bias"] = torch.zeros(64)
    with pytest.raises(ValueError, match=r"missing \['attn_layers.layers.1.1.net.2.bias'\], "
                                         r"unexpected \['attn_layers.layers.0.1.to_q.bias'\]"):
        build_ldm_bert(state)
    with pytest.raises(ValueError, match="heads"):
        build_ldm_bert(tiny_ldm_bert_state_dict(), heads=7)


def test_dtype_and_no_random_init():
    state = tiny_ldm_bert_state_dict(seed=5)
    model = build_ldm_bert(state, dtype=torch.float16)
    assert all(t.dtype == torch.float16 for t in model.state_dict().values())
    assert torch.equal(model.norm.weight.float(), state[CHECKPOINT_PREFIX + "norm.weight"].half().float())


# --------------------------------------------------------------------------- the handle

@pytest.fixture(scope="module")
def handle() -> LDMBertHandle:
    return build_ldm_bert_handle(tiny_ldm_bert_state_dict(seed=6))


def test_handle_tokens_are_compvis_layout(handle, tokenizer):
    for text in PROMPTS:
        tokens = handle.tokenize(text)
        assert list(tokens) == [TOKENS_KEY] and len(tokens[TOKENS_KEY]) == 1
        assert [token for token, _ in tokens[TOKENS_KEY][0]] == tokenizer.encode(text)
        assert {weight for _, weight in tokens[TOKENS_KEY][0]} == {1.0}
    with_ids = handle.tokenize("a (red:1.5) cat", return_word_ids=True)[TOKENS_KEY][0]
    assert with_ids[:5] == [(101, 1.0, 0), (1037, 1.0, 1), (2417, 1.5, 2), (4937, 1.0, 3), (SEP_ID, 1.0, 0)]
    assert with_ids[5] == (PAD_ID, 1.0, 0)
    literal = handle.tokenize("a (red:1.5) cat", disable_weights=True)[TOKENS_KEY][0]
    assert [t for t, _ in literal] == tokenizer.encode("a (red:1.5) cat")


def test_handle_encodes_the_context(handle, ids):
    cond = handle.encode(PROMPTS[0])
    assert cond.shape == (1, 77, 32) and cond.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(cond[0], handle.encoder(ids[:1])[0], atol=1e-6)
    got, pooled = handle.encode_from_tokens(handle.tokenize(PROMPTS[0]), return_pooled=True)
    assert pooled is None and torch.equal(got, cond)
    as_dict = handle.encode_from_tokens(handle.tokenize(PROMPTS[0]), return_dict=True)
    assert as_dict["pooled_output"] is None and torch.equal(as_dict["cond"], cond)
    [[scheduled, extras]] = handle.encode_from_tokens_scheduled(handle.tokenize(PROMPTS[0]), {"strength": 2})
    assert torch.equal(scheduled, cond) and extras == {"pooled_output": None, "strength": 2}


def test_handle_weights_pull_towards_the_empty_prompt(handle):
    plain = handle.encode("a red cat")
    weighted = handle.encode("a (red:1.5) cat")
    empty = handle.encode("")
    # The weighted word is token 2; the other positions keep the unweighted output.
    expected = empty[:, 2] + (plain[:, 2] - empty[:, 2]) * 1.5
    assert torch.allclose(weighted[:, 2], expected, atol=1e-5)
    others = [i for i in range(77) if i != 2]
    assert torch.allclose(weighted[:, others], plain[:, others], atol=1e-5)


def test_handle_clone_layer_and_patches(handle):
    base = handle.encode("a cat")
    twin = handle.clone()
    twin.set_last_layer(-2)
    assert torch.equal(handle.encode("a cat"), base) and not torch.allclose(twin.encode("a cat"), base)
    with pytest.raises(ValueError):
        twin.set_last_layer(0)

    patched = handle.clone()
    delta = torch.full((32,), 0.5)
    added = patched.add_patches({"cond_stage_model.transformer.norm.bias": ("diff", (delta,)),
                                 "cond_stage_model.model.unknown.weight": ("diff", (delta,))})
    assert added == ["cond_stage_model.transformer.norm.bias"] and not handle.patches
    assert torch.allclose(patched.encode("a cat"), base + delta, atol=1e-6)
    assert torch.equal(handle.encode("a cat"), base)  # weights restored after the patched encode
    key_patches = patched.get_key_patches("transformer.norm.")
    assert set(key_patches) == {"transformer.norm.weight", "transformer.norm.bias"}
    assert len(key_patches["transformer.norm.bias"]) == 2
