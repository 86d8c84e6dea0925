"""The ``CLIP`` socket of the paper's non-text LDMs: each model's conditioning stage behind the
text handle's interface (``tokenize``, ``encode_from_tokens``, ``encode_from_tokens_scheduled``,
``clone``), so ``CheckpointLoaderSimple`` keeps its three outputs and the standard
text-to-image graph (CLIPTextEncode → KSampler) runs on every model.

- :class:`UnconditionalStage` (unconditional, super-resolution, inpainting models): any text
  encodes to an *empty* conditioning — a ``[1, 1, 1]`` zero placeholder the model's conditioning
  builder ignores (these UNets have no cross-attention);
- :class:`ClassStage` (class-conditional ImageNet): the ``ClassEmbedder``; the text may be a
  class index ("207") or empty for the unconditional class (cin256-v2's row 1000), and
  :meth:`ClassStage.encode_class` is what the ``ClassConditioning`` node calls;
- :class:`SemanticStage` (semantic synthesis): CompVis' ``SpatialRescaler`` (bilinear halvings,
  then a 1x1 map from the one-hot classes to the latent's channels); text encodes as for the
  unconditional stage, :meth:`SemanticStage.rescale` is what ``SemanticMapConditioning`` calls.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ldm.networks.class_embedder import ClassEmbedder
from ldm.text.clip_model import TORCH_OPERATIONS
from ldm.text.handle_base import TextHandleState

Tokens = dict[str, list[list[tuple]]]
#: Width of the placeholder an unconditional stage encodes every text to.
PLACEHOLDER_WIDTH = 1


class ConditioningStage(TextHandleState):
    """The CLIP handle's encode interface over a stage that has no pooled output: a subclass
    says how tokens become the context (:meth:`context`)."""

    def context(self, tokens: Tokens) -> torch.Tensor:
        raise NotImplementedError

    def encode_from_tokens(self, tokens: Tokens, return_pooled: bool = False, return_dict: bool = False):
        cond = self.context(tokens)
        if return_dict:
            return {"cond": cond, "pooled_output": None}
        return (cond, None) if return_pooled else cond

    def encode_from_tokens_scheduled(self, tokens: Tokens, add_dict: Mapping | None = None) -> list:
        return [[self.encode_from_tokens(tokens), {"pooled_output": None, **(add_dict or {})}]]

    def encode(self, text: str) -> torch.Tensor:
        return self.encode_from_tokens(self.tokenize(text))


class _NoTextStage(ConditioningStage):
    """A stage whose text is ignored: every prompt is the empty conditioning."""

    TOKENS_KEY = "none"

    def tokenize(self, text: str, return_word_ids: bool = False, **options) -> Tokens:
        return {self.TOKENS_KEY: [[]]}

    def context(self, tokens: Tokens) -> torch.Tensor:
        return torch.zeros(1, 1, PLACEHOLDER_WIDTH)


class UnconditionalStage(_NoTextStage):
    def __init__(self, encoders: nn.ModuleDict | None = None):
        super().__init__(encoders if encoders is not None else nn.ModuleDict())

    def clone(self) -> UnconditionalStage:
        twin = UnconditionalStage(self.encoders)
        self.copy_state_to(twin)
        return twin

    def __repr__(self) -> str:
        return "UnconditionalStage()"


class ClassStage(ConditioningStage):
    """The class embedder of an ImageNet LDM; tokens are ``{"class": [[(label, 1.0)]]}``."""

    TOKENS_KEY = "class"
    ENCODER_NAME = "class_embedder"

    def __init__(self, encoders: nn.ModuleDict):
        super().__init__(encoders)

    @property
    def embedder(self) -> ClassEmbedder:
        return self.encoders[self.ENCODER_NAME]

    @property
    def n_classes(self) -> int:
        return self.embedder.embedding.num_embeddings

    def clone(self) -> ClassStage:
        twin = ClassStage(self.encoders)
        self.copy_state_to(twin)
        return twin

    def label(self, class_index: int) -> int:
        """The embedding row of ``class_index``; -1 is the unconditional class."""
        if class_index < 0:
            unconditional = self.embedder.unconditional_class
            if unconditional is None:
                raise ValueError(f"this class-conditional model has {self.n_classes} classes and no "
                                 "unconditional class (only cin256-v2's 1001-row embedding has one)")
            return unconditional
        if class_index >= self.n_classes:
            raise ValueError(f"class {class_index} is outside this model's {self.n_classes} classes")
        return class_index

    def tokenize(self, text: str, return_word_ids: bool = False, **options) -> Tokens:
        """Empty text: the unconditional class; a number: that class index."""
        stripped = text.strip()
        if not stripped:
            return {self.TOKENS_KEY: [[(self.label(-1), 1.0)]]}
        try:
            index = int(stripped)
        except ValueError:
            raise ValueError(f"a class-conditional model takes a class index, not the text {stripped!r}; "
                             "use the ClassConditioning node") from None
        return {self.TOKENS_KEY: [[(self.label(index), 1.0)]]}

    def context(self, tokens: Tokens) -> torch.Tensor:
        label = int(tokens[self.TOKENS_KEY][0][0][0])
        weight = self.embedder.embedding.weight
        with torch.no_grad():
            return self.embedder(torch.tensor([label], device=weight.device)).float().cpu()

    def encode_class(self, class_index: int) -> list:
        """CONDITIONING ``[[context [1, 1, width], {}]]`` of a class (-1: unconditional)."""
        return self.encode_from_tokens_scheduled({self.TOKENS_KEY: [[(self.label(class_index), 1.0)]]})

    def __repr__(self) -> str:
        return f"ClassStage(classes={self.n_classes})"


class SemanticStage(_NoTextStage):
    """CompVis' ``SpatialRescaler``: ``n_stages`` bilinear halvings, then ``channel_mapper``."""

    ENCODER_NAME = "channel_mapper"

    def __init__(self, encoders: nn.ModuleDict, n_stages: int):
        super().__init__(encoders)
        self.n_stages = n_stages

    @property
    def n_classes(self) -> int:
        return self.encoders[self.ENCODER_NAME].in_channels

    def clone(self) -> SemanticStage:
        twin = SemanticStage(self.encoders, self.n_stages)
        self.copy_state_to(twin)
        return twin

    def rescale(self, one_hot: torch.Tensor) -> torch.Tensor:
        """[B, classes, H, W] one-hot maps -> the concat conditioning [B, C, H/2^n, W/2^n]."""
        mapper = self.encoders[self.ENCODER_NAME]
        x = one_hot.float().to(mapper.weight.device)
        for _ in range(self.n_stages):
            x = F.interpolate(x, scale_factor=0.5, mode="bilinear")
        with torch.no_grad():
            return mapper(x.to(mapper.weight.dtype)).float().cpu()

    def __repr__(self) -> str:
        return f"SemanticStage(classes={self.n_classes}, stages={self.n_stages})"


