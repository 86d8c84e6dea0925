"""The layout encoder of the paper's layout-to-image model: labelled boxes -> the UNet's
cross-attention context.

CompVis' ``layout2img-openimages256`` config builds the same ``BERTEmbedder`` as the text model
(x-transformers ``TransformerWrapper`` around ``Encoder``), only with ``use_tokenizer: false`` — it
is fed the token ids of :mod:`ldm.text.layout_tokens` directly — and other sizes: ``vocab_size``
8192, ``max_seq_len`` 92, ``n_embed`` 512 (the UNet's ``context_dim``), ``n_layer`` 16. Its
weights sit under ``cond_stage_model.transformer.`` like the text model's, so
:func:`ldm.text.ldm_bert.build_ldm_bert` reads them unchanged; the vocabulary and the sequence
length come from the weights' shapes (``token_emb`` [8192, 512], ``pos_emb.emb`` [92, 512]).

What the weights do not say is how the builder numbered classes and which flags it encoded: the
handle takes a :class:`~ldm.text.layout_tokens.LayoutSpec` for those, OpenImages' by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ldm.text.layout_tokens import FULL_IMAGE, OPENIMAGES_LAYOUT, BoxLike, LayoutSpec, Rect, layout_tokens
from ldm.text.ldm_bert import CHECKPOINT_PREFIX, COMPVIS_HEADS, LDMBertConfig, LDMBertEncoder, build_ldm_bert
from ldm.text.tiny_ldm_bert import tiny_ldm_bert_state_dict

#: A random tiny layout encoder: the tiny text encoder's sizes with the layout model's vocabulary
#: and 92 positions.
TINY_LAYOUT_BERT = LDMBertConfig(width=32, depth=2, heads=COMPVIS_HEADS, head_dim=8, mlp_width=128,
                                 vocab_size=OPENIMAGES_LAYOUT.vocab_size, positions=OPENIMAGES_LAYOUT.seq_len)


class LayoutHandle:
    """Encodes layouts with one layout encoder, following one :class:`LayoutSpec`."""

    def __init__(self, encoder: LDMBertEncoder, spec: LayoutSpec):
        config = encoder.config
        if (spec.vocab_size, spec.seq_len) != (config.vocab_size, config.positions):
            raise ValueError(f"layout spec of {spec.vocab_size} ids × {spec.seq_len} tokens does not fit an "
                             f"encoder of {config.vocab_size} ids × {config.positions} positions")
        self.encoder = encoder
        self.spec = spec

    def tokens(self, boxes: Sequence[BoxLike], crop: Rect = FULL_IMAGE) -> list[int]:
        return layout_tokens(boxes, self.spec, crop)

    def encode_tokens(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """Token rows ``[B][seq_len]`` -> the context ``[B, seq_len, width]``, float32 on the CPU."""
        ids = torch.tensor([list(row) for row in rows], dtype=torch.long, device=self.encoder.token_emb.weight.device)
        if ids.ndim != 2 or ids.shape[1] != self.spec.seq_len:
            raise ValueError(f"expected rows of {self.spec.seq_len} tokens, got shape {tuple(ids.shape)}")
        with torch.no_grad():
            return self.encoder(ids).float().cpu()

    def encode_layouts(self, layouts: Sequence[Sequence[BoxLike]], crop: Rect = FULL_IMAGE) -> torch.Tensor:
        """One context row per layout: ``[len(layouts), seq_len, width]``."""
        return self.encode_tokens([self.tokens(boxes, crop) for boxes in layouts])

    def encode_layout(self, boxes: Sequence[BoxLike], crop: Rect = FULL_IMAGE) -> torch.Tensor:
        """The cross-attention context of one layout, ``[1, seq_len, width]`` (``[1, 92, 512]`` for
        the released model)."""
        return self.encode_layouts([boxes], crop)

    def __repr__(self) -> str:
        config = self.encoder.config
        return (f"LayoutHandle(width={config.width}, depth={config.depth}, vocab={config.vocab_size}, "
                f"max_objects={self.spec.max_objects}, classes={self.spec.num_classes})")


def build_layout_handle(state_dict: Mapping[str, torch.Tensor], prefix: str | None = None, *,
                        num_classes: int = OPENIMAGES_LAYOUT.num_classes,
                        use_group_flag: bool = OPENIMAGES_LAYOUT.use_group_flag,
                        use_additional_flags: bool = OPENIMAGES_LAYOUT.use_additional_flags,
                        dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> LayoutHandle:
    """The handle of the layout encoder in ``state_dict`` (a whole CompVis checkpoint or the
    encoder alone; ``prefix`` found if None). The vocabulary and the number of objects come from
    the weights; the class numbering and flags from the arguments (OpenImages' by default)."""
    encoder = build_ldm_bert(state_dict, prefix, dtype=dtype, device=device)
    spec = LayoutSpec.for_encoder(encoder.config.vocab_size, encoder.config.positions, num_classes,
                                  use_group_flag=use_group_flag, use_additional_flags=use_additional_flags)
    return LayoutHandle(encoder, spec)


def tiny_layout_bert_state_dict(seed: int = 0, prefix: str = CHECKPOINT_PREFIX) -> dict[str, torch.Tensor]:
    """Random layout-encoder weights in the CompVis checkpoint layout (``to_logits`` included)."""
    return tiny_ldm_bert_state_dict(seed, prefix, TINY_LAYOUT_BERT)
