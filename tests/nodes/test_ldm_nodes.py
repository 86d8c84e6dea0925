"""The paper's LDM checkpoints through the nodes users wire: CheckpointLoaderSimple -> text /
class / layout / concat conditioning -> KSampler (euler, ddim_eta, plms) -> VAEDecode, on the tiny
Lightning ``.ckpt`` files of ``ldm.loading.tiny_ldm``; and the conditioning the UNet receives,
checked against the paper's definitions computed here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ldm.loading.checkpoint import load_state_dict
from ldm.text.layout_handle import build_layout_handle
from ldm.text.layout_tokens import OPENIMAGES_LAYOUT, class_ids, layout_tokens
from nodes.conditioning import CLIPTextEncode
from nodes.latent import EmptyLatentImage
from nodes.ldm_conditioning import (
    ClassConditioning,
    LayoutConditioning,
    LDMInpaintConditioning,
    LDMSuperResolutionConditioning,
    SemanticMapConditioning,
)
from nodes.sampling import KSampler
from nodes.vae import VAEDecode
from tests.nodes.sampling_support import load_tiny_ldm, make_runner, one_torch_thread  # noqa: F401 (fixture)

SAMPLERS = ("euler", "ddim_eta", "plms")


@pytest.fixture
def runner(tmp_path):
    return make_runner(tmp_path)


def _sample(runner, model, positive, negative, latent, sampler, cfg=2.0):
    (samples,) = runner(KSampler().sample, model, 3, 3, cfg, sampler, "normal", positive, negative, latent, 1.0)
    return samples


def _decode(runner, vae, samples):
    (image,) = runner(VAEDecode().decode, vae, samples)
    assert torch.isfinite(image).all()
    return image


class UNetInputs:
    """Records what the UNet module is called with (x after concatenation, and its context)."""

    def __init__(self, unet):
        self.calls = []
        self.handle = unet.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs):
        self.calls.append((args[0].detach().clone(), kwargs.get("context")))

    def close(self):
        self.handle.remove()


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("layout", ["uncond", "churches", "txt2img"])
def test_text_graph_samples_an_image(runner, layout, sampler):
    model, clip, vae = load_tiny_ldm(runner, layout)
    (positive,) = runner(CLIPTextEncode().encode, clip, "a church in the mountains")
    (negative,) = runner(CLIPTextEncode().encode, clip, "")
    (latent,) = runner(EmptyLatentImage().generate, 64, 64, 1)
    image = _decode(runner, vae, _sample(runner, model, positive, negative, latent, sampler))
    # EmptyLatentImage makes an f8 latent; sampling resizes it for an f4 model, so every first
    # stage decodes the size asked
    assert image.shape == (1, 64, 64, 3)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_class_conditioning_samples_an_image(runner, sampler):
    model, clip, vae = load_tiny_ldm(runner, "cin")
    (positive,) = runner(ClassConditioning().encode, clip, 207)
    (negative,) = runner(ClassConditioning().encode, clip, -1)
    (latent,) = runner(EmptyLatentImage().generate, 32, 32, 1)
    image = _decode(runner, vae, _sample(runner, model, positive, negative, latent, sampler))
    assert image.shape == (1, 32, 32, 3)  # an 8x8 latent of the VQ-f4 first stage


def test_class_context_is_the_embedding_row(runner):
    model, clip, _ = load_tiny_ldm(runner, "cin")
    table = clip.embedder.embedding.weight.detach().float()
    (positive,) = runner(ClassConditioning().encode, clip, 207)
    (negative,) = runner(ClassConditioning().encode, clip, -1)
    assert positive[0][0].shape == (1, 1, 512)
    torch.testing.assert_close(positive[0][0], table[207].reshape(1, 1, 512))
    torch.testing.assert_close(negative[0][0], table[1000].reshape(1, 1, 512))  # cin256-v2's "no class"
    # the standard text graph reaches the same rows: "" is the unconditional class, a number its class
    torch.testing.assert_close(runner(CLIPTextEncode().encode, clip, "")[0][0][0], negative[0][0])
    torch.testing.assert_close(runner(CLIPTextEncode().encode, clip, "207")[0][0][0], positive[0][0])
    spy = UNetInputs(model.unet)
    try:
        (latent,) = runner(EmptyLatentImage().generate, 32, 32, 1)
        _sample(runner, model, positive, negative, latent, "euler", cfg=3.0)
    finally:
        spy.close()
    contexts = torch.cat([context for _, context in spy.calls])
    rows = {tuple(c.reshape(-1)[:4].tolist()) for c in contexts}
    assert rows == {tuple(table[207, :4].tolist()), tuple(table[1000, :4].tolist())}


def _image(height, width, seed=0):
    return torch.rand(1, height, width, 3, generator=torch.Generator().manual_seed(seed))


def _run_concat(runner, model, vae, positive, negative, latent, expected):
    spy = UNetInputs(model.unet)
    try:
        samples = _sample(runner, model, positive, negative, latent, "euler")
    finally:
        spy.close()
    for x, _ in spy.calls:
        assert x.shape[1] == 3 + expected.shape[1]
        torch.testing.assert_close(x[:, 3:], expected.expand(x.shape[0], -1, -1, -1))
    return _decode(runner, vae, samples)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_super_resolution_samples_four_times_the_input(runner, sampler):
    model, clip, vae = load_tiny_ldm(runner, "sr")
    (empty,) = runner(CLIPTextEncode().encode, clip, "")
    low_res = _image(16, 16)
    positive, negative, latent = runner(LDMSuperResolutionConditioning().encode, empty, empty, low_res)
    image = _decode(runner, vae, _sample(runner, model, positive, negative, latent, sampler))
    assert image.shape == (1, 64, 64, 3)


def test_super_resolution_concatenates_the_low_res_image(runner):
    model, clip, vae = load_tiny_ldm(runner, "sr")
    (empty,) = runner(CLIPTextEncode().encode, clip, "")
    low_res = _image(16, 16)
    positive, negative, latent = runner(LDMSuperResolutionConditioning().encode, empty, empty, low_res)
    expected = low_res.permute(0, 3, 1, 2) * 2 - 1  # bsr_sr's LR_image in [-1, 1]
    assert _run_concat(runner, model, vae, positive, negative, latent, expected).shape == (1, 64, 64, 3)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_inpainting_samples_and_concatenates_masked_latent_then_mask(runner, sampler):
    model, clip, vae = load_tiny_ldm(runner, "inpaint")
    (empty,) = runner(CLIPTextEncode().encode, clip, "")
    image = _image(64, 64, seed=1)
    mask = torch.zeros(1, 64, 64)
    mask[:, 16:48, 8:40] = 1.0
    positive, negative, latent = runner(LDMInpaintConditioning().encode, empty, empty, vae, image, mask)
    # scripts/inpaint.py: masked = (1 - m)·image, c = [encode(masked), interpolate(m) (in [-1, 1])]
    masked = image * (1 - mask[..., None])
    encoded = vae.encode(masked)
    small_mask = F.interpolate(mask[:, None] * 2 - 1, size=encoded.shape[-2:])
    expected = torch.cat([encoded, small_mask], dim=1)
    if sampler == "euler":
        out = _run_concat(runner, model, vae, positive, negative, latent, expected)
    else:
        out = _decode(runner, vae, _sample(runner, model, positive, negative, latent, sampler))
    assert out.shape == (1, 64, 64, 3)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_semantic_map_samples_and_concatenates_the_rescaled_one_hot(runner, sampler):
    model, clip, vae = load_tiny_ldm(runner, "semantic")
    (empty,) = runner(CLIPTextEncode().encode, clip, "")
    labels = torch.randint(0, 182, (1, 32, 32), generator=torch.Generator().manual_seed(2))
    segmentation = (labels.float() / 255.0)[..., None].expand(1, 32, 32, 3)
    positive, negative, latent = runner(SemanticMapConditioning().encode, empty, empty, clip, segmentation)
    # SpatialRescaler(n_stages=2, bilinear, multiplier 0.5) then the 1x1 channel map, no bias
    one_hot = F.one_hot(labels, 182).permute(0, 3, 1, 2).float()
    halved = F.interpolate(F.interpolate(one_hot, scale_factor=0.5, mode="bilinear"), scale_factor=0.5,
                           mode="bilinear")
    weight = clip.encoders["channel_mapper"].weight.detach().float()
    expected = torch.einsum("oc,bchw->bohw", weight[:, :, 0, 0], halved)
    if sampler == "euler":
        out = _run_concat(runner, model, vae, positive, negative, latent, expected)
    else:
        out = _decode(runner, vae, _sample(runner, model, positive, negative, latent, sampler))
    assert out.shape == (1, 32, 32, 3)


def test_concat_model_without_its_conditioning_says_which_node(runner):
    model, clip, _ = load_tiny_ldm(runner, "sr")
    (empty,) = runner(CLIPTextEncode().encode, clip, "")
    (latent,) = runner(EmptyLatentImage().generate, 32, 32, 1)
    with pytest.raises(Exception, match="LDMSuperResolutionConditioning"):
        _sample(runner, model, empty, empty, latent, "euler")


def test_class_node_refuses_another_models_clip(runner):
    _, clip, _ = load_tiny_ldm(runner, "uncond")
    with pytest.raises(TypeError, match="class-conditional"):
        ClassConditioning().encode(clip, 3)


def test_class_conditioning_by_name(runner):
    _, clip, _ = load_tiny_ldm(runner, "cin")
    (by_index,) = runner(ClassConditioning().encode, clip, 207)
    (by_name,) = runner(ClassConditioning().encode, clip, 0, "Golden Retriever")
    torch.testing.assert_close(by_name[0][0], by_index[0][0])
    (blank,) = runner(ClassConditioning().encode, clip, 207, "  ")  # empty: the index decides
    torch.testing.assert_close(blank[0][0], by_index[0][0])
    with pytest.raises(ValueError, match="'golden retreiver' is not an ImageNet class name"):
        ClassConditioning().encode(clip, 0, "golden retreiver")


LAYOUT = ('[{"label": "Cat", "x": 0.1, "y": 0.2, "w": 0.5, "h": 0.6}, '
          '{"label": "tree", "x": 0.6, "y": 0.0, "w": 0.4, "h": 1.0}]')


def test_layout_node_declares_the_widget_with_the_openimages_labels():
    options = LayoutConditioning.INPUT_TYPES()["required"]["layout"][1]
    assert options["weft_widget"] == "layout_boxes" and options["default"] == "[]" and not options["multiline"]
    assert len(options["labels"]) == 340 and options["labels"][class_ids("openimages")["Cat"]] == "Cat"


@pytest.mark.parametrize("sampler", ["euler", "plms"])
def test_layout_conditioning_samples_an_image(runner, sampler):
    model, clip, vae = load_tiny_ldm(runner, "layout")
    (positive,) = runner(LayoutConditioning().encode, clip, LAYOUT)
    (negative,) = runner(LayoutConditioning().encode, clip, "[]")
    assert positive[0][0].shape == negative[0][0].shape == (1, 92, 32)
    (latent,) = runner(EmptyLatentImage().generate, 64, 48, 1)
    image = _decode(runner, vae, _sample(runner, model, positive, negative, latent, sampler))
    assert image.shape == (1, 48, 64, 3)


def test_layout_context_is_the_encoders_output_for_the_boxes_tokens(runner):
    model, clip, _ = load_tiny_ldm(runner, "layout")
    # the expected contexts from the file's own weights and taming's token rules, apart from the node
    folder = runner.services.folders.model_roots("checkpoints")[0]
    handle = build_layout_handle(load_state_dict(folder / "tiny-ldm-layout.ckpt")[0])
    ids = class_ids("openimages")
    boxes = [(ids["Cat"], 0.1, 0.2, 0.5, 0.6), (ids["Tree"], 0.6, 0.0, 0.4, 1.0)]
    expected_positive = handle.encode_tokens([layout_tokens(boxes, OPENIMAGES_LAYOUT)])
    expected_negative = handle.encode_tokens([layout_tokens([], OPENIMAGES_LAYOUT)])
    (positive,) = runner(LayoutConditioning().encode, clip, LAYOUT)
    (negative,) = runner(LayoutConditioning().encode, clip, "[]")
    torch.testing.assert_close(positive[0][0], expected_positive)
    torch.testing.assert_close(negative[0][0], expected_negative)
    # CLIPTextEncode reads the same JSON, and refuses prose naming the layout node
    torch.testing.assert_close(runner(CLIPTextEncode().encode, clip, LAYOUT)[0][0][0], expected_positive)
    with pytest.raises(ValueError, match="LayoutConditioning"):
        CLIPTextEncode().encode(clip, "a cat under a tree")
    spy = UNetInputs(model.unet)
    try:
        (latent,) = runner(EmptyLatentImage().generate, 32, 32, 1)
        _sample(runner, model, positive, negative, latent, "euler", cfg=3.0)
    finally:
        spy.close()
    contexts = torch.cat([context for _, context in spy.calls]).float()
    assert contexts.shape[1:] == (92, 32)
    for row in contexts:
        assert (torch.allclose(row, expected_positive[0], atol=1e-5)
                or torch.allclose(row, expected_negative[0], atol=1e-5))
    assert any(torch.allclose(row, expected_positive[0], atol=1e-5) for row in contexts)
    assert any(torch.allclose(row, expected_negative[0], atol=1e-5) for row in contexts)


def test_layout_node_names_unknown_labels_and_refuses_another_models_clip(runner):
    _, clip, _ = load_tiny_ldm(runner, "layout")
    with pytest.raises(ValueError, match=r"unknown layout label\(s\) 'Unicorn'.*label list"):
        LayoutConditioning().encode(clip, '[{"label": "Unicorn", "x": 0, "y": 0, "w": 1, "h": 1}]')
    _, cin_clip, _ = load_tiny_ldm(runner, "cin")
    with pytest.raises(TypeError, match="layout-to-image"):
        LayoutConditioning().encode(cin_clip, "[]")
