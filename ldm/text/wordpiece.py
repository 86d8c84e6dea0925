"""BERT's uncased WordPiece tokenizer, from the bert-base-uncased vocabulary shipped beside this module.

The text encoder of the paper's text-to-image model (``txt2img-f8-large``, CompVis'
``BERTEmbedder``) reads ids made by transformers' ``BertTokenizerFast`` for ``bert-base-uncased``,
padded and truncated to 77. That tokenizer runs Hugging Face tokenizers' ``BertNormalizer`` and
``BertPreTokenizer`` (Devlin et al., "BERT", 2019, and its reference ``tokenization.py``); this is
the same algorithm:

1. the literal special tokens ``[PAD] [UNK] [CLS] [SEP] [MASK]`` in the raw text (case-sensitive,
   even inside a word) are those tokens; the text between them goes through the steps below;
2. clean: drop NUL, U+FFFD and every control, format, private-use or surrogate character
   (categories Cc, Cf, Co, Cs: the zero-width space and the soft hyphen go too; unassigned code
   points, Cn, stay) except tab, newline and carriage return; those and the characters of
   categories Zs / Zl / Zp become a space;
3. put spaces around every CJK ideograph, so each is a word of its own;
4. strip accents (NFD, then drop the non-spacing marks, category Mn), then lower-case character by
   character (so a word-final capital sigma gives ``σ``, not Python's contextual ``ς``);
5. split on spaces, and cut every punctuation character out as a word of its own (ASCII
   ``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~`` and categories P*);
6. WordPiece each word: longest vocabulary prefix first, then longest ``##``-prefixed pieces for
   the rest; a word of more than 100 characters, or one with a part no piece matches, is ``[UNK]``.

:meth:`WordPieceTokenizer.encode` lays the ids out as CompVis' ``BERTTokenizer`` does:
``[CLS] ids… [SEP] [PAD]…``, truncated to 75 ids so that the whole is 77 long.

Character classes come from Python's Unicode database; the Rust library's tables are older, so the
few hundred characters assigned since (e.g. U+2E55..U+2E5D, U+0898..U+089F) are classed as
unassigned there and may tokenize differently (503 code points, by a check of every code point
against transformers 5.24 / tokenizers 0.23; none other differed).

Vocabulary (30522 ids, one per line of ``bert_base_uncased_vocab.txt.gz``; see VOCABULARY.md):
``[PAD]`` = 0, ``[UNK]`` = 100, ``[CLS]`` = 101, ``[SEP]`` = 102, ``[MASK]`` = 103.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ldm.text.tokenizer import split_special_tokens

VOCAB_FILE = Path(__file__).with_name("bert_base_uncased_vocab.txt.gz")

VOCAB_SIZE = 30522
PAD_TEXT, UNK_TEXT, CLS_TEXT, SEP_TEXT, MASK_TEXT = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = 0, 100, 101, 102, 103
#: CompVis' ``BERTEmbedder`` reads 77 positions (``max_seq_len``).
MAX_LENGTH = 77
#: Longer words are ``[UNK]`` whole (BERT's ``max_input_chars_per_word``).
MAX_WORD_CHARS = 100
CONTINUATION = "##"

_SPECIAL_IDS = {PAD_TEXT: PAD_ID, UNK_TEXT: UNK_ID, CLS_TEXT: CLS_ID, SEP_TEXT: SEP_ID, MASK_TEXT: MASK_ID}
_SPECIAL = re.compile("|".join(re.escape(text) for text in _SPECIAL_IDS))

# The CJK Unified Ideographs blocks and their extensions and compatibility blocks, as BERT names
# them (Hiragana, Katakana and Hangul are not in it: those are words of letters). Extension E
# starts at 0x2B820, but the Rust normaliser that made the model's training ids starts its range at
# 0x2B920; we keep its range, so U+2B820..U+2B91F stay inside words as they did there.
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
_KEPT_CONTROLS = "\t\n\r"
_DROPPED_CATEGORIES = ("Cc", "Cf", "Co", "Cs")


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def is_whitespace(char: str) -> bool:
    return char in _KEPT_CONTROLS or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def is_dropped(char: str) -> bool:
    """Removed by the cleaning step: NUL, the replacement character, controls and format characters."""
    if char in _KEPT_CONTROLS:
        return False
    return char in ("\0", "\ufffd") or unicodedata.category(char) in _DROPPED_CATEGORIES


def is_punctuation(char: str) -> bool:
    # Every printable ASCII character that is not a letter or digit, so also symbols such as
    # "$", "+", "^" that are not of category P*.
    return ("!" <= char <= "~" and not char.isalnum()) or unicodedata.category(char).startswith("P")


def normalize(text: str) -> str:
    """Steps 2–4: clean, space out CJK ideographs, strip accents, lower-case."""
    out = []
    for char in text:
        if is_dropped(char):
            continue
        if is_whitespace(char):
            out.append(" ")
        elif is_cjk(char):
            out.append(f" {char} ")
        else:
            out.append(char)
    decomposed = unicodedata.normalize("NFD", "".join(out))
    stripped = "".join(char for char in decomposed if unicodedata.category(char) != "Mn")
    # Per character, as the Rust normaliser does: Python's str.lower would make a final sigma "ς".
    return stripped.replace("Σ", "σ").lower()


def pre_tokenize(text: str) -> list[str]:
    """Step 5: words split on whitespace, each punctuation character a word of its own."""
    words: list[str] = []
    for chunk in text.split():
        current = ""
        for char in chunk:
            if is_punctuation(char):
                if current:
                    words.append(current)
                words.append(char)
                current = ""
            else:
                current += char
        if current:
            words.append(current)
    return words


def read_vocab(path: Path = VOCAB_FILE) -> dict[str, int]:
    """Token -> id: the line number (from 0) of each token in the vocabulary file."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        tokens = handle.read().split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()  # the file ends with a newline
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError(f"{path}: the vocabulary repeats a token")
    wrong = {text: vocab.get(text) for text, expected in _SPECIAL_IDS.items() if vocab.get(text) != expected}
    if wrong:
        raise ValueError(f"{path}: special tokens at unexpected ids {wrong} (expected {_SPECIAL_IDS})")
    return vocab


