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
