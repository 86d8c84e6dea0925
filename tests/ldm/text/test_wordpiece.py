"""Our BERT WordPiece tokenizer against transformers' tokenizers built from the same vocabulary file.

The oracle is transformers' ``BertTokenizer`` (in transformers 5 the Rust-backed one, the same
code as the ``BertTokenizerFast`` CompVis' ``BERTTokenizer`` called), asked the way CompVis asked
it: ``padding="max_length", truncation=True, max_length=77``. The pure-Python
``BertTokenizerLegacy`` is a second, independent oracle where the two agree.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import unicodedata

import pytest

from ldm.text.wordpiece import (
    CLS_ID,
    MASK_ID,
    MAX_LENGTH,
    PAD_ID,
    SEP_ID,
    UNK_ID,
    VOCAB_FILE,
    VOCAB_SIZE,
    WordPieceTokenizer,
    frame,
    normalize,
    pre_tokenize,
    read_vocab,
)
from tests.ldm.text.prompt_corpus import corpus

#: sha256 of the decompressed vocabulary, as recorded in ldm/text/VOCABULARY.md.
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"

PROMPTS = corpus() + [
    "a [MASK] b", "a[CLS]b[SEP]c", "[PAD] [UNK]", "[cls] [Mask] lower-case specials are text",
    "İstanbul ΣΑΣ Οδυσσεύς", "东京 北京 \U0002B820\U0002B920 ext-E", "①②③ ⅻ ½",
    "x" * 100, "x" * 101, "a " + "b" * 101 + " c", "unaffable", "naïve café",
    "a\u2028b\u2029c\x85d\x0be\x0cf\x1cg", "private\ue000use \U000F0000", "unassigned\u0378here",
    "null\x00char and \ufffd replacement", "soft\u00adhyphen zero\u200bwidth",
    "$5.00 + 3% = ^_^ ~ ` | < > @", "the " * 100,
]


@pytest.fixture(scope="module")
def ours() -> WordPieceTokenizer:
    return WordPieceTokenizer.load()


@pytest.fixture(scope="module")
def vocab_txt(tmp_path_factory):
    path = tmp_path_factory.mktemp("bert_vocab") / "vocab.txt"
    path.write_bytes(gzip.decompress(VOCAB_FILE.read_bytes()))
    return path


@pytest.fixture(scope="module")
def oracle(vocab_txt):
    from transformers import BertTokenizer

    # transformers 5 takes the file as ``vocab``; a ``vocab_file`` keyword is ignored there and
    # leaves a five-token vocabulary, hence the size check.
    tokenizer = BertTokenizer(vocab=str(vocab_txt), do_lower_case=True)
    assert len(tokenizer.get_vocab()) == VOCAB_SIZE
    return tokenizer


@pytest.fixture(scope="module")
def legacy(vocab_txt):
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    return BertTokenizerLegacy(vocab_file=str(vocab_txt), do_lower_case=True)


def compvis_ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, padding="max_length", truncation=True, max_length=MAX_LENGTH)["input_ids"]


def test_vocabulary_file_is_bert_base_uncased():
    raw = gzip.decompress(VOCAB_FILE.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == VOCAB_SHA256
    lines = raw.decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == VOCAB_SIZE
    assert lines[:3] == ["[PAD]", "[unused0]", "[unused1]"]
    assert lines[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = read_vocab()
    assert len(vocab) == VOCAB_SIZE
    assert (vocab["[PAD]"], vocab["[UNK]"], vocab["[CLS]"], vocab["[SEP]"], vocab["[MASK]"]) == \
        (PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID) == (0, 100, 101, 102, 103)


def test_corpus_is_varied(ours):
    assert len(PROMPTS) >= 200
    assert any(len(ours.tokenize(p)) > 75 for p in PROMPTS)  # truncated ones
    assert any(any(ord(c) > 0xFFFF for c in p) for p in PROMPTS)


def test_corpus_equals_transformers(ours, oracle):
    wrong = [(text, ours.encode(text), compvis_ids(oracle, text)) for text in PROMPTS
             if ours.encode(text) != compvis_ids(oracle, text)]
    assert not wrong, wrong[:3]


def test_corpus_equals_python_reference(ours, legacy):
    """Prompts where the two transformers tokenizers differ are left to the Rust oracle above:
    the Python one lower-cases with str.lower (a final capital sigma gives "ς"), drops unassigned
    code points and splits CJK Extension E from U+2B820 on."""
    def python_reference_agrees(text: str) -> bool:
        return "Σ" not in text and not any(unicodedata.category(c) == "Cn" or 0x2B820 <= ord(c) < 0x2B920
                                           for c in text)

    texts = [text for text in PROMPTS if python_reference_agrees(text)]
    wrong = [(text, ours.encode(text), compvis_ids(legacy, text)) for text in texts
             if ours.encode(text) != compvis_ids(legacy, text)]
    assert not wrong, wrong[:3]


def test_random_characters_equal_transformers(ours, oracle):
    """Random strings over many scripts, controls, private use and unassigned code points. Blocks
    are picked clear of the ~500 code points whose class changed in Unicode since the Rust
    library's tables (listed in the tokenizer's docstring)."""
    blocks = [(0x0, 0x7F), (0x80, 0x24F), (0x300, 0x36F), (0x370, 0x4FF), (0x590, 0x5FF), (0x620, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x2000, 0x2BFF), (0x3000, 0x30FF), (0x4E00, 0x4FFF),
              (0xAC00, 0xACFF), (0xE000, 0xE0FF), (0xFB00, 0xFFFF), (0x1D400, 0x1D7FF), (0x1F300, 0x1FAFF),
              (0x2B800, 0x2B9FF), (0xE0000, 0xE007F)]
    rng = random.Random(1234)
    texts = []
    for _ in range(2000):
        chars = []
        while len(chars) < rng.randint(1, 16):
            low, high = rng.choice(blocks)
            char = chr(rng.randint(low, high))
            if unicodedata.category(char) != "Cs":
                chars.append(char if rng.random() < 0.7 else char + rng.choice(" ,a"))
        texts.append("".join(chars))
    wrong = [(text, ours.tokenize(text), oracle.tokenize(text)) for text in texts
             if frame(ours.tokenize(text)) != compvis_ids(oracle, text)]
    assert not wrong, wrong[:3]


def test_layout_is_cls_ids_sep_pad(ours):
    assert ours.encode("") == [CLS_ID, SEP_ID] + [PAD_ID] * 75
    ids = ours.encode("a photo of a cat")
    assert len(ids) == MAX_LENGTH and ids[:7] == [CLS_ID, 1037, 6302, 1997, 1037, 4937, SEP_ID]
    long = ours.encode("cat " * 200)
    assert len(long) == MAX_LENGTH and long[-1] == SEP_ID and PAD_ID not in long
    assert long[1:-1] == [4937] * 75


def test_wordpiece_rules(ours):
    vocab = ours.vocab
    assert ours.tokenize("unaffable") == [vocab["una"], vocab["##ffa"], vocab["##ble"]]
    assert ours.tokenize("x" * 100) != [UNK_ID] and ours.tokenize("x" * 101) == [UNK_ID]
    assert ours.tokenize("a [MASK] b[SEP]") == [1037, MASK_ID, 1038, SEP_ID]
    assert ours.tokenize("[mask]") == [vocab["["], vocab["mask"], vocab["]"]]


def test_normalize_and_split():
    assert normalize("Crème\u00adBrûlée\tÀ\u200bLA") == "cremebrulee ala"
    assert normalize("北京") == " 北  京 "
    assert normalize("ΣΑΣ") == "σασ"
    assert pre_tokenize("don't stop—now!!") == ["don", "'", "t", "stop", "—", "now", "!", "!"]
    assert pre_tokenize("$5+3") == ["$", "5", "+", "3"]


def test_decode_round_trip(ours):
    assert ours.decode(ours.encode("An Unaffable, naïve cat!")) == "an unaffable , naive cat !"
