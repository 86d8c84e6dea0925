"""The CLIP handle (the ``CLIP`` socket type): tokenizer + text encoders of one model family.

A handle is cheap to :meth:`~ClipHandle.clone`: clones share the encoder modules and the
tokenizer, and copy the layer choice and the LoRA patch lists, so ``CLIPSetLastLayer`` and
``LoraLoader`` never change the handle they received. Patches (``handle.patches``, keyed by
``handle.encoders.state_dict()`` names such as ``clip_l.text_model.encoder.layers.0.mlp.fc1.weight``)
are applied to the shared weights only for the duration of an encode call.
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping

import torch
from torch import nn

from ldm.lora import patches as lora
from ldm.sampling.weight_hooks import encode_passes
from ldm.text.chunks import ChunkSpec, PromptChunker
from ldm.text.clip_model import TORCH_OPERATIONS, build_text_model
from ldm.text.encode import LayerChoice, encode_chunks
from ldm.text.families import SD1, SD2, SDXL, SDXL_REFINER, TextFamily, text_family
from ldm.text.handle_base import TextHandleState
from ldm.text.layouts import HF, KIND_OF_WIDTH, EncoderWeights, TextLayoutError, find_encoder, read_encoder
from ldm.text.tokenizer import ClipTokenizer

Tokens = dict[str, list[list[tuple]]]


#: ComfyUI keeps each text tower under ``<kind>.transformer.`` (its ``CLIPTextModel`` wrapper).
COMFY_TOWER = "transformer."


def comfy_clip_key(key: str) -> str:
    """``clip_l.text_model.…`` -> ComfyUI's ``clip_l.transformer.text_model.…``."""
    kind, _, rest = key.partition(".")
    return f"{kind}.{COMFY_TOWER}{rest}"


def weft_clip_key(key: str) -> str:
    """ComfyUI's ``clip_l.transformer.text_model.…`` -> ``clip_l.text_model.…`` (own keys unchanged)."""
    kind, _, rest = key.partition(".")
    return f"{kind}.{rest.removeprefix(COMFY_TOWER)}"


class ClipHandle(TextHandleState):
    def __init__(self, family: TextFamily, encoders: nn.ModuleDict, tokenizer: ClipTokenizer,
                 embedding_dirs: Iterable[str | os.PathLike] = ()):
        super().__init__(encoders)  # kind ("clip_l" / "clip_h" / "clip_g") -> ClipTextModel
        self.family = family
        self.tokenizer = tokenizer
        self.embedding_dirs = tuple(embedding_dirs)

    def clone(self) -> "ClipHandle":
        twin = ClipHandle(self.family, self.encoders, self.tokenizer, self.embedding_dirs)
        self.copy_state_to(twin)
        return twin

    # Patch keys: ComfyUI's ``clip_l.transformer.text_model.…`` or this handle's ``clip_l.text_model.…``.
    own_key = staticmethod(weft_clip_key)
    comfy_key = staticmethod(comfy_clip_key)

    def _chunker(self, slot) -> PromptChunker:
        width = self.encoders[slot.kind].config.width
        return PromptChunker(self.tokenizer, ChunkSpec(slot.pad_token, slot.kind, width),
                             self.embedding_dirs)

    def tokenize(self, text: str, return_word_ids: bool = False, **options) -> Tokens:
        """``{"l": chunks, …}`` — per encoder, 77-token chunks of ``(token, weight)``."""
        use_weights = not options.get("disable_weights", False)
        return {slot.name: self._chunker(slot).tokenize_with_weights(text, return_word_ids, use_weights)
                for slot in self.family.slots}

    def _choice(self, slot) -> LayerChoice:
        layer = slot.layer if self.layer_idx is None else self.layer_idx
        return LayerChoice(layer=layer, norm_hidden=slot.norm_hidden)

    def encode_from_tokens(self, tokens: Tokens, return_pooled: bool = False,
                           return_dict: bool = False):
        """``cond [1, 77·k, D]``; or ``(cond, pooled)``; or ``{"cond", "pooled_output"}``."""
        outputs = {}
        with lora.patched(self.encoders, self.patches):
            for slot in self.family.slots:
                chunks = [[pair[:2] for pair in chunk] for chunk in tokens[slot.name]]
                outputs[slot.name] = encode_chunks(self.encoders[slot.kind], chunks,
                                                   self._choice(slot), slot.pad_token)
        # SDXL: the encoders' outputs side by side on channels, cut to the shorter one.
        length = min(cond.shape[1] for cond, _ in outputs.values())
        cond = torch.cat([outputs[s.name][0][:, :length] for s in self.family.slots], dim=-1)
        pooled = outputs[self.family.pooled_from][1]
        if return_dict:
            return {"cond": cond, "pooled_output": pooled}
        return (cond, pooled) if return_pooled else cond

    def encode_from_tokens_scheduled(self, tokens: Tokens, add_dict: Mapping | None = None) -> list:
        """A CONDITIONING list ``[[cond, {"pooled_output": …, **add_dict}]]``; with weight hooks,
        one entry per encode they ask for (see ``weight_hooks.encode_passes``)."""
        out = []
        for clip, extras in encode_passes(self, add_dict):
            cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
            out.append([cond, {"pooled_output": pooled, **extras}])
        return out

    def encode(self, text: str) -> torch.Tensor:
        return self.encode_from_tokens(self.tokenize(text))

    def __repr__(self) -> str:
        return f"ClipHandle({self.family.name}, encoders={list(self.encoders.keys())})"