def build_class_stage(weight: torch.Tensor) -> ClassStage:
    """The class stage owning ``weight`` ([classes, width], ``cond_stage_model.embedding.weight``)."""
    embedder = ClassEmbedder(weight.shape[0], weight.shape[1], TORCH_OPERATIONS)
    embedder.embedding.weight = nn.Parameter(weight.detach().float(), requires_grad=False)
    return ClassStage(nn.ModuleDict({ClassStage.ENCODER_NAME: embedder}))


def build_semantic_stage(weight: torch.Tensor, downscale_ratio: int) -> SemanticStage:
    """The SpatialRescaler of ``weight`` ([out, classes, 1, 1]) for a first stage of ``downscale_ratio``
    (the published configs halve ``log2(ratio)`` times: ``n_stages: 2`` for VQ-f4)."""
    n_stages = downscale_ratio.bit_length() - 1
    if 2 ** n_stages != downscale_ratio:
        raise ValueError(f"a first-stage downscale ratio of {downscale_ratio} is not a power of two")
    out_channels, classes = weight.shape[:2]
    mapper = nn.Conv2d(classes, out_channels, 1, bias=False)
    mapper.weight = nn.Parameter(weight.detach().float(), requires_grad=False)
    return SemanticStage(nn.ModuleDict({SemanticStage.ENCODER_NAME: mapper}), n_stages)
