"""Text-encoder outputs by (encoder, layer, LoRA patches, tokens): a re-queued prompt never re-encodes.

The key holds the encoder modules and the LoRA adapters *weakly* and compares identities, so a
model that is freed can never be confused with a new one that happens to get the same ``id``,
and the cache never keeps a model alive. Textual-inversion vectors inside the tokens are keyed by
their bytes. Bounded by entry count (least recently used out first).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

import torch


def _token_key(token: Any) -> Any:
    if torch.is_tensor(token):
        data = token.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
        return ("vector", tuple(token.shape), hashlib.sha256(data).hexdigest())
    return int(token)


def tokens_key(tokens: Mapping[str, list]) -> tuple:
    """A hashable form of a tokenize() result: per encoder, per chunk, (token, weight) pairs."""
    return tuple(
        (name, tuple(tuple((_token_key(pair[0]), float(pair[1])) for pair in chunk) for chunk in chunks))
        for name, chunks in sorted(tokens.items()))


@dataclass(frozen=True)
class _Entry:
    encoders: weakref.ref
    adapters: tuple[weakref.ref, ...]
    cond: torch.Tensor
    pooled: torch.Tensor | None

    def valid_for(self, encoders, adapters) -> bool:
        return (self.encoders() is encoders and len(adapters) == len(self.adapters)
                and all(ref() is adapter for ref, adapter in zip(self.adapters, adapters)))


class TextEncodeCache:
    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _identity(clip) -> tuple[tuple, list]:
        adapters, patch_key = [], []
        for key, patches in sorted((getattr(clip, "patches", None) or {}).items()):
            for patch in patches:
                adapters.append(patch.adapter)
                patch_key.append((key, float(patch.strength), id(patch.adapter), float(patch.strength_model)))
        return (id(clip.encoders), getattr(clip, "layer_idx", None), tuple(patch_key)), adapters

    def get(self, clip, tokens: Mapping[str, list]):
        """``(cond, pooled)`` encoded before for this encoder state and these tokens, else None."""
        identity, adapters = self._identity(clip)
        key = (identity, tokens_key(tokens))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or not entry.valid_for(clip.encoders, adapters):
                self.misses += 1
                return None, key
            self._entries.move_to_end(key)
            self.hits += 1
            return (entry.cond, entry.pooled), key

    def put(self, clip, key: tuple, cond: torch.Tensor, pooled: torch.Tensor | None) -> None:
        if self.max_entries <= 0:
            return
        _, adapters = self._identity(clip)
        entry = _Entry(weakref.ref(clip.encoders), tuple(weakref.ref(a) for a in adapters), cond, pooled)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
