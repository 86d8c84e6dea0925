"""SDXL detected from the checkpoint's structure: a small SDXL-layout model whose widths are not the
published ones (pooled 64, 8-wide size embeddings: label width 64 + 6*8 = 112) loads, computes what
diffusers computes, and samples; label widths that do not split into pooled + size embeddings are
refused by name.

The model is built by diffusers and transformers themselves (a ``StableDiffusionXLPipeline``), then
written as one single-file checkpoint in the original SGM layout, as diffusers'
``convert_diffusers_to_original_sdxl.py`` writes it: UNet in CompVis names under
``model.diffusion_model.``, VAE under ``first_stage_model.``, CLIP-L in Hugging Face names under
``conditioner.embedders.0.transformer.``, bigG in OpenCLIP names under
``conditioner.embedders.1.model.``. The renaming is Weft's own (diffusers folder loader, VAE keys,
OpenCLIP layout), each already held to diffusers by its own tests.
"""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch

from ldm.loading.checkpoint import load_state_dict, save_state_dict
from ldm.loading.detect import META_SIZE_EMBED, UNET_PREFIX, DetectionError, checkpoint_structure, detect_unet
from ldm.loading.diffusers_folder import diffusers_unet_to_compvis
from ldm.loading.vae_keys import diffusers_vae_to_ldm
from ldm.loading.weights import strip_prefix
from ldm.model import load_checkpoint
from ldm.networks.unet import UNetModel
from ldm.sampling.from_handle import guided_model
from ldm.sampling.model_conds import CondContext, model_conds_for_family
from ldm.sampling.sample import common_ksampler
from ldm.text import tiny_text_state_dict
from ldm.tiny import TextWidths, tiny_unet_config

POOLED = 64  # text_encoder_2's projection width
SIZE_EMBED = 8  # diffusers' addition_time_embed_dim
LABEL = POOLED + 6 * SIZE_EMBED  # 112
# SDXL's layout at a small width: no attention at full resolution, linear projections, 64-wide
# heads (so the file needs no head metadata, like a real one), the "text_time" label.
UNET = dict(sample_size=8, block_out_channels=(64, 128), layers_per_block=2, cross_attention_dim=64,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(1, 2),
            transformer_layers_per_block=(1, 2), use_linear_projection=True, norm_num_groups=32,
            addition_embed_type="text_time", addition_time_embed_dim=SIZE_EMBED,
            projection_class_embeddings_input_dim=LABEL)


def _text_config(**extra):
    from transformers import CLIPTextConfig
    # 32 wide, 2 heads of 16: the head split ldm.text reads off a non-standard width
    return CLIPTextConfig(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2,
                          vocab_size=49408, max_position_embeddings=77, **extra)


def tiny_pipeline():
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unet = UNet2DConditionModel(**UNET)
        vae = AutoencoderKL(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=32,
                            layers_per_block=1)
        clip_l = CLIPTextModel(_text_config(hidden_act="quick_gelu"))
        clip_g = CLIPTextModelWithProjection(_text_config(hidden_act="gelu", projection_dim=POOLED))
        # The tokenizers are optional components; Weft tokenizes with its own CLIP vocabulary.
        pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=clip_l, text_encoder_2=clip_g, tokenizer=None,
                                         tokenizer_2=None, unet=unet, scheduler=EulerDiscreteScheduler(),
                                         add_watermarker=False)
    for part in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
        part.eval()
    return pipe


def _hf_text_names(state_dict: dict) -> dict:
    """Hugging Face's ``text_model.…`` names (transformers 5's CLIPTextModel leaves the prefix out)."""
    if "embeddings.token_embedding.weight" not in state_dict:
        return state_dict
    return {k if k.startswith("text_projection.") else f"text_model.{k}": v for k, v in state_dict.items()}


def original_sdxl_state_dict(pipe) -> dict[str, torch.Tensor]:
    """The pipeline as one SGM-layout state dict, as convert_diffusers_to_original_sdxl.py writes it:
    the bigG tower in OpenCLIP names with q/k/v fused, except its projection, which that script
    leaves as HF's Linear weight ``text_projection.weight`` [P, D] (not OpenCLIP's [D, P])."""
    from ldm.text.layouts import hf_to_openclip

    out = {UNET_PREFIX + k: v for k, v in diffusers_unet_to_compvis(pipe.unet.state_dict()).items()}
    out.update({"first_stage_model." + k: v for k, v in diffusers_vae_to_ldm(pipe.vae.state_dict()).items()})
    out.update({"conditioner.embedders.0.transformer." + k: v
                for k, v in _hf_text_names(pipe.text_encoder.state_dict()).items()})
    bigg = hf_to_openclip(_hf_text_names(pipe.text_encoder_2.state_dict()))
    bigg["text_projection.weight"] = bigg.pop("text_projection").t()
    out.update({"conditioner.embedders.1.model." + k: v for k, v in bigg.items()})
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


