"""Our CLIP BPE tokenizer against transformers' CLIPTokenizer built from the same vocabulary."""

from __future__ import annotations

import random
import unicodedata

import pytest

from ldm.text.tokenizer import BOS_ID, EOS_ID, VOCAB_SIZE, build_vocab, read_merges
from tests.ldm.text.prompt_corpus import corpus

PROMPTS = corpus()


def test_corpus_is_large_and_varied():
    assert len(PROMPTS) >= 200
    assert any(len(p) > 1000 for p in PROMPTS)
    assert any(any(ord(c) > 0xFFFF for c in p) for p in PROMPTS)  # astral plane (emoji)


def test_vocabulary_layout():
    vocab = build_vocab(read_merges())
    assert len(vocab) == VOCAB_SIZE
    assert vocab["<|startoftext|>"] == BOS_ID == 49406
    assert vocab["<|endoftext|>"] == EOS_ID == 49407
    assert vocab["!"] == 0 and vocab["!</w>"] == 256


@pytest.mark.parametrize("index", range(len(PROMPTS)))
def test_ids_equal_transformers(bpe, hf_tokenizer, index):
    text = PROMPTS[index]
    assert bpe.encode(text) == hf_tokenizer(text)["input_ids"], repr(text)


def test_random_assigned_characters_equal_transformers(bpe, hf_tokenizer):
    """Random strings over many scripts; only code points assigned in Python's Unicode database
    (unassigned ones may be classified differently by the two regex engines' tables)."""
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x4FF), (0x590, 0x6FF), (0x900, 0x97F),
              (0xE00, 0xE7F), (0x2000, 0x2BFF), (0x3000, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xACFF),
              (0xFB00, 0xFFEF), (0x1D400, 0x1D7FF), (0x1F300, 0x1FAFF), (0x300, 0x36F)]
    rng = random.Random(1234)
    for _ in range(2000):
        chars = []
        while len(chars) < rng.randint(1, 16):
            low, high = rng.choice(blocks)
            char = chr(rng.randint(low, high))
            if unicodedata.category(char) not in ("Cn", "Cs", "Co"):
                chars.append(char)
        text = "".join(chars)
        assert bpe.encode(text) == hf_tokenizer(text)["input_ids"], repr(text)


def test_known_ids(bpe):
    # Ids of the public CLIP vocabulary: "a photo of a cat".
    assert bpe.tokenize("a photo of a cat") == [320, 1125, 539, 320, 2368]


def test_decode_round_trip(bpe):
    assert bpe.decode(bpe.encode("A Photo, of 2 cats!")) == "a photo , of 2 cats !"
