"""Union ControlNets (ControlNet++): the task transformer and type embedding against diffusers'
components, loading from the diffusers layout, and the control type changing the residuals.

diffusers' whole ``ControlNetUnionModel`` also feeds the latent's own pooled features to the task
transformer (its ProMax form); ComfyUI, whose results Weft keeps, feeds the hint's only, so the
parts are compared one by one.
"""

from __future__ import annotations

import pytest
import torch

from ldm.control.loading import control_model_from_state_dict
from ldm.control.network import ControlTypeEmbedding, UnionConfig, UnionTransformerLayer
from ldm.control.tiny import tiny_controlnet_state_dict, to_diffusers_layout
from ldm.loading.weights import random_weights
from ldm.networks.ops import Operations

CPU = Operations()


def _random(module, seed):
    module.load_state_dict(random_weights(module, torch.Generator().manual_seed(seed)))
    return module.eval()


def test_task_transformer_layer_matches_diffusers_residual_attention_block():
    from diffusers.models.controlnets.controlnet_union import ResidualAttentionBlock

    ours = _random(UnionTransformerLayer(32, 8, CPU), seed=1)
    theirs = ResidualAttentionBlock(32, 8).eval()
    state = {k.replace("attn.in_proj.", "attn.in_proj_"): v for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)
    x = torch.randn(3, 1, 32)  # [B, tokens, C]
    with torch.no_grad():
        expected = theirs(x.transpose(0, 1)).transpose(0, 1)  # nn.MultiheadAttention is sequence-first
        assert torch.allclose(ours(x), expected, atol=1e-5)


def test_control_type_embedding_matches_diffusers_timesteps_and_timestep_embedding():
    from diffusers.models.embeddings import TimestepEmbedding, Timesteps

    union = UnionConfig(types=8, width=32, embed_dim=16)
    ours = _random(ControlTypeEmbedding(union, 128, CPU), seed=2)
    project, embed = Timesteps(16, True, 0), TimestepEmbedding(16 * 8, 128)
    embed.load_state_dict(ours.state_dict(), strict=True)
    one_hot = torch.zeros(1, 8)
    one_hot[0, 3] = 1.0
    with torch.no_grad():
        expected = embed(project(one_hot.flatten()).reshape(1, -1))
        assert torch.allclose(ours([3], torch.float32, torch.device("cpu")), expected, atol=1e-5)


def test_union_file_in_diffusers_layout_and_its_control_type():
    weights = tiny_controlnet_state_dict("sd1", seed=3, union_types=8)
    control = control_model_from_state_dict(to_diffusers_layout(weights))
    network = control.network
    assert network.config.union == UnionConfig(types=8, width=32, embed_dim=16)
    assert torch.equal(network.task_embedding, weights["task_embedding"])
    g = torch.Generator().manual_seed(0)
    inputs = dict(x=torch.randn(1, 4, 8, 8, generator=g), hint=torch.rand(1, 3, 64, 64, generator=g),
                  timesteps=torch.tensor([400.0]), context=torch.randn(1, 5, 32, generator=g))
    with torch.no_grad():
        auto = network(**inputs, control_type=[])
        canny = network(**inputs, control_type=[3])
        depth = network(**inputs, control_type=[1])
    assert (canny["output"][0] - depth["output"][0]).abs().max() > 1e-3
    assert (canny["output"][0] - auto["output"][0]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="out of range"):
        network(**inputs, control_type=[8])
