"""Laying weighted prompts out in 77-token chunks, and textual-inversion embeddings."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch

from ldm.text.chunks import ChunkSpec, PromptChunker, layout_chunks
from ldm.text.tokenizer import BOS_ID, EOS_ID

L_SPEC = ChunkSpec(pad_token=EOS_ID, embedding_key="clip_l", width=32)
G_SPEC = ChunkSpec(pad_token=0, embedding_key="clip_g", width=32)


def ids(chunk):
    return [token for token, *_ in chunk]


def test_short_prompt_is_one_padded_chunk(bpe):
    body = bpe.tokenize("a photo of a cat")
    for spec in (L_SPEC, G_SPEC):
        [chunk] = PromptChunker(bpe, spec).tokenize_with_weights("a photo of a cat")
        assert len(chunk) == 77
        assert ids(chunk) == [BOS_ID] + body + [EOS_ID] + [spec.pad_token] * (77 - len(body) - 2)
        assert all(weight == 1.0 for _, weight in chunk)


def test_empty_prompt(bpe):
    [chunk] = PromptChunker(bpe, G_SPEC).tokenize_with_weights("")
    assert ids(chunk) == [BOS_ID, EOS_ID] + [0] * 75


def test_weights_follow_tokens(bpe):
    [chunk] = PromptChunker(bpe, L_SPEC).tokenize_with_weights("(red cat:1.5) dog")
    red_cat, dog = bpe.tokenize("red cat"), bpe.tokenize(" dog")
    assert chunk[1:1 + len(red_cat)] == [(t, 1.5) for t in red_cat]
    assert chunk[1 + len(red_cat):1 + len(red_cat) + len(dog)] == [(t, 1.0) for t in dog]


def test_75_tokens_fit_76_do_not(bpe):
    chunker = PromptChunker(bpe, L_SPEC)
    assert len(bpe.tokenize("a " * 75)) == 75
    [chunk] = chunker.tokenize_with_weights("a " * 75)
    assert ids(chunk) == [BOS_ID] + [320] * 75 + [EOS_ID]
    first, second = chunker.tokenize_with_weights("a " * 76)
    assert ids(first) == [BOS_ID] + [320] * 75 + [EOS_ID]
    assert ids(second)[:3] == [BOS_ID, 320, EOS_ID]


def test_long_word_is_split_short_word_moves_whole():
    # word ids 1 (70 tokens), 2 (6 tokens: does not fit, moves), 3 (10 tokens)
    words = [[(1, 1.0)] * 70, [(2, 1.0)] * 6, [(3, 1.0)] * 10]
    first, second = layout_chunks(words, pad_token=0)
    assert [t for t, *_ in first] == [BOS_ID] + [1] * 70 + [EOS_ID] + [0] * 5
    assert [t for t, *_ in second] == [BOS_ID] + [2] * 6 + [3] * 10 + [EOS_ID] + [0] * 59
    # a word of 8+ tokens is cut at the border instead
    words = [[(1, 1.0)] * 70, [(2, 1.0)] * 8]
    first, second = layout_chunks(words, pad_token=0)
    assert [t for t, *_ in first] == [BOS_ID] + [1] * 70 + [2] * 5 + [EOS_ID]
    assert [t for t, *_ in second][:5] == [BOS_ID, 2, 2, 2, EOS_ID]


def test_word_ids(bpe):
    [chunk] = PromptChunker(bpe, L_SPEC).tokenize_with_weights("(a:2) b", return_word_ids=True)
    assert [w for *_, w in chunk[:4]] == [0, 1, 2, 0]


def test_very_long_prompt_makes_many_full_chunks(bpe):
    chunks = PromptChunker(bpe, L_SPEC).tokenize_with_weights("word, " * 200)
    assert len(chunks) == 6 and all(len(c) == 77 for c in chunks)
    assert all(ids(c)[0] == BOS_ID and EOS_ID in ids(c) for c in chunks)


@pytest.fixture
def embedding_dir(tmp_path):
    torch.manual_seed(0)
    vectors = {
        "plain": torch.randn(2, 32),
        "a1111": torch.randn(3, 32),
        "sdxl_l": torch.randn(1, 32),
        "sdxl_g": torch.randn(4, 32),
        "deep": torch.randn(1, 32),
        "wide": torch.randn(1, 48),
    }
    safetensors.torch.save_file({"emb_params": vectors["plain"]}, tmp_path / "plain.safetensors")
    torch.save({"string_to_param": {"*": vectors["a1111"]}, "name": "a1111", "step": 100},
               tmp_path / "a1111.pt")
    safetensors.torch.save_file({"clip_l": vectors["sdxl_l"], "clip_g": vectors["sdxl_g"]},
                                tmp_path / "xl.safetensors")
    (tmp_path / "sub").mkdir()
    safetensors.torch.save_file({"emb_params": vectors["deep"]}, tmp_path / "sub" / "deep.safetensors")
    safetensors.torch.save_file({"emb_params": vectors["wide"]}, tmp_path / "wide.safetensors")
    (tmp_path.parent / "outside.safetensors").write_bytes(
        (tmp_path / "plain.safetensors").read_bytes())
    return tmp_path, vectors


def vectors_in(chunk):
    return [token for token, _ in chunk if torch.is_tensor(token)]


def test_embeddings_are_inserted(bpe, embedding_dir):
    folder, vectors = embedding_dir
    chunker = PromptChunker(bpe, L_SPEC, [folder])
    [chunk] = chunker.tokenize_with_weights("a embedding:plain b (embedding:a1111:1.2) embedding:deep")
    found = vectors_in(chunk)
    expected = list(vectors["plain"]) + list(vectors["a1111"]) + list(vectors["deep"])
    assert len(found) == len(expected) and all(torch.equal(f, e) for f, e in zip(found, expected))
    weights = [w for t, w in chunk if torch.is_tensor(t)]
    assert weights == [1.0, 1.0] + [1.2] * 3 + [1.0]
    # the text around the embeddings is still there, in order
    assert ids(chunk)[1] == bpe.tokenize("a")[0]


def test_sdxl_embedding_file_gives_each_encoder_its_tensor(bpe, embedding_dir):
    folder, vectors = embedding_dir
    [l_chunk] = PromptChunker(bpe, L_SPEC, [folder]).tokenize_with_weights("embedding:xl")
    [g_chunk] = PromptChunker(bpe, G_SPEC, [folder]).tokenize_with_weights("embedding:xl")
    assert torch.equal(torch.stack(vectors_in(l_chunk)), vectors["sdxl_l"])
    assert torch.equal(torch.stack(vectors_in(g_chunk)), vectors["sdxl_g"])


def test_missing_wrong_width_and_escaping_embeddings_are_ignored(bpe, embedding_dir):
    folder, _ = embedding_dir
    chunker = PromptChunker(bpe, L_SPEC, [folder])
    for prompt in ("embedding:nothing here", "embedding:wide here", "embedding:../outside here"):
        [chunk] = chunker.tokenize_with_weights(prompt)
        assert vectors_in(chunk) == []
        assert ids(chunk)[:3] == [BOS_ID] + bpe.tokenize("here") + [EOS_ID]


def test_trailing_comma_is_text(bpe, embedding_dir):
    folder, vectors = embedding_dir
    [chunk] = PromptChunker(bpe, L_SPEC, [folder]).tokenize_with_weights("embedding:plain, cat")
    assert len(vectors_in(chunk)) == 2
    assert ids(chunk)[3:5] == bpe.tokenize(", cat")


def test_without_embedding_folders_the_reference_is_text(bpe):
    [chunk] = PromptChunker(bpe, L_SPEC).tokenize_with_weights("embedding:plain")
    assert ids(chunk)[1:-1][:len(bpe.tokenize("embedding:plain"))] == bpe.tokenize("embedding:plain")
