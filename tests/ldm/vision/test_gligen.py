"""GLIGEN's gated self-attention and position net against diffusers' GatedSelfAttentionDense and
GLIGENTextBoundingboxProjection (same weights), box parameters, and the fusers inside the UNet."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention import GatedSelfAttentionDense as DiffusersGated
from diffusers.models.embeddings import GLIGENTextBoundingboxProjection

from ldm.loading.checkpoint import save_state_dict
from ldm.loading.weights import adopt_weights, random_weights
from ldm.networks.unet import UNetModel
from ldm.tiny import TextWidths, tiny_unet_config
from ldm.vision.gligen import MAX_OBJECTS, GatedSelfAttentionDense, GligenError, PositionNet, load_gligen
from ldm.vision.tiny import tiny_gligen_state_dict


def _randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(0.3 * torch.randn(param.shape, generator=g) + (1.0 if param.ndim == 0 else 0.0))
    return module.eval()


def test_gated_self_attention_matches_diffusers():
    reference = _randomise(DiffusersGated(32, 24, 2, 16), 0)
    ours = GatedSelfAttentionDense(32, 24, 2, 16)
    ours.load_state_dict(reference.state_dict())
    g = torch.Generator().manual_seed(1)
    x, objs = torch.randn(2, 20, 32, generator=g), torch.randn(2, MAX_OBJECTS, 24, generator=g)
    with torch.no_grad():
        assert torch.allclose(ours(x, objs), reference(x, objs), atol=1e-5, rtol=1e-4)


def test_position_net_matches_diffusers():
    reference = _randomise(GLIGENTextBoundingboxProjection(positive_len=24, out_dim=32), 2)
    ours = PositionNet(24, 32)
    ours.load_state_dict(reference.state_dict())
    g = torch.Generator().manual_seed(3)
    boxes, embeddings = torch.rand(2, MAX_OBJECTS, 4, generator=g), torch.randn(2, MAX_OBJECTS, 24, generator=g)
    masks = (torch.arange(MAX_OBJECTS) < 3).float().expand(2, -1)
    with torch.no_grad():
        expected = reference(boxes, masks, positive_embeddings=embeddings)
        assert torch.allclose(ours(boxes, masks, embeddings), expected, atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    config = tiny_unet_config("sd1", TextWidths(context=32))
    unet = UNetModel(config)
    adopt_weights(unet, random_weights(unet, torch.Generator().manual_seed(0)))
    path = tmp_path_factory.mktemp("gligen") / "gligen.safetensors"
    save_state_dict(path, {f"model.diffusion_model.{k}" if "fuser" in k else k: v
                           for k, v in tiny_gligen_state_dict(config, key_dim=32, seed=1).items()})
    return unet, load_gligen(path)


def test_box_parameters_become_normalised_corners(tiny):
    _, gligen = tiny
    pooled = torch.randn(1, 32, generator=torch.Generator().manual_seed(4))
    # ComfyUI's entry: (pooled, height/8, width/8, y/8, x/8) on a 16x32 latent
    patch = gligen.position_patch((1, 4, 16, 32), [(pooled, 8, 16, 4, 8)])
    boxes = torch.zeros(1, MAX_OBJECTS, 4)
    boxes[0, 0] = torch.tensor([8 / 32, 4 / 16, 24 / 32, 12 / 16])
    masks = torch.zeros(1, MAX_OBJECTS)
    masks[0, 0] = 1
    embeddings = torch.zeros(1, MAX_OBJECTS, 32)
    embeddings[0, 0] = pooled[0]
    x = torch.randn(1, 64, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = gligen.fusers[0](x, gligen.position_net(boxes, masks, embeddings))
    assert torch.allclose(patch(x, {"transformer_index": 0}), expected, atol=1e-6)
    with pytest.raises(GligenError, match="at most 30"):
        gligen.position_patch((1, 4, 16, 32), [(pooled, 8, 8, 0, 0)] * 31)


def test_fusers_run_after_self_attention_of_each_transformer_in_order(tiny):
    unet, gligen = tiny
    transformers = sum(1 for name, _ in unet.named_modules() if name.endswith("transformer_blocks.0"))
    assert len(gligen.fusers) == transformers
    pooled = torch.randn(1, 32, generator=torch.Generator().manual_seed(6))
    x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(7))
    t, context = torch.tensor([400.0]), torch.randn(1, 7, 32, generator=torch.Generator().manual_seed(8))
    grounded = gligen.position_patch(x.shape, [(pooled, 8, 8, 0, 0)])
    seen = []

    def recording(h, extra):
        seen.append((extra["transformer_index"], h.shape[-1]))
        return grounded(h, extra)

    with torch.no_grad():
        plain = unet(x, t, context=context)
        with_boxes = unet(x, t, context=context, transformer_options={"patches": {"middle_patch": [recording]}})
        empty = unet(x, t, context=context, transformer_options={"patches": {"middle_patch": [gligen.empty_patch(x.shape)]}})
    assert [index for index, _ in seen] == list(range(transformers))
    assert [width for _, width in seen] == [gligen.fusers[i].linear.out_features for i in range(transformers)]
    assert not torch.allclose(with_boxes, plain, atol=1e-4)
    assert not torch.allclose(with_boxes, empty, atol=1e-4)


def test_non_gligen_files_are_refused(tmp_path):
    save_state_dict(tmp_path / "x.safetensors", {"foo": torch.zeros(1)})
    with pytest.raises(GligenError, match="no position_net"):
        load_gligen(tmp_path / "x.safetensors")


# --- in the sampler's guidance (ComfyUI's get_area_and_mult / calc_cond_batch) ------------------


class RecordingModel:
    """apply_model that records each call's batch size and middle patches; predicts zero."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, sigma, c):
        patches = c.get("transformer_options", {}).get("patches", {})
        self.calls.append((x.shape[0], list(patches.get("middle_patch", ())), list(patches.get("attn2_patch", ()))))
        return torch.zeros_like(x)


