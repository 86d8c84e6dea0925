"""unCLIP's noise augmentation against diffusers' StableUnCLIPImageNormalizer + DDPM noising
(the pipeline's own ``noise_image_embeddings``), and the label built from several images."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from diffusers import DDPMScheduler
from diffusers.pipelines.stable_diffusion.pipeline_stable_unclip_img2img import StableUnCLIPImg2ImgPipeline
from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer

from ldm.sampling.noise import cpu_generator
from ldm.vision.clip_vision import ClipVisionOutput
from ldm.vision.unclip import EmbeddingNoiseAugmentor, noise_level, squaredcos_betas, unclip_label

WIDTH = 16


def _diffusers_noising(embeds, level, noise, mean, std):
    normalizer = StableUnCLIPImageNormalizer(embedding_dim=WIDTH)
    with torch.no_grad():
        normalizer.mean.copy_(mean[None])
        normalizer.std.copy_(std[None])
    pipe = SimpleNamespace(image_normalizer=normalizer,
                           image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"))
    with torch.no_grad():
        return StableUnCLIPImg2ImgPipeline.noise_image_embeddings(pipe, embeds, level, noise=noise)


@pytest.mark.parametrize("level", [0, 250, 999])
def test_noise_augmentation_matches_diffusers(level):
    g = torch.Generator().manual_seed(level)
    embeds, noise = torch.randn(3, WIDTH, generator=g), torch.randn(3, WIDTH, generator=g)
    mean, std = 0.3 * torch.randn(WIDTH, generator=g), 0.5 + torch.rand(WIDTH, generator=g)
    noised, level_embedding = EmbeddingNoiseAugmentor(WIDTH, mean, std)(embeds, level, noise)
    expected = _diffusers_noising(embeds, level, noise, mean, std)
    assert torch.allclose(torch.cat([noised, level_embedding], 1), expected, atol=1e-5, rtol=1e-4)


def test_schedule_is_squared_cosine():
    betas = squaredcos_betas()
    reference = DDPMScheduler(beta_schedule="squaredcos_cap_v2").betas
    assert torch.allclose(betas.float(), reference, atol=1e-6)
    assert noise_level(0.0) == 0 and noise_level(1.0) == 999 and noise_level(0.5) == 500


def _vision(embeds):
    return ClipVisionOutput(image_embeds=embeds, last_hidden_state=torch.zeros(1), penultimate_hidden_states=torch.zeros(1))


def test_one_image_label_is_strength_times_augmented_embedding():
    embeds = torch.randn(1, WIDTH, generator=torch.Generator().manual_seed(1))
    seed = 1234 - 10
    label = unclip_label([{"clip_vision_output": _vision(embeds), "strength": 0.7, "noise_augmentation": 0.2}],
                         WIDTH, seed)
    noise = torch.randn(1, WIDTH, generator=cpu_generator(seed))
    noised, level_embedding = EmbeddingNoiseAugmentor(WIDTH)(embeds, 200, noise)
    assert torch.allclose(label, 0.7 * torch.cat([noised, level_embedding], 1))
    # level 0 keeps the embedding (ᾱ_0 ≈ 1)
    clean = unclip_label([{"clip_vision_output": _vision(embeds), "strength": 1.0, "noise_augmentation": 0.0}],
                         WIDTH, seed)
    assert torch.allclose(clean[:, :WIDTH], embeds, atol=0.02)


def test_several_images_are_summed_and_noised_again_at_the_merge_level():
    g = torch.Generator().manual_seed(2)
    first, second = torch.randn(2, WIDTH, generator=g), torch.randn(1, WIDTH, generator=g)
    items = [{"clip_vision_output": _vision(first), "strength": 1.0, "noise_augmentation": 0.1},
             {"clip_vision_output": _vision(second), "strength": 0.5, "noise_augmentation": 0.3}]
    seed = 7
    label = unclip_label(items, WIDTH, seed, merge_augmentation=0.05)

    augment = EmbeddingNoiseAugmentor(WIDTH)
    reseeded = torch.randn(1, WIDTH, generator=cpu_generator(seed))  # every image draws this
    parts = []
    for rows, strength, level in ((first, 1.0, 100), (second, 0.5, 300)):
        for row in rows:
            noised, emb = augment(row[None], level, reseeded)
            parts.append(torch.cat([noised, emb], 1) * strength)
    summed = sum(parts)
    generator = cpu_generator(seed)
    torch.randn(1, WIDTH, generator=generator)
    merge_noise = torch.randn(1, WIDTH, generator=generator)
    noised, emb = augment(summed[:, :WIDTH], noise_level(0.05), merge_noise)
    assert torch.allclose(label, torch.cat([noised, emb], 1))
    assert label.shape == (1, 2 * WIDTH)


def test_no_unclip_conditioning_is_a_zero_label():
    assert torch.equal(unclip_label(None, WIDTH, 0), torch.zeros(1, 2 * WIDTH))