def _build(family: TextFamily, found: Mapping[str, EncoderWeights], embedding_dirs,
           dtype, operations) -> ClipHandle:
    encoders = nn.ModuleDict({
        kind: build_text_model(weights.config, weights.weights, operations, dtype=dtype)
        for kind, weights in found.items()})
    return ClipHandle(family, encoders, ClipTokenizer.load(), embedding_dirs)


def build_clip(state_dict: Mapping[str, torch.Tensor], family: str,
               embedding_dirs: Iterable[str | os.PathLike] = (), *,
               dtype: torch.dtype = torch.float32, operations=TORCH_OPERATIONS) -> ClipHandle:
    """The CLIP handle of a single-file checkpoint of ``family`` (``"sd1"``, ``"sdxl"`` …).

    ``state_dict`` is the whole checkpoint (``cond_stage_model.…`` / ``conditioner.embedders.N.…``)
    or, for single-encoder families, a standalone text-encoder file.
    """
    text = text_family(family)
    found: dict[str, EncoderWeights] = {}
    for slot in text.slots:
        if find_encoder(state_dict, slot.prefix) is not None:
            found[slot.kind] = read_encoder(state_dict, slot.prefix, slot.kind)
        elif len(text.slots) == 1:
            found[slot.kind] = read_encoder(state_dict, standalone_prefix(state_dict), slot.kind)
        else:
            raise TextLayoutError(f"no {slot.kind} text encoder under {slot.prefix!r}")
    return _build(text, found, embedding_dirs, dtype, operations)


#: Prefixes a standalone text-encoder file may carry (plain, extracted from a checkpoint,
#: or saved by ComfyUI's CLIPSave).
STANDALONE_PREFIXES = ("", "cond_stage_model.", "conditioner.embedders.0.", "conditioner.embedders.1.",
                       "text_encoders.clip_l.", "text_encoders.clip_h.", "text_encoders.clip_g.",
                       "clip_l.", "clip_h.", "clip_g.")


def standalone_prefix(state_dict: Mapping[str, torch.Tensor]) -> str:
    for prefix in STANDALONE_PREFIXES:
        if find_encoder(state_dict, prefix) is not None:
            return prefix
    raise TextLayoutError("the file holds no CLIP text encoder")


def detect_text_encoder(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """``"clip_l"`` / ``"clip_h"`` / ``"clip_g"`` from the width of a standalone file, or None
    (no encoder, or a non-standard width such as a tiny test model)."""
    try:
        prefix = standalone_prefix(state_dict)
    except TextLayoutError:
        return None
    weights = read_encoder(state_dict, prefix, kind="clip_l")  # kind only sets the activation
    return KIND_OF_WIDTH.get(weights.config.width)


#: Loader ``type`` -> what a set of standalone encoders becomes.
CLIP_TYPES_SINGLE = {"stable_diffusion"}
CLIP_TYPES_DUAL = {"sdxl"}


def guess_kinds(state_dicts: list[Mapping[str, torch.Tensor]], clip_type: str) -> list[str]:
    """Which encoder each standalone file holds: by width (768 / 1024 / 1280), else — for
    non-standard widths such as tiny test models — by layout and the loader type: an HF-layout
    file is CLIP-L, an OpenCLIP one is OpenCLIP-H (``stable_diffusion``) or bigG (``sdxl``); two
    files of one layout are taken as CLIP-L then bigG."""
    kinds = [detect_text_encoder(sd) for sd in state_dicts]
    if None not in kinds:
        return kinds
    layouts = [find_encoder(sd, standalone_prefix(sd))[0] for sd in state_dicts]
    if clip_type in CLIP_TYPES_DUAL and len(state_dicts) == 2:
        if kinds.count(None) == 1:
            known = next(k for k in kinds if k is not None)
            other = "clip_g" if known == "clip_l" else "clip_l"
            return [k or other for k in kinds]
        if layouts[0] == layouts[1]:
            return ["clip_l", "clip_g"]
        return ["clip_l" if layout == HF else "clip_g" for layout in layouts]
    return [k or ("clip_l" if layout == HF else "clip_h") for k, layout in zip(kinds, layouts)]


def build_clip_from_files(state_dicts: list[Mapping[str, torch.Tensor]], clip_type: str,
                          embedding_dirs: Iterable[str | os.PathLike] = (), *,
                          kinds: list[str] | None = None, dtype: torch.dtype = torch.float32,
                          operations=TORCH_OPERATIONS) -> ClipHandle:
    """A CLIP handle from standalone text-encoder files (``CLIPLoader`` / ``DualCLIPLoader``).

    ``stable_diffusion`` + one file: CLIP-L → SD1, OpenCLIP-H → SD2, bigG → SDXL refiner.
    ``sdxl`` + two files: a CLIP-L and a bigG in either order. ``kinds`` overrides
    :func:`guess_kinds`.
    """
    kinds = kinds or guess_kinds(state_dicts, clip_type)
    found = {kind: read_encoder(sd, standalone_prefix(sd), kind) for sd, kind in zip(state_dicts, kinds)}
    if len(found) != len(state_dicts):
        raise ValueError(f"two files hold the same text encoder: {kinds}")
    if clip_type in CLIP_TYPES_SINGLE and len(found) == 1:
        family = {"clip_l": SD1, "clip_h": SD2, "clip_g": SDXL_REFINER}[kinds[0]]
    elif clip_type in CLIP_TYPES_DUAL and set(found) == {"clip_l", "clip_g"}:
        family = SDXL
    else:
        raise ValueError(f"text encoders {kinds} with type {clip_type!r} are not supported "
                         f"(supported: stable_diffusion with one CLIP-L/H/G, sdxl with CLIP-L + CLIP-G)")
    return _build(family, found, embedding_dirs, dtype, operations)
