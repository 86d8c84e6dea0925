"""SemanticMapConditioning's other ways in — a palette-coloured map and a mask set — give the very
concat tensor of the label-value map they describe; and the custom-sampling nodes (SamplerCustom,
SamplerCustomAdvanced with CFGGuider, KSamplerSelect, BasicScheduler) drive the paper's models as
KSampler does, on the tiny Lightning ``.ckpt`` files of ``ldm.loading.tiny_ldm``."""

from __future__ import annotations

import pytest
import torch

from ldm.cond_stage.coco_stuff import coco_stuff_label, coco_stuff_names
from ldm.cond_stage.palette import MAX_COLOUR_DISTANCE, palette_colours
from ldm.cond_stage.palette import main as write_legend
from nodes.conditioning import CLIPTextEncode
from nodes.custom_sampling import (
    BasicScheduler,
    CFGGuider,
    KSamplerSelect,
    RandomNoise,
    SamplerCustom,
    SamplerCustomAdvanced,
)
from nodes.latent import EmptyLatentImage
from nodes.ldm_conditioning import ClassConditioning, LDMSuperResolutionConditioning, SemanticMapConditioning
from nodes.sampling import KSampler
from nodes.vae import VAEDecode
from tests.nodes.sampling_support import load_tiny_ldm, make_runner, one_torch_thread  # noqa: F401 (fixture)

SEA, MOUNTAIN, CLOUDS, SKY = 154, 134, 105, 156


@pytest.fixture
def runner(tmp_path):
    return make_runner(tmp_path)


def _random_labels(seed=2, size=32):
    return torch.randint(0, 182, (1, size, size), generator=torch.Generator().manual_seed(seed))


def _label_values(labels):
    return (labels.float() / 255.0)[..., None].expand(-1, -1, -1, 3)


def _palette_image(labels):
    return palette_colours(182)[labels].float() / 255.0


def _concat(runner, clip, **inputs):
    (empty,) = runner(CLIPTextEncode().encode, clip, "")
    positive, negative, latent = runner(SemanticMapConditioning().encode, empty, empty, clip, **inputs)
    return positive[0][1]["ldm_concat"], negative[0][1]["ldm_concat"], latent


def test_palette_is_distinct_and_names_follow_coco_stuff():
    colours = palette_colours(256).float()
    gaps = torch.cdist(colours, colours) + torch.eye(256) * 1e9
    assert float(gaps.min()) >= 32 > MAX_COLOUR_DISTANCE  # one nearest colour within the tolerance
    assert coco_stuff_names()[SKY] == "sky-other" and coco_stuff_names()[0] == "person"
    assert len(coco_stuff_names()) == 171
    assert coco_stuff_label("Sea") == SEA and coco_stuff_label(" 134 ") == MOUNTAIN


def test_legend_is_written(tmp_path):
    from PIL import Image
    write_legend([str(tmp_path / "legend.png")])
    with Image.open(tmp_path / "legend.png") as legend:
        assert legend.mode == "RGB" and legend.width > 400 and legend.height > 400


def test_palette_map_gives_the_label_value_maps_concat(runner):
    _, clip, _ = load_tiny_ldm(runner, "semantic")
    labels = _random_labels()
    expected, _, expected_latent = _concat(runner, clip, segmentation=_label_values(labels))
    positive, negative, latent = _concat(runner, clip, segmentation=_palette_image(labels),
                                         map_kind="palette colours")
    assert torch.equal(positive, expected) and torch.equal(negative, expected)
    assert latent["samples"].shape == expected_latent["samples"].shape == (1, 3, 8, 8)  # the map at the latent (f4)
    # JPEG-sized noise (±12 of 255 per channel) still reads as the same classes
    noise = (torch.rand(_palette_image(labels).shape, generator=torch.Generator().manual_seed(3)) - 0.5) * 24 / 255
    noisy, _, _ = _concat(runner, clip, segmentation=(_palette_image(labels) + noise).clamp(0, 1),
                          map_kind="palette colours")
    assert torch.equal(noisy, expected)


def test_mask_set_gives_the_label_maps_concat(runner):
    _, clip, _ = load_tiny_ldm(runner, "semantic")
    labels = torch.full((1, 32, 32), SKY)
    masks = torch.zeros(3, 32, 32)
    masks[0, 20:, :] = 0.9  # sea below row 20
    masks[1, 12:24, 4:20] = 1.0  # a mountain over the sea's top edge
    masks[2, 2:6, 2:10] = 0.7  # a cloud
    masks[2, 8:10, 2:10] = 0.4  # under 0.5: not painted
    labels[0, 20:, :] = SEA
    labels[0, 12:24, 4:20] = MOUNTAIN
    labels[0, 2:6, 2:10] = CLOUDS
    expected, _, _ = _concat(runner, clip, segmentation=_label_values(labels))
    painted, _, _ = _concat(runner, clip, masks=masks, mask_classes="sea, Mountain, 105", background_class=SKY)
    assert torch.equal(painted, expected)
    # the masks win over a segmentation image given beside them
    also, _, _ = _concat(runner, clip, segmentation=_label_values(_random_labels()), masks=masks,
                         mask_classes="sea, mountain, clouds", background_class=SKY)
    assert torch.equal(also, expected)


