import pytest
import torch
from diffusers.models.embeddings import get_timestep_embedding

from ldm.sampling.model_conds import (CondContext, CrossAttnInput, NoiseShapedInput, RegularInput,
                                      X4_MAX_NOISE_LEVEL, inpaint_conds, model_conds_for_family,
                                      resize_to_batch_size, sdxl_conds, sdxl_refiner_conds, text_conds,
                                      x4_noise_augment, x4_upscaler_conds)
from ldm.sampling.model_sampling import X4_UPSCALER_SCHEDULE, alphas_cumprod

CTX = CondContext(noise_shape=torch.Size([2, 4, 16, 24]))


def embed(values):
    return get_timestep_embedding(torch.tensor(values, dtype=torch.float32), 256,
                                  flip_sin_to_cos=True, downscale_freq_shift=0)


def test_text_conds_and_cross_attention_batching():
    inputs = text_conds({"cross_attn": torch.ones(1, 77, 8)}, CTX)
    assert set(inputs) == {"c_crossattn"} and isinstance(inputs["c_crossattn"], CrossAttnInput)
    a, b = CrossAttnInput(torch.ones(1, 77, 8)), CrossAttnInput(torch.zeros(1, 231, 8))
    assert a.can_concat(b) and not a.can_concat(CrossAttnInput(torch.ones(1, 100, 8)))
    assert CrossAttnInput.concat([a, b]).shape == (2, 231, 8)


def test_sdxl_adm_vector_matches_diffusers_time_embeddings():
    pooled = torch.randn(1, 1280)
    entry = {"cross_attn": torch.ones(1, 77, 2048), "pooled_output": pooled, "width": 1024, "height": 768,
             "crop_w": 16, "crop_h": 8, "target_width": 2048, "target_height": 1536}
    y = sdxl_conds(entry, CTX)["y"].value
    assert y.shape == (1, 2816)
    expected = torch.cat([pooled, embed([768, 1024, 8, 16, 1536, 2048]).flatten().unsqueeze(0)], dim=1)
    torch.testing.assert_close(y, expected)


def test_sdxl_size_defaults_come_from_the_latent():
    y = sdxl_conds({"cross_attn": None, "pooled_output": torch.zeros(1, 4)}, CTX)["y"].value
    torch.testing.assert_close(y[:, 4:], embed([128, 192, 0, 0, 128, 192]).flatten().unsqueeze(0))
    with pytest.raises(ValueError, match="pooled_output"):
        sdxl_conds({"cross_attn": None}, CTX)


def test_sdxl_refiner_aesthetic_score_defaults_by_prompt_side():
    entry = {"cross_attn": None, "pooled_output": torch.zeros(1, 4), "width": 64, "height": 32}
    positive = sdxl_refiner_conds(entry, CTX)["y"].value
    negative = sdxl_refiner_conds(entry, CondContext(CTX.noise_shape, prompt_type="negative"))["y"].value
    torch.testing.assert_close(positive[:, 4:], embed([32, 64, 0, 0, 6.0]).flatten().unsqueeze(0))
    torch.testing.assert_close(negative[:, 4:], embed([32, 64, 0, 0, 2.5]).flatten().unsqueeze(0))
    assert positive.shape == (1, 4 + 5 * 256)


def test_inpaint_concat_is_mask_then_masked_latent():
    latent = torch.randn(1, 4, 16, 24)
    mask = torch.zeros(2, 4, 16, 24)
    mask[..., :12] = 1.0
    ctx = CondContext(CTX.noise_shape, latent_image=latent, denoise_mask=mask)
    concat = inpaint_conds({"cross_attn": None}, ctx)["c_concat"]
    assert isinstance(concat, NoiseShapedInput)
    assert concat.value.shape == (2, 5, 16, 24)
    torch.testing.assert_close(concat.value[:, :1], mask[:, :1])
    torch.testing.assert_close(concat.value[:, 1:], latent.expand(2, -1, -1, -1))
    # InpaintModelConditioning's own mask and latent take precedence, the latent scaled in.
    own = {"cross_attn": None, "concat_mask": torch.ones(1, 1, 32, 48), "concat_latent_image": torch.ones(1, 4, 16, 24)}
    ctx = CondContext(CTX.noise_shape, latent_image=latent, denoise_mask=mask, process_latent_in=lambda t: t * 0.5)
    concat = inpaint_conds(own, ctx)["c_concat"].value
    assert torch.all(concat[:, :1] == 1) and torch.all(concat[:, 1:] == 0.5)


def test_inpaint_without_mask_uses_the_blank_latent():
    concat = inpaint_conds({"cross_attn": None}, CTX)["c_concat"].value
    assert torch.all(concat[:, 0] == 1)
    torch.testing.assert_close(concat[0, 1:, 0, 0], torch.tensor([0.8223, -0.6876, 0.6364, 0.1380]))


def test_noise_shaped_inputs_crop_to_the_area():
    data = NoiseShapedInput(torch.arange(16 * 24, dtype=torch.float32).reshape(1, 1, 16, 24))
    cropped = data.process(3, (4, 5, 2, 7)).value
    assert cropped.shape == (3, 1, 4, 5) and float(cropped[0, 0, 0, 0]) == 2 * 24 + 7
    assert RegularInput(torch.ones(1, 6)).process(3, (4, 5, 2, 7)).value.shape == (3, 6)


def test_x4_upscaler_noise_level_and_low_res_image():
    image = torch.rand(1, 3, 8, 12) * 2 - 1
    entry = {"cross_attn": None, "concat_image": image, "noise_augmentation": 0.2}
    inputs = x4_upscaler_conds(entry, CondContext(CTX.noise_shape, seed=30))
    level = round(X4_MAX_NOISE_LEVEL * 0.2)
    assert inputs["y"].value.tolist() == [level] and inputs["y"].value.dtype == torch.long
    concat = inputs["c_concat"].value
    assert concat.shape == (2, 3, 16, 24)
    resized = torch.nn.functional.interpolate(image, size=(16, 24), mode="bilinear", align_corners=False)
    torch.testing.assert_close(concat[:1], x4_noise_augment(resized, level, 20))
    ab = alphas_cumprod(X4_UPSCALER_SCHEDULE)[level]
    generator = torch.Generator().manual_seed(20)  # ComfyUI draws this noise with seed - 10
    expected = ab.sqrt() * resized + (1 - ab).sqrt() * torch.randn(resized.shape, generator=generator)
    torch.testing.assert_close(concat[:1], expected.float())
    # Without augmentation the image passes unchanged, level 0.
    plain = x4_upscaler_conds({"cross_attn": None, "concat_image": image}, CTX)
    assert plain["y"].value.tolist() == [0]
    torch.testing.assert_close(plain["c_concat"].value[:1], resized)


def test_resize_to_batch_size_picks_evenly():
    items = torch.arange(4).float().reshape(4, 1)
    assert resize_to_batch_size(items, 2).flatten().tolist() == [0, 3]
    assert resize_to_batch_size(items[:2], 4).flatten().tolist() == [0, 0, 1, 1]


def test_family_table():
    assert model_conds_for_family("sdxl") is sdxl_conds
    assert model_conds_for_family("sd1_inpaint") is inpaint_conds
    with pytest.raises(ValueError):
        model_conds_for_family("flux")
