"""Shared fixtures of the text-side tests: our tokenizer and the transformers oracle built from
the same vocabulary file."""

from __future__ import annotations

import json

import pytest

from ldm.text.tokenizer import ClipTokenizer, build_vocab, read_merges


@pytest.fixture(scope="session")
def bpe() -> ClipTokenizer:
    return ClipTokenizer.load()


@pytest.fixture(scope="session")
def hf_tokenizer(tmp_path_factory):
    """transformers' CLIPTokenizer from vocab.json / merges.txt derived from our shipped file."""
    from transformers import CLIPTokenizer

    folder = tmp_path_factory.mktemp("clip_vocab")
    merges = read_merges()
    (folder / "vocab.json").write_text(json.dumps(build_vocab(merges)), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))


# --------------------------------------------------------------------------- transformers oracle

TINY = dict(vocab_size=49408, hidden_size=32, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=77, projection_dim=32,
            bos_token_id=49406, eos_token_id=49407, pad_token_id=1)


def make_hf_text_model(activation: str, projection: bool, seed: int):
    """A tiny transformers CLIP text model with every parameter randomised (norms included)."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(hidden_act=activation, attn_implementation="eager", **TINY)
    torch.manual_seed(seed)
    model = (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if "layer_norm" in name and name.endswith("weight"):
                tensor.copy_(1.0 + 0.2 * noise)
            else:
                tensor.copy_((0.5 if "embedding" in name else 0.2) * noise)
    return model


def hf_to_openclip_reference(hf_state: dict) -> dict:
    """HF text-model keys -> OpenCLIP keys, written independently of ldm.text.layouts."""
    import torch

    out = {
        "token_embedding.weight": hf_state["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": hf_state["text_model.embeddings.position_embedding.weight"],
        "ln_final.weight": hf_state["text_model.final_layer_norm.weight"],
        "ln_final.bias": hf_state["text_model.final_layer_norm.bias"],
        "logit_scale": torch.tensor(4.6052),
    }
    if "text_projection.weight" in hf_state:
        out["text_projection"] = hf_state["text_projection.weight"].T.clone()
    layers = {int(k.split(".")[3]) for k in hf_state if k.startswith("text_model.encoder.layers.")}
    for i in layers:
        hf = f"text_model.encoder.layers.{i}."
        oc = f"transformer.resblocks.{i}."
        for hf_norm, oc_norm in (("layer_norm1", "ln_1"), ("layer_norm2", "ln_2")):
            for p in ("weight", "bias"):
                out[f"{oc}{oc_norm}.{p}"] = hf_state[f"{hf}{hf_norm}.{p}"]
        for p in ("weight", "bias"):
            out[f"{oc}attn.in_proj_{p}"] = torch.cat(
                [hf_state[f"{hf}self_attn.{n}.{p}"] for n in ("q_proj", "k_proj", "v_proj")], dim=0)
            out[f"{oc}attn.out_proj.{p}"] = hf_state[f"{hf}self_attn.out_proj.{p}"]
            out[f"{oc}mlp.c_fc.{p}"] = hf_state[f"{hf}mlp.fc1.{p}"]
            out[f"{oc}mlp.c_proj.{p}"] = hf_state[f"{hf}mlp.fc2.{p}"]
    return out


def with_prefix(prefix: str, state: dict) -> dict:
    return {prefix + k: v for k, v in state.items()}


@pytest.fixture(scope="session")
def hf_clip_l():
    return make_hf_text_model("quick_gelu", projection=False, seed=1)


@pytest.fixture(scope="session")
def hf_clip_h():
    return make_hf_text_model("gelu", projection=True, seed=2)


@pytest.fixture(scope="session")
def hf_clip_g():
    return make_hf_text_model("gelu", projection=True, seed=3)


def checkpoint_state(model) -> dict:
    """An HF model's weights in the checkpoint layout (``text_model.…``, ``text_projection.weight``).

    transformers 5 dropped the ``text_model`` wrapper from ``CLIPTextModel`` (it renames the
    old keys when loading); SD checkpoints were written with it.
    """
    state = model.state_dict()
    return {(k if k.startswith(("text_model.", "text_projection.")) else f"text_model.{k}"): v
            for k, v in state.items()}


def text_body(model):
    """The part of an HF model that holds embeddings / encoder / final_layer_norm."""
    return getattr(model, "text_model", model)
