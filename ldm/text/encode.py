"""Weighted chunks of one encoder → conditioning tensor and pooled vector (ComfyUI's method).

All chunks are encoded as one batch. If any token has a weight other than 1, the empty prompt
(``[BOS, EOS, pad…]``) is encoded with them, and every weighted token's output ``z`` is pulled
towards or pushed away from the empty prompt's output ``e`` at the same position:
``z' = e + (z - e) * w``. Tokens of weight exactly 1 keep their output bit for bit. The chunks'
outputs are concatenated along tokens; the pooled vector is the first chunk's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ldm.text.chunks import empty_chunk
from ldm.text.clip_model import ClipTextModel
from ldm.text.tokenizer import EOS_ID


@dataclass(frozen=True)
class LayerChoice:
    layer: int | None  # None = last layer
    norm_hidden: bool
    project_pooled: bool = True


def _batch_inputs(chunks: list[list], model: ClipTextModel):
    """Ids ``[B, T]``, embedding overrides, first-EOS index ``[B]`` and weights ``[B, T]``."""
    ids, vectors, eos, weights = [], {}, [], []
    for row, chunk in enumerate(chunks):
        row_ids = []
        for position, (token, *_rest) in enumerate(chunk):
            if torch.is_tensor(token):
                vectors[(row, position)] = token
                row_ids.append(0)  # placeholder id; the vector replaces its embedding
            else:
                row_ids.append(int(token))
        ids.append(row_ids)
        eos.append(row_ids.index(EOS_ID) if EOS_ID in row_ids else len(row_ids) - 1)
        weights.append([float(pair[1]) for pair in chunk])
    device = model.token_embedding.weight.device
    return (torch.tensor(ids, device=device), vectors, torch.tensor(eos, device=device),
            torch.tensor(weights, dtype=torch.float32))


def encode_chunks(model: ClipTextModel, chunks: list[list], choice: LayerChoice,
                  pad_token: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cond [1, 77·k, D], pooled [1, P])`` in float32 on the CPU."""
    chunks = [list(chunk) for chunk in chunks]
    length = max((len(c) for c in chunks), default=77)
    weighted = any(pair[1] != 1.0 for chunk in chunks for pair in chunk)
    sections = len(chunks)
    if weighted or sections == 0:
        chunks.append([(token, 1.0) for token in empty_chunk(pad_token, length)])
    ids, vectors, eos_index, weights = _batch_inputs(chunks, model)
    with torch.no_grad():
        embeds = model.embed(ids, vectors)
        out = model(embeds, eos_index, layer=choice.layer, norm_hidden=choice.norm_hidden,
                    project_pooled=choice.project_pooled)
    hidden = out.hidden.float().cpu()
    pooled = out.pooled.float().cpu()[:1]
    if sections == 0:
        return hidden[-1:], pooled
    z = hidden[:sections]
    if weighted:
        empty = hidden[-1:]
        w = weights[:sections].unsqueeze(-1)
        z = torch.where(w != 1.0, empty + (z - empty) * w, z)
    return z.reshape(1, -1, z.shape[-1]), pooled
