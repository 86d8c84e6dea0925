"""The class conditioning of the ImageNet LDMs (Rombach et al. 2022, sec. 4.3; CompVis
``ClassEmbedder``): one learned vector per class, handed to the UNet's cross-attention as a
one-token context.

Key (after ``cond_stage_model.``): ``embedding.weight`` [n_classes, width] (cin256: 1000 x 512).
cin256-v2 was trained with one extra row, class 1000, the "no class" label that classifier-free
guidance uses as its unconditional input.
"""

from __future__ import annotations

import torch
from torch import nn

from ldm.networks.ops import META, Operations

IMAGENET_CLASSES = 1000


class ClassEmbedder(nn.Module):
    def __init__(self, n_classes: int, width: int, ops: Operations = META):
        super().__init__()
        self.embedding = ops.Embedding(n_classes, width)

    @property
    def unconditional_class(self) -> int | None:
        """The label of "no class" (cin256-v2's row 1000), or None when the model has none."""
        n_classes = self.embedding.num_embeddings
        return n_classes - 1 if n_classes == IMAGENET_CLASSES + 1 else None

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """The context [B, 1, width] for class ``labels`` [B]."""
        return self.embedding(labels.long()[:, None])
