"""A random tiny LDM BERT text encoder in the CompVis checkpoint layout, for tests and tiny
checkpoints: width 32, 2 blocks, CompVis' 8 heads (of 8, so the attention's inner width, 64,
differs from the model width as in the real 1280-wide model with its 512), MLP 128, the real
vocabulary (30522) and 77 positions, so every id the WordPiece tokenizer makes fits.
"""

from __future__ import annotations

import torch

from ldm.text.ldm_bert import CHECKPOINT_PREFIX, COMPVIS_HEADS, LDMBertConfig, LDMBertEncoder

TINY_LDM_BERT = LDMBertConfig(width=32, depth=2, heads=COMPVIS_HEADS, head_dim=8, mlp_width=128)


def random_ldm_bert_weights(config: LDMBertConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random unprefixed weights: N(0, 0.2) matrices, norms near 1, small biases, embeddings N(0, 0.5)."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in LDMBertEncoder(config).state_dict().items()}
    weights = {}
    for key, shape in sorted(shapes.items()):
        noise = torch.randn(shape, generator=generator)
        if key.endswith(".bias"):
            weights[key] = 0.02 * noise
        elif noise.ndim == 1:  # a LayerNorm's scale
            weights[key] = 1.0 + 0.1 * noise
        elif key.startswith(("token_emb.", "pos_emb.")):
            weights[key] = 0.5 * noise
        else:
            weights[key] = 0.2 * noise
    return weights


def tiny_ldm_bert_state_dict(seed: int = 0, prefix: str = CHECKPOINT_PREFIX,
                             config: LDMBertConfig = TINY_LDM_BERT) -> dict[str, torch.Tensor]:
    """Random encoder weights under ``prefix``, keys exactly as in a CompVis txt2img checkpoint,
    including the ``to_logits`` head real files carry (loaders must skip it)."""
    generator = torch.Generator().manual_seed(seed)
    weights = random_ldm_bert_weights(config, generator)
    weights["to_logits.weight"] = 0.2 * torch.randn(config.vocab_size, config.width, generator=generator)
    weights["to_logits.bias"] = torch.zeros(config.vocab_size)
    return {prefix + key: tensor for key, tensor in weights.items()}