@pytest.fixture(scope="module")
def small_sdxl(tmp_path_factory):
    pipe = tiny_pipeline()
    path = tmp_path_factory.mktemp("sdxl") / "small-sdxl.safetensors"
    save_state_dict(path, original_sdxl_state_dict(pipe))  # fp32, no metadata: nothing but tensors
    return path, pipe


def fp32():
    from ldm.devices import detect_compute
    return detect_compute("cpu", force_dtype=torch.float32)


@pytest.fixture(scope="module")
def loaded(small_sdxl):
    path, _ = small_sdxl
    return load_checkpoint(path, compute=fp32())


def test_small_sdxl_is_detected_from_its_text_encoders(loaded):
    model, clip, _ = loaded
    config = model.config
    assert (model.family, model.prediction) == ("sdxl", "eps")
    assert (config.adm_in_channels, config.size_embed_dim, config.context_dim) == (LABEL, SIZE_EMBED, 32 + 32)
    assert config.num_head_channels == 64  # SDXL's convention, as for a real file
    assert list(clip.encoders) == ["clip_l", "clip_g"]


def test_unet_forward_matches_diffusers_with_the_same_time_ids(small_sdxl, loaded):
    _, pipe = small_sdxl
    model = loaded[0]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 8, 8, generator=g)
    t = torch.tensor([20.0, 800.0])
    context = torch.randn(2, 77, 64, generator=g)
    pooled = torch.randn(2, POOLED, generator=g)
    # original 96x128, crop (8, 16), target 112x144; diffusers' time_ids order: h, w, top, left, h, w
    time_ids = torch.tensor([[96.0, 128.0, 8.0, 16.0, 112.0, 144.0]] * 2)
    entry = {"cross_attn": context, "pooled_output": pooled, "width": 128, "height": 96, "crop_w": 16,
             "crop_h": 8, "target_width": 144, "target_height": 112}
    # y as sampling builds it: the family's builder at the model's size-embedding width
    build = model_conds_for_family(model.family, model.config.size_embed_dim)
    y = build(entry, CondContext(noise_shape=x.shape))["y"].value
    assert y.shape == (2, LABEL)
    with torch.no_grad():
        ours = model.unet(x, t, context=context, y=y)
        theirs = pipe.unet(x, t, encoder_hidden_states=context,
                           added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
    scale = theirs.abs().max().item()
    assert scale > 0.1
    assert (ours - theirs).abs().max().item() <= 1e-4 * scale


def test_text_encoders_give_what_the_pipeline_encodes(small_sdxl, loaded):
    _, pipe = small_sdxl
    clip = loaded[1]
    tokens = clip.tokenize("a small red cube")
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    ids = {name: torch.tensor([[token for token, _ in tokens[name][0]]]) for name in ("l", "g")}
    with torch.no_grad():
        # diffusers' encode_prompt: both encoders' penultimate hidden states, pooled from the second
        hidden_l = pipe.text_encoder(ids["l"], output_hidden_states=True).hidden_states[-2]
        out_g = pipe.text_encoder_2(ids["g"], output_hidden_states=True)
    torch.testing.assert_close(cond, torch.cat([hidden_l, out_g.hidden_states[-2]], dim=-1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(pooled, out_g.text_embeds, atol=1e-5, rtol=1e-4)


def _conditioning(clip, text: str) -> list:
    cond, pooled = clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)
    return [[cond, {"pooled_output": pooled}]]


def test_a_few_sampling_steps_make_an_image(loaded):
    model, clip, vae = loaded
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    with torch.no_grad():
        out = common_ksampler(guided_model(model, model.unet), seed=3, steps=3, cfg=4.0, sampler_name="euler",
                              scheduler="normal", positive=_conditioning(clip, "a red circle"),
                              negative=_conditioning(clip, ""), latent=latent)
        image = vae.decode(out["samples"])
    assert out["samples"].shape == (1, 4, 8, 8) and torch.isfinite(out["samples"]).all()
    assert image.shape == (1, 16, 16, 3) and torch.isfinite(image).all()


def test_a_label_that_is_not_pooled_plus_size_embeddings_is_refused(small_sdxl):
    state_dict, _ = load_state_dict(small_sdxl[0])
    key = UNET_PREFIX + "label_emb.0.0.weight"
    state_dict[key] = torch.zeros(state_dict[key].shape[0], LABEL + 1)  # 64 pooled + 49
    unet = strip_prefix(state_dict, UNET_PREFIX)
    with pytest.raises(DetectionError, match=r"other 49 are not 6 equal size embeddings \(height, width"):
        detect_unet(unet, {}, structure=checkpoint_structure(state_dict))


def test_the_context_must_be_what_the_text_encoders_give(small_sdxl):
    state_dict, _ = load_state_dict(small_sdxl[0])
    without_clip_l = {k: v for k, v in state_dict.items() if not k.startswith("conditioner.embedders.0.")}
    with pytest.raises(DetectionError, match="64-wide context but the text encoders give 32"):
        detect_unet(strip_prefix(state_dict, UNET_PREFIX), {}, structure=checkpoint_structure(without_clip_l))


def test_a_unet_only_file_needs_the_size_width_in_its_metadata(small_sdxl):
    unet = strip_prefix(load_state_dict(small_sdxl[0])[0], UNET_PREFIX)
    with pytest.raises(DetectionError, match=META_SIZE_EMBED):
        detect_unet(unet, {})  # 112 is no published width and nothing else says how it splits
    detection = detect_unet(unet, {META_SIZE_EMBED: "8"})
    assert (detection.family, detection.config.size_embed_dim) == ("sdxl", SIZE_EMBED)


def _meta_unet(config):
    with torch.device("meta"):
        return UNetModel(config).state_dict()


def test_a_small_refiner_is_told_by_its_single_bigg_encoder():
    text = tiny_text_state_dict("sdxl_refiner")  # bigG 32 wide, projection 32
    config = dataclasses.replace(tiny_unet_config("sdxl_refiner", TextWidths(32, pooled=32)),
                                 adm_in_channels=32 + 5 * 12)
    detection = detect_unet(_meta_unet(config), {"weft.num_head_channels": "8"},
                            structure=checkpoint_structure(text))
    assert (detection.family, detection.config.size_embed_dim) == ("sdxl_refiner", 12)
    bad = dataclasses.replace(config, adm_in_channels=32 + 5 * 12 + 3)
    with pytest.raises(DetectionError, match=r"not 5 equal size embeddings \(.*aesthetic score\)"):
        detect_unet(_meta_unet(bad), {"weft.num_head_channels": "8"}, structure=checkpoint_structure(text))


def test_published_widths_still_read_256_from_the_text_encoders():
    text = tiny_text_state_dict("sdxl")  # CLIP-L 32 + bigG 32 (projection 32)
    config = tiny_unet_config("sdxl", TextWidths(64, pooled=32))
    detection = detect_unet(_meta_unet(config), {"weft.num_head_channels": "8"}, structure=checkpoint_structure(text))
    assert (detection.family, detection.config.size_embed_dim) == ("sdxl", 256)


def test_a_saved_unet_only_file_records_its_size_width_and_reloads(loaded, tmp_path):
    from ldm.loading.saving import checkpoint_metadata, unet_state_dict
    from ldm.model import load_unet

    model = loaded[0]
    metadata = checkpoint_metadata(model, "small sdxl")
    assert metadata[META_SIZE_EMBED] == str(SIZE_EMBED)
    path = tmp_path / "unet-only.safetensors"
    save_state_dict(path, unet_state_dict(model), metadata)  # keys under model.diffusion_model.
    again = load_unet(path)
    assert (again.family, again.config.size_embed_dim) == ("sdxl", SIZE_EMBED)


def test_the_diffusers_folder_of_the_same_model_loads(small_sdxl, loaded, tmp_path):
    from ldm.loading.diffusers_folder import load_diffusers

    _, pipe = small_sdxl
    pipe.save_pretrained(tmp_path / "folder", safe_serialization=True)
    model, clip, vae = load_diffusers(tmp_path / "folder", compute=fp32())
    assert (model.family, model.config.size_embed_dim) == ("sdxl", SIZE_EMBED)
    assert model.config == loaded[0].config