def test_guidance_hands_each_gligen_entry_its_middle_patch_after_the_models(tiny):
    from ldm.sampling.guidance import CFGGuider, GuidedModel
    from ldm.sampling.hooks import SamplingHooks
    from ldm.sampling.model_sampling import model_sampling

    _, gligen = tiny
    model_patch = lambda n, context, value, extra: (n, context, value)  # noqa: E731
    recorder = RecordingModel()
    hooks = SamplingHooks.from_model_options({"transformer_options": {"patches": {"attn2_patch": [model_patch],
                                                                                   "middle_patch": [model_patch]}}})
    guided = GuidedModel(apply_model=recorder, sampling=model_sampling(), hooks=hooks)
    pooled = torch.randn(1, 32, generator=torch.Generator().manual_seed(9))
    value = ("position", gligen, [(pooled, 8, 8, 0, 0)])
    positive = [[torch.zeros(1, 77, 32), {"gligen": value}]]
    negative = [[torch.ones(1, 77, 32), {}]]
    denoiser = CFGGuider(guided, positive, negative, 5.0).prepare(torch.Size([1, 4, 16, 16]))
    denoiser(torch.zeros(1, 4, 16, 16), torch.tensor([1.0]))
    # the negative got the positive's GLIGEN (apply_empty_x_to_equal_area): two calls of one
    assert [batch for batch, _, _ in recorder.calls] == [1, 1]
    for _, middle, attn2 in recorder.calls:
        assert middle[0] is model_patch and len(middle) == 2 and attn2 == [model_patch]
    x = torch.randn(1, 64, 32, generator=torch.Generator().manual_seed(10))
    expected = gligen.position_patch((1, 4, 16, 16), value[2])(x, {"transformer_index": 0})
    assert torch.allclose(recorder.calls[0][1][1](x, {"transformer_index": 0}), expected)


def test_entries_without_gligen_still_share_a_call():
    from ldm.sampling.guidance import CFGGuider, GuidedModel
    from ldm.sampling.model_sampling import model_sampling

    recorder = RecordingModel()
    guided = GuidedModel(apply_model=recorder, sampling=model_sampling())
    denoiser = CFGGuider(guided, [[torch.zeros(1, 77, 32), {}]], [[torch.ones(1, 77, 32), {}]], 5.0).prepare(
        torch.Size([1, 4, 16, 16]))
    denoiser(torch.zeros(1, 4, 16, 16), torch.tensor([1.0]))
    assert [batch for batch, _, _ in recorder.calls] == [2]
