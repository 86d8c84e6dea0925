"""The text side of stage 2: a fresh CLIP-architecture encoder and captions as token ids.

Captions are tokenised by the very chunker the CLIP handle uses at inference (SD1's: BOS, up to
75 tokens, EOS, EOS padding to 77), and the encoder's output is read as SD1 reads it (last
layer, final layer norm), so what the UNet learns to attend to is what ``CLIPTextEncode`` gives
it later. A caption longer than one 77-token chunk trains on its first chunk.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ldm.text.chunks import ChunkSpec, PromptChunker
from ldm.text.clip_model import TORCH_OPERATIONS, ClipTextConfig, ClipTextModel
from ldm.text.families import SD1
from ldm.text.handle import ClipHandle
from ldm.text.tokenizer import EOS_ID, ClipTokenizer
from ldm.training.init import initialise

SLOT = SD1.slots[0]  # CLIP-L's place in an SD1 checkpoint: cond_stage_model.transformer.


def new_text_encoder(config: ClipTextConfig, seed: int, device: torch.device | str = "cpu") -> ClipTextModel:
    """Random weights: N(0, 0.02) embeddings, PyTorch's default linear init, unit norms."""
    model = ClipTextModel(config, TORCH_OPERATIONS, dtype=torch.float32, device="meta")
    model.to_empty(device=device)
    initialise(model, torch.Generator().manual_seed(seed))
    return model.train()


def chunker(tokenizer: ClipTokenizer, width: int) -> PromptChunker:
    return PromptChunker(tokenizer, ChunkSpec(SLOT.pad_token, SLOT.kind, width))


def caption_ids(captions: Sequence[str], width: int, tokenizer: ClipTokenizer | None = None) -> torch.Tensor:
    """``[N, 77]`` int64 token ids, one row per caption (its first chunk)."""
    layout = chunker(tokenizer or ClipTokenizer.load(), width)
    rows = []
    for caption in captions:
        chunk = layout.tokenize_with_weights(caption, False, False)[0]
        rows.append([int(pair[0]) for pair in chunk])
    return torch.tensor(rows, dtype=torch.int64)


def encode_ids(model: ClipTextModel, ids: torch.Tensor) -> torch.Tensor:
    """``[B, 77, width]``: the last layer after the final norm (SD1's cross-attention context)."""
    eos = (ids == EOS_ID).int().argmax(dim=1)
    return model(model.embed(ids), eos, layer=None, norm_hidden=True).hidden


def clip_handle(model: ClipTextModel, tokenizer: ClipTokenizer | None = None) -> ClipHandle:
    """A CLIP handle over ``model`` (shared, not copied), to encode prompts as the nodes do."""
    return ClipHandle(SD1, nn.ModuleDict({SLOT.kind: model}), tokenizer or ClipTokenizer.load())


def checkpoint_weights(model: ClipTextModel) -> dict[str, torch.Tensor]:
    """The encoder's weights under the keys of an SD1 single-file checkpoint."""
    prefix = SLOT.prefix + "transformer."
    return {prefix + key: value for key, value in model.state_dict().items()}
