"""Textual-inversion embeddings (``embedding:name`` in a prompt), found in the embeddings folders.

File formats (facts from the tools that write them):
- A1111 ``.pt``: ``{"string_to_param": {"*": Tensor[n, dim]}, "name": …, "step": …}``;
- A1111 / kohya ``.safetensors``: ``{"emb_params": Tensor[n, dim]}``;
- SDXL ``.safetensors``: ``{"clip_l": Tensor[n, 768], "clip_g": Tensor[n, 1280]}`` — the key is
  the encoder's name;
- embeddings bundled in a LoRA file: ``bundle_emb.<name>.string_to_param.*`` or
  ``bundle_emb.<name>.<encoder>``;
- anything else: the first tensor in the file.
Pickles are only read through ``torch.load(weights_only=True)``.

A name resolves like ComfyUI: the folders and all their subfolders are searched, the name may
omit the extension (``.safetensors``, ``.pt``, ``.bin`` tried in that order), and a name that
would lead outside its folder is ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

import torch

from ldm.loading.checkpoint import load_object

log = logging.getLogger(__name__)

EXTENSIONS = (".safetensors", ".pt", ".bin")


def _search_folders(roots: Iterable[str | os.PathLike]) -> list[Path]:
    folders: list[Path] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        folders.append(root)
        for dirpath, dirnames, _ in os.walk(root, followlinks=True):
            dirnames.sort()
            folders += [Path(dirpath) / d for d in dirnames]
    return folders


def find_embedding(name: str, roots: Iterable[str | os.PathLike]) -> Path | None:
    """The file an ``embedding:name`` reference points to, or None."""
    if not name or "\0" in name:
        return None
    for folder in _search_folders(roots):
        base = os.path.abspath(folder)
        candidate = os.path.abspath(os.path.join(base, name))
        if os.path.commonpath((base, candidate)) != base:
            continue
        if os.path.isfile(candidate):
            return Path(candidate)
        for extension in EXTENSIONS:
            if os.path.isfile(candidate + extension):
                return Path(candidate + extension)
    return None


def _read(path: Path):
    return load_object(path)  # by content; pickles only through weights_only


def _bundled(data: dict, suffix_match) -> torch.Tensor | None:
    found = [v for k, v in data.items() if k.startswith("bundle_emb.") and suffix_match(k)]
    return torch.cat([t.reshape(-1, t.shape[-1]) for t in found]) if found else None


def pick_vectors(data, encoder_key: str) -> torch.Tensor | None:
    """The embedding rows for one encoder (``clip_l`` / ``clip_h`` / ``clip_g``) from a loaded file."""
    if isinstance(data, dict):
        if isinstance(data.get("string_to_param"), dict):
            return next(iter(data["string_to_param"].values()), None)
        for key in (encoder_key, "emb_params"):
            if torch.is_tensor(data.get(key)):
                return data[key]
        bundled = _bundled(data, lambda k: ".string_to_param." in k)
        if bundled is None:
            bundled = _bundled(data, lambda k: k.endswith("." + encoder_key))
        if bundled is not None:
            return bundled
        return next((v for v in data.values() if torch.is_tensor(v)), None)
    if torch.is_tensor(data):
        return data
    return None


def load_embedding(name: str, roots: Iterable[str | os.PathLike], width: int,
                   encoder_key: str) -> torch.Tensor | None:
    """``Tensor[n, width]`` (float32) for ``embedding:name``, or None when missing or unusable."""
    path = find_embedding(name, roots)
    if path is None:
        return None
    try:
        vectors = pick_vectors(_read(path), encoder_key)
    except Exception as error:  # a corrupt or foreign file must not fail the whole prompt
        log.warning("could not read embedding %s: %s", path, error)
        return None
    if vectors is None:
        log.warning("embedding %s holds no tensor", path)
        return None
    vectors = vectors.detach().reshape(-1, vectors.shape[-1]).float()
    if vectors.shape[-1] != width:
        log.warning("embedding %s has width %d, the %s encoder needs %d; ignored",
                    path.name, vectors.shape[-1], encoder_key, width)
        return None
    return vectors
