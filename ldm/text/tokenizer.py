"""CLIP's byte-level BPE tokenizer, from the vocabulary file shipped beside this module.

The algorithm is the one of Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision" (2021), as transformers' ``CLIPTokenizer`` runs it (that is what ComfyUI
uses, so it is the behaviour prompts are written against):

1. normalise: Unicode NFC, every whitespace run becomes one space, lowercase;
2. pre-tokenise with CLIP's pattern — the contractions ``'s 't 're 've 'm 'll 'd``, runs of
   letters, single digits, runs of anything else that is not whitespace;
3. map each piece's UTF-8 bytes to printable characters (GPT-2's byte table), mark the last
   character of the piece with ``</w>`` and merge symbol pairs by rank until none is left.

The literal strings ``<|startoftext|>`` and ``<|endoftext|>`` in the raw text are the special
tokens themselves, as in transformers (matched before normalisation, case-sensitive).

Vocabulary (49408 ids): 256 byte symbols (printable bytes first), the same 256 with ``</w>``, one id per merge of the
first 48894 merges of ``bpe_simple_vocab_16e6.txt.gz``, then BOS 49406 and EOS 49407.
"""

from __future__ import annotations

import gzip
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from re import Pattern

import regex

VOCAB_FILE = Path(__file__).with_name("bpe_simple_vocab_16e6.txt.gz")

BOS_TEXT = "<|startoftext|>"
EOS_TEXT = "<|endoftext|>"
BOS_ID = 49406
EOS_ID = 49407
VOCAB_SIZE = 49408
WORD_END = "</w>"
#: CLIP keeps the first 49152 - 256 - 2 merges of the file (the rest were never trained).
MERGE_COUNT = 49152 - 256 - 2

# The pre-tokeniser pattern of CLIP (the special tokens are split off before it runs).
_PIECE = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+""")
_WHITESPACE = regex.compile(r"\s+")
_SPECIAL = regex.compile(regex.escape(BOS_TEXT) + "|" + regex.escape(EOS_TEXT))
_SPECIAL_IDS = {BOS_TEXT: BOS_ID, EOS_TEXT: EOS_ID}


def split_special_tokens(text: str, specials: Pattern[str] | regex.Pattern, special_ids: Mapping[str, int],
                         tokenize_plain: Callable[[str], list[int]]) -> list[int]:
    """Ids of ``text`` where the special tokens ``specials`` matches are written out: each becomes
    its id from ``special_ids``, the text between them goes to ``tokenize_plain`` (CLIP and the
    paper's BERT tokenizer both read them so)."""
    ids: list[int] = []
    start = 0
    for special in specials.finditer(text):
        ids += tokenize_plain(text[start:special.start()])
        ids.append(special_ids[special.group()])
        start = special.end()
    return ids + tokenize_plain(text[start:])


def _printable_bytes() -> list[int]:
    return (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
            + list(range(ord("®"), ord("ÿ") + 1)))


def byte_symbols() -> list[str]:
    """GPT-2's table: byte value -> a printable character standing for it.

    Printable Latin-1 bytes stand for themselves; the 68 others (controls, space, soft hyphen…)
    are moved to U+0100 and up, in byte order, so no symbol is whitespace or a control.
    """
    printable = set(_printable_bytes())
    symbols = []
    shifted = 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def vocabulary_byte_order() -> list[int]:
    """The order of the 256 byte symbols in the vocabulary: printable bytes first, then the rest."""
    printable = _printable_bytes()
    return printable + [b for b in range(256) if b not in set(printable)]


def read_merges(path: Path = VOCAB_FILE) -> list[tuple[str, str]]:
    """The merges CLIP uses, in rank order (line 1 of the file is a version header)."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    return [tuple(line.split()) for line in lines[1:MERGE_COUNT + 1]]


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    """Token string -> id, in CLIP's order (see the module docstring)."""
    by_byte = byte_symbols()
    symbols = [by_byte[b] for b in vocabulary_byte_order()]
    tokens = symbols + [s + WORD_END for s in symbols] + ["".join(pair) for pair in merges]
    tokens += [BOS_TEXT, EOS_TEXT]
    return {token: index for index, token in enumerate(tokens)}


def normalize(text: str) -> str:
    """NFC, whitespace runs to one space, lowercase — transformers' CLIP normaliser.

    The lowercase is per character, as in transformers: Python's ``str.lower`` alone would turn
    a word-final capital sigma into the final form ``ς``; transformers gives ``σ``.
    """
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text))
    return text.replace("Σ", "σ").lower()


@dataclass
class ClipTokenizer:
    """Text -> CLIP token ids (no BOS/EOS added; :meth:`encode` does that)."""

    vocab: dict[str, int]
    ranks: dict[tuple[str, str], int]
    _byte_symbols: list[str] = field(default_factory=byte_symbols, repr=False)
    # Memo of BPE results per pre-token piece; prompts repeat words a lot.
    _cache: dict[str, list[int]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path = VOCAB_FILE) -> "ClipTokenizer":
        merges = read_merges(path)
        return cls(vocab=build_vocab(merges), ranks={pair: i for i, pair in enumerate(merges)})

    def __call__(self, text: str) -> list[int]:
        return self.tokenize(text)

    def tokenize(self, text: str) -> list[int]:
        return split_special_tokens(text, _SPECIAL, _SPECIAL_IDS, self._tokenize_plain)

    def encode(self, text: str) -> list[int]:
        """``[BOS] + tokenize(text) + [EOS]``."""
        return [BOS_ID] + self.tokenize(text) + [EOS_ID]

    def _tokenize_plain(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in _PIECE.findall(normalize(text)):
            cached = self._cache.get(piece)
            if cached is None:
                cached = self._bpe(piece)
                self._cache[piece] = cached
            ids += cached
        return ids

    def _bpe(self, piece: str) -> list[int]:
        """Merge the piece's byte symbols pair by pair, lowest rank first."""
        symbols = [self._byte_symbols[b] for b in piece.encode("utf-8")]
        symbols[-1] += WORD_END
        while len(symbols) > 1:
            pairs = {(a, b) for a, b in zip(symbols, symbols[1:])}
            best = min(pairs, key=lambda pair: self.ranks.get(pair, len(self.ranks)))
            if best not in self.ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(symbols):
                # Non-overlapping, left to right: "a a a" with (a, a) gives "aa a".
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return [self.vocab[s] for s in symbols]

    def decode(self, ids: list[int]) -> str:
        """Ids back to text (word ends become spaces); for logs and tests."""
        inverse = {v: k for k, v in self.vocab.items()}
        byte_of = {s: b for b, s in enumerate(self._byte_symbols)}
        text = "".join(inverse[i] for i in ids if i not in (BOS_ID, EOS_ID))
        words = text.split(WORD_END)
        return " ".join(bytes(byte_of[c] for c in w).decode("utf-8", "replace")
                        for w in words).strip()
