"""Which LDM BERT a CompVis checkpoint's ``cond_stage_model.transformer`` is: the text encoder of
``txt2img-f8-large`` or the layout encoder of ``layout2img-openimages256``.

Both are the same x-transformers ``BERTEmbedder`` with the same key names; only their sizes differ.
The text model embeds bert-base-uncased WordPiece ids (``token_emb`` [30522, w], ``pos_emb``
[77, w]); the layout model embeds the layout builder's ids (taming's ``no_tokens``: [8192, w],
``pos_emb`` [92, w] = 30 objects × 3 tokens + 2 crop tokens). So the vocabulary decides: an encoder
whose vocabulary is not WordPiece's cannot read text, and is taken for a layout encoder (building its
handle then checks that its positions are 3 tokens per object plus the crop's 2).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ldm.text.ldm_bert import CHECKPOINT_PREFIX, find_ldm_bert
from ldm.text.wordpiece import VOCAB_SIZE

_TOKEN_EMB = CHECKPOINT_PREFIX + "token_emb.weight"


def layout_encoder_width(state_dict: Mapping[str, torch.Tensor]) -> int | None:
    """The context width of the checkpoint's layout encoder, or None when its conditioning stage
    is not one (no LDM BERT under ``cond_stage_model.transformer.``, or the text model's)."""
    if find_ldm_bert(state_dict) != CHECKPOINT_PREFIX:
        return None
    vocab_size, width = state_dict[_TOKEN_EMB].shape
    return None if vocab_size == VOCAB_SIZE else int(width)
