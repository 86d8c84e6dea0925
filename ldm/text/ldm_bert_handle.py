"""The text handle of the paper's text-to-image model (the ``CLIP`` socket type for an LDM BERT
encoder): the same interface the CLIP handle offers nodes and the engine — ``tokenize``,
``encode_from_tokens``, ``encode_from_tokens_scheduled``, ``clone``, ``set_last_layer``, LoRA
``patches`` — over :mod:`ldm.text.ldm_bert` and :mod:`ldm.text.wordpiece`.

Tokens are ``{"bert": [chunk]}``: one chunk of 77 ``(id, weight)`` pairs laid out as CompVis'
``BERTTokenizer`` does (``[CLS] ids… [SEP] [PAD]…``, the ids cut to 75). Longer prompts are
truncated, as they were for the model in training: its position embedding has 77 rows.

Prompt weighting uses ComfyUI's syntax (:mod:`ldm.text.prompt`; each weighted segment is
tokenised on its own) and ComfyUI's method (:mod:`ldm.text.encode`): when a weight differs from 1,
the empty prompt is encoded too and each weighted position's output ``z`` becomes
``e + (z - e)·w``, ``e`` the empty prompt's output there. Unweighted prompts give CompVis' output.
``embedding:`` names are plain text (no textual inversion for this encoder). There is no pooled
output: it is None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import torch
from torch import nn

from ldm.lora import patches as lora
from ldm.sampling.weight_hooks import encode_passes
from ldm.text import prompt as prompt_syntax
from ldm.text.handle_base import TextHandleState
from ldm.text.ldm_bert import LDMBertEncoder, build_ldm_bert
from ldm.text.wordpiece import CLS_ID, MAX_LENGTH, PAD_ID, SEP_ID, WordPieceTokenizer, frame

Tokens = dict[str, list[list[tuple]]]

#: Key of this encoder's chunks in a ``tokenize`` result.
TOKENS_KEY = "bert"
#: Module name of the encoder in ``handle.encoders``: the weights' names are then the checkpoint's
#: without its ``cond_stage_model.`` prefix (``transformer.attn_layers.layers.0.1.to_q.weight``).
ENCODER_NAME = "transformer"
_CHECKPOINT_ROOT = "cond_stage_model."


def own_key(key: str) -> str:
    """A patch key as this handle names weights; checkpoint-style ``cond_stage_model.…`` accepted."""
    return key.removeprefix(_CHECKPOINT_ROOT)


class LDMBertHandle(TextHandleState):
    # Patch keys: ``transformer.…`` (the handle's own, and what get_key_patches gives) or the
    # checkpoint's ``cond_stage_model.transformer.…``.
    own_key = staticmethod(own_key)

    def __init__(self, encoder: LDMBertEncoder | nn.ModuleDict, tokenizer: WordPieceTokenizer | None = None):
        super().__init__(encoder if isinstance(encoder, nn.ModuleDict) else nn.ModuleDict({ENCODER_NAME: encoder}))
        self.tokenizer = tokenizer if tokenizer is not None else WordPieceTokenizer.load()

    @property
    def encoder(self) -> LDMBertEncoder:
        return cast(LDMBertEncoder, self.encoders[ENCODER_NAME])

    def clone(self) -> LDMBertHandle:
        twin = LDMBertHandle(self.encoders, self.tokenizer)
        self.copy_state_to(twin)
        return twin

    def tokenize(self, text: str, return_word_ids: bool = False, **options) -> Tokens:
        """``{"bert": [chunk]}``, the chunk 77 ``(id, weight)`` — or ``(id, weight, word_id)`` — pairs."""
        use_weights = not options.get("disable_weights", False)
        pairs: list[tuple] = []
        for word_id, (segment, weight) in enumerate(prompt_syntax.weighted_segments(text, use_weights), 1):
            pairs += [(token, weight, word_id) for token in self.tokenizer.tokenize(segment)]
        body = pairs[:MAX_LENGTH - 2]
        chunk = [(CLS_ID, 1.0, 0)] + body + [(SEP_ID, 1.0, 0)] + [(PAD_ID, 1.0, 0)] * (MAX_LENGTH - 2 - len(body))
        return {TOKENS_KEY: [chunk if return_word_ids else [pair[:2] for pair in chunk]]}

    def encode_from_tokens(self, tokens: Tokens, return_pooled: bool = False, return_dict: bool = False):
        """``cond [1, 77·k, width]`` (k chunks, normally 1); or ``(cond, None)``; or
        ``{"cond", "pooled_output": None}``. Float32, on the CPU."""
        chunks = [[(int(pair[0]), float(pair[1])) for pair in chunk] for chunk in tokens[TOKENS_KEY]]
        weighted = any(weight != 1.0 for chunk in chunks for _, weight in chunk)
        rows = [[token for token, _ in chunk] for chunk in chunks]
        if weighted:
            rows.append(frame([], len(rows[0])))  # the empty prompt, to weight against
        encoder = self.encoder
        ids = torch.tensor(rows, device=encoder.token_emb.weight.device)
        with torch.no_grad(), lora.patched(self.encoders, self.patches):
            hidden = encoder(ids, layer=self.layer_idx).float().cpu()
        z = hidden[:len(chunks)]
        if weighted:
            empty = hidden[-1:]
            w = torch.tensor([[weight for _, weight in chunk] for chunk in chunks]).unsqueeze(-1)
            z = torch.where(w != 1.0, empty + (z - empty) * w, z)
        cond = z.reshape(1, -1, z.shape[-1])
        if return_dict:
            return {"cond": cond, "pooled_output": None}
        return (cond, None) if return_pooled else cond

    def encode_from_tokens_scheduled(self, tokens: Tokens, add_dict: Mapping | None = None) -> list:
        """A CONDITIONING list ``[[cond, {"pooled_output": None, **add_dict}]]``; with weight
        hooks, one entry per encode they ask for."""
        return [[handle.encode_from_tokens(tokens), {"pooled_output": None, **extras}]
                for handle, extras in encode_passes(self, add_dict)]

    def encode(self, text: str) -> torch.Tensor:
        return self.encode_from_tokens(self.tokenize(text))

    def __repr__(self) -> str:
        config = self.encoder.config
        return f"LDMBertHandle(width={config.width}, depth={config.depth})"


def build_ldm_bert_handle(state_dict: Mapping[str, torch.Tensor], prefix: str | None = None, *,
                          dtype: torch.dtype = torch.float32, **options) -> LDMBertHandle:
    """The handle of the LDM BERT encoder in ``state_dict`` (a whole CompVis checkpoint or the
    encoder alone; see :func:`ldm.text.ldm_bert.build_ldm_bert` for ``options``)."""
    return LDMBertHandle(build_ldm_bert(state_dict, prefix, dtype=dtype, **options))