@dataclass
class WordPieceTokenizer:
    """Text -> bert-base-uncased ids (no [CLS]/[SEP] added; :meth:`encode` does that)."""

    vocab: dict[str, int]
    # Memo of WordPiece results per word; prompts repeat words a lot.
    _cache: dict[str, list[int]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path = VOCAB_FILE) -> WordPieceTokenizer:
        return cls(vocab=read_vocab(path))

    def __call__(self, text: str) -> list[int]:
        return self.tokenize(text)

    def tokenize(self, text: str) -> list[int]:
        return split_special_tokens(text, _SPECIAL, _SPECIAL_IDS, self._tokenize_plain)

    def encode(self, text: str, max_length: int = MAX_LENGTH) -> list[int]:
        """``[CLS] ids[:max_length - 2] [SEP] [PAD]…``, ``max_length`` long (CompVis' layout)."""
        return frame(self.tokenize(text), max_length)

    def _tokenize_plain(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in pre_tokenize(normalize(text)):
            cached = self._cache.get(word)
            if cached is None:
                cached = self.wordpiece(word)
                self._cache[word] = cached
            ids += cached
        return ids

    def wordpiece(self, word: str) -> list[int]:
        """Greedy longest-match-first pieces of one word; ``[UNK]`` alone if any part has none."""
        if len(word) > MAX_WORD_CHARS:
            return [UNK_ID]
        pieces: list[int] = []
        start = 0
        while start < len(word):
            prefix = CONTINUATION if start > 0 else ""
            for end in range(len(word), start, -1):
                found = self.vocab.get(prefix + word[start:end])
                if found is not None:
                    pieces.append(found)
                    start = end
                    break
            else:
                return [UNK_ID]
        return pieces

    def decode(self, ids: list[int]) -> str:
        """Ids back to lower-cased text (pieces joined, special tokens dropped); for logs and tests."""
        inverse = {index: token for token, index in self.vocab.items()}
        text = " ".join(inverse[i] for i in ids if i not in _SPECIAL_IDS.values() or i == UNK_ID)
        return text.replace(" " + CONTINUATION, "")


def frame(ids: list[int], max_length: int = MAX_LENGTH) -> list[int]:
    """Content ids -> ``[CLS] ids… [SEP]`` padded with ``[PAD]`` to ``max_length`` (truncated first)."""
    body = ids[:max_length - 2]
    return [CLS_ID] + body + [SEP_ID] + [PAD_ID] * (max_length - 2 - len(body))