def test_semantic_input_errors(runner):
    _, clip, _ = load_tiny_ldm(runner, "semantic")
    (empty,) = runner(CLIPTextEncode().encode, clip, "")
    node = SemanticMapConditioning()
    masks = torch.ones(2, 16, 16)
    with pytest.raises(ValueError, match="needs a segmentation image or a mask set"):
        node.encode(empty, empty, clip)
    with pytest.raises(ValueError, match=r"2 mask\(s\) but 1 class\(es\)"):
        node.encode(empty, empty, clip, masks=masks, mask_classes="sea")
    with pytest.raises(ValueError, match="unknown class 'unicorn'"):
        node.encode(empty, empty, clip, masks=masks, mask_classes="sea, unicorn")
    with pytest.raises(ValueError, match=r"unknown class '182'.*0\.\.181"):
        node.encode(empty, empty, clip, masks=masks, mask_classes="sea, 182")
    with pytest.raises(ValueError, match=r"unknown class '200'"):
        node.encode(empty, empty, clip, masks=masks, mask_classes="sea, sky-other", background_class=200)
    image = _palette_image(torch.full((1, 16, 16), SEA))
    image[0, :4, :] = 1.0  # white: 77 from the nearest palette colour
    with pytest.raises(ValueError, match=r"25\.0% of the map's pixels \(e\.g\. RGB \(255, 255, 255\)\)"):
        node.encode(empty, empty, clip, segmentation=image, map_kind="palette colours")
    with pytest.raises(ValueError, match="labels must lie in 0..181"):
        node.encode(empty, empty, clip, segmentation=torch.ones(1, 16, 16, 3))  # 255 as a label value


def _decode(runner, vae, samples):
    (image,) = runner(VAEDecode().decode, vae, samples)
    assert torch.isfinite(image).all()
    return image


def test_sampler_custom_drives_the_class_conditional_model_as_ksampler_does(runner):
    model, clip, vae = load_tiny_ldm(runner, "cin")
    (positive,) = runner(ClassConditioning().encode, clip, 207)
    (negative,) = runner(ClassConditioning().encode, clip, -1)
    (latent,) = runner(EmptyLatentImage().generate, 32, 32, 1)
    (sampler,) = runner(KSamplerSelect().get_sampler, "plms")
    (sigmas,) = runner(BasicScheduler().get_sigmas, model, "ddim_uniform", 4, 1.0)
    output, denoised = runner(SamplerCustom().sample, model, True, 5, 3.0, positive, negative, sampler, sigmas,
                              latent)
    (reference,) = runner(KSampler().sample, model, 5, 4, 3.0, "plms", "ddim_uniform", positive, negative,
                          latent, 1.0)
    torch.testing.assert_close(output["samples"], reference["samples"])
    assert denoised["samples"].shape == output["samples"].shape == (1, 3, 8, 8)  # VQ-f4
    assert _decode(runner, vae, output).shape == (1, 32, 32, 3)


def test_sampler_custom_advanced_drives_the_super_resolution_model_with_its_concat(runner):
    model, clip, vae = load_tiny_ldm(runner, "sr")
    (empty,) = runner(CLIPTextEncode().encode, clip, "")
    low_res = torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(4))
    positive, negative, latent = runner(LDMSuperResolutionConditioning().encode, empty, empty, low_res)
    (guider,) = runner(CFGGuider().get_guider, model, positive, negative, 1.0)
    (noise,) = runner(RandomNoise().get_noise, 7)
    (sampler,) = runner(KSamplerSelect().get_sampler, "plms")
    (sigmas,) = runner(BasicScheduler().get_sigmas, model, "ddim_uniform", 4, 1.0)
    seen = []
    hook = model.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        output, _ = runner(SamplerCustomAdvanced().sample, noise, guider, sampler, sigmas, latent)
    finally:
        hook.remove()
    expected = low_res.permute(0, 3, 1, 2) * 2 - 1  # bsr_sr's LR_image in [-1, 1]
    assert seen and all(torch.allclose(x[:, 3:], expected.expand(x.shape[0], -1, -1, -1)) for x in seen)
    (reference,) = runner(KSampler().sample, model, 7, 4, 1.0, "plms", "ddim_uniform", positive, negative,
                          latent, 1.0)
    torch.testing.assert_close(output["samples"], reference["samples"])
    assert _decode(runner, vae, output).shape == (1, 64, 64, 3)
