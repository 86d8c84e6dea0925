"""A weighted prompt → 77-token chunks for one text encoder, the way ComfyUI lays them out.

Each chunk is ``[BOS] + up to 75 tokens + [EOS] + padding`` (77 entries), a list of
``(token, weight)`` pairs — or ``(token, weight, word_id)`` when asked. A token is a vocabulary
id, or a ``Tensor[width]`` row of a textual-inversion embedding. Layout rules (ComfyUI's):

- the prompt is cut into weighted segments (:mod:`ldm.text.prompt`), each segment is cut before
  every ``embedding:`` word, and each piece is tokenised on its own — these pieces are the
  "words" of the layout;
- a word that does not fit in the current chunk moves whole to the next chunk, unless it is 8
  tokens or longer, in which case it is split at the chunk border;
- a chunk is closed with EOS and padded with the encoder's pad token (EOS for CLIP-L, 0 for the
  OpenCLIP encoders).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterable

import torch

from ldm.text import prompt as prompt_syntax
from ldm.text.embeddings import load_embedding
from ldm.text.tokenizer import BOS_ID, EOS_ID, ClipTokenizer

log = logging.getLogger(__name__)

CHUNK_LENGTH = 77
#: Words of at least this many tokens may be split across chunks.
MAX_WORD_LENGTH = 8


@dataclass(frozen=True)
class ChunkSpec:
    """What differs between encoders when laying out tokens."""

    pad_token: int
    embedding_key: str  # "clip_l" / "clip_h" / "clip_g": which tensor of an SDXL embedding file
    width: int  # embedding vectors of another width are ignored


def empty_chunk(pad_token: int, length: int = CHUNK_LENGTH) -> list[int]:
    """The token ids of the empty prompt: ``[BOS, EOS, pad, …]``."""
    return [BOS_ID, EOS_ID] + [pad_token] * (length - 2)


class PromptChunker:
    """Prompt text → weighted 77-token chunks for one encoder."""

    def __init__(self, bpe: ClipTokenizer, spec: ChunkSpec,
                 embedding_dirs: Iterable[str | os.PathLike] = ()):
        self.bpe = bpe
        self.spec = spec
        self.embedding_dirs = tuple(embedding_dirs)

    def words(self, text: str, use_weights: bool = True) -> list[list[tuple]]:
        """The prompt as a list of words, each a list of ``(token, weight)``."""
        words: list[list[tuple]] = []
        for segment, weight in prompt_syntax.weighted_segments(text, use_weights):
            for piece in prompt_syntax.split_embedding_words(segment):
                if piece.startswith(prompt_syntax.EMBEDDING_PREFIX) and self.embedding_dirs:
                    vectors, piece = self._embedding(piece[len(prompt_syntax.EMBEDDING_PREFIX):])
                    if vectors is not None:
                        words.append([(row, weight) for row in vectors])
                    if not piece:
                        continue
                words.append([(token, weight) for token in self.bpe.tokenize(piece)])
        return words

    def _embedding(self, reference: str) -> tuple[torch.Tensor | None, str]:
        """Load the embedding a reference names; returns it and the text that follows the name."""
        name, leftover = prompt_syntax.split_embedding_reference(reference.strip("\n"))
        load = lambda n: load_embedding(n, self.embedding_dirs, self.spec.width,  # noqa: E731
                                        self.spec.embedding_key)
        vectors = load(name)
        if vectors is None:
            # "embedding:name," — the comma is prompt text, not part of the name.
            stripped = name.strip(",")
            if len(stripped) < len(name):
                vectors = load(stripped)
                leftover = f"{name[len(stripped):]} {leftover}"
        if vectors is None:
            log.warning("embedding:%s does not exist, ignoring", name)
        return vectors, leftover

    def tokenize_with_weights(self, text: str, return_word_ids: bool = False,
                              use_weights: bool = True) -> list[list[tuple]]:
        chunks = layout_chunks(self.words(text, use_weights), self.spec.pad_token)
        if return_word_ids:
            return chunks
        return [[(token, weight) for token, weight, _ in chunk] for chunk in chunks]


def layout_chunks(words: list[list[tuple]], pad_token: int,
                  length: int = CHUNK_LENGTH) -> list[list[tuple]]:
    """Pack words into chunks of ``length`` entries ``(token, weight, word_id)``.

    Word ids count words from 1; BOS, EOS and padding have word id 0.
    """
    body = length - 1  # room left before the closing EOS
    chunk = [(BOS_ID, 1.0, 0)]
    chunks = [chunk]
    for word_index, word in enumerate(words, start=1):
        splittable = len(word) >= MAX_WORD_LENGTH
        rest = list(word)
        while rest:
            if len(chunk) + len(rest) <= body:
                chunk += [(token, weight, word_index) for token, weight in rest]
                break
            room = body - len(chunk)
            if splittable:
                chunk += [(token, weight, word_index) for token, weight in rest[:room]]
                rest = rest[room:]
                chunk.append((EOS_ID, 1.0, 0))
            else:
                chunk.append((EOS_ID, 1.0, 0))
                chunk += [(pad_token, 1.0, 0)] * room
            chunk = [(BOS_ID, 1.0, 0)]
            chunks.append(chunk)
    chunk.append((EOS_ID, 1.0, 0))
    chunk += [(pad_token, 1.0, 0)] * (length - len(chunk))
    return chunks
