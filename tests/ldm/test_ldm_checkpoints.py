"""The paper's LDM checkpoints load whole (``ldm.model.load_checkpoint``) from tiny Lightning
``.ckpt`` files: through the restricted pickle reader, with the schedule, latent scale and
conditioning stage each released model has (``ldm.loading.ldm_checkpoint``)."""

from __future__ import annotations

import pickle

import pytest
import torch

from ldm.cond_stage.layout_stage import LayoutStage
from ldm.cond_stage.stages import ClassStage, SemanticStage, UnconditionalStage
from ldm.devices import detect_compute
from ldm.loading.checkpoint import load_state_dict
from ldm.loading.detect import DetectionError
from ldm.loading.tiny_ldm import TINY_CHURCHES_SCALE_FACTOR, TINY_LDM_LAYOUTS, write_tiny_ldm_checkpoint
from ldm.model import assemble_checkpoint, load_checkpoint, load_unet
from ldm.previews import make_previewer
from ldm.sampling.from_handle import model_sampling_of
from ldm.sampling.model_sampling import DiscreteSchedule, ScheduleConfig
from ldm.text.ldm_bert_handle import LDMBertHandle

FP32_CPU = detect_compute("cpu", force_dtype=torch.float32)

#: layout -> (family, latent channels, scale factor, (linear_start, linear_end), CLIP socket type),
#: from the released configs (models/ldm/*/config.yaml, configs/latent-diffusion/*.yaml).
EXPECTED = {
    "uncond": ("ldm_uncond", 3, 1.0, (0.0015, 0.0195), UnconditionalStage),
    "churches": ("ldm_uncond", 4, TINY_CHURCHES_SCALE_FACTOR, (0.0015, 0.0155), UnconditionalStage),
    "cin": ("ldm_cin", 3, 1.0, (0.0015, 0.0195), ClassStage),
    "txt2img": ("sd1", 4, 0.18215, (0.00085, 0.012), LDMBertHandle),
    "sr": ("ldm_concat", 3, 1.0, (0.0015, 0.0155), UnconditionalStage),
    "inpaint": ("ldm_concat", 3, 1.0, (0.0015, 0.0205), UnconditionalStage),
    "semantic": ("ldm_concat", 3, 1.0, (0.0015, 0.0205), SemanticStage),
    "layout": ("ldm_layout", 3, 1.0, (0.0015, 0.0205), LayoutStage),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_ldm")
    return {layout: write_tiny_ldm_checkpoint(folder / f"{layout}.ckpt", layout) for layout in TINY_LDM_LAYOUTS}


def test_every_layout_has_an_expectation():
    assert set(EXPECTED) == set(TINY_LDM_LAYOUTS)


@pytest.mark.parametrize("layout", sorted(EXPECTED))
def test_files_are_lightning_pickles_weights_only_refuses(checkpoints, layout):
    path = checkpoints[layout]
    assert path.stat().st_size < (5e6 if layout == "layout" else 7e6)
    with pytest.raises(pickle.UnpicklingError, match="ModelCheckpoint"):
        torch.load(path, weights_only=True)


@pytest.mark.parametrize("layout", sorted(EXPECTED))
def test_checkpoint_loads_with_its_schedule_scale_and_stage(checkpoints, layout, caplog):
    family, channels, scale, (start, end), stage = EXPECTED[layout]
    caplog.set_level("INFO")
    model, clip, vae = load_checkpoint(checkpoints[layout], compute=FP32_CPU)
    assert "stand-ins for" in caplog.text  # the restricted reader read it
    assert model.family == family and model.prediction == "eps"
    assert model.latent_format.channels == channels == vae.config.embed_dim
    assert model.latent_format.scale_factor == pytest.approx(scale) and vae.scale_factor == pytest.approx(scale)
    assert isinstance(clip, stage)
    # the schedule read from the buffers is the published linear one (betas even in sqrt space)
    schedule = model_sampling_of(model).schedule
    published = DiscreteSchedule(ScheduleConfig("scaled_linear", start, end))
    # the buffer is float32: ᾱ equals the published table rounded; sigma = sqrt((1-ᾱ)/ᾱ) near ᾱ = 1
    # inherits that rounding (1.3e-5 relative at t = 0)
    torch.testing.assert_close(schedule.alphas_cumprod, published.alphas_cumprod, rtol=1e-6, atol=0)
    torch.testing.assert_close(schedule.sigmas, published.sigmas, rtol=5e-5, atol=0)
    assert model.schedule.alphas_cumprod_table is not None
    # clones keep it; previews of any channel count work
    assert model_sampling_of(model.clone()).schedule.sigmas.equal(schedule.sigmas)
    preview = make_previewer("latent2rgb", model.latent_format)(torch.randn(1, channels, 8, 8))
    assert preview.size == (8, 8)


def test_schedule_is_read_from_the_buffer_not_assumed(checkpoints):
    state_dict, metadata = load_state_dict(checkpoints["uncond"])
    changed = dict(state_dict, alphas_cumprod=state_dict["alphas_cumprod"] ** 2)
    model, _, _ = assemble_checkpoint(changed, metadata, "changed.ckpt", compute=FP32_CPU)
    expected = ((1 - changed["alphas_cumprod"].double()) / changed["alphas_cumprod"].double()).sqrt().float()
    torch.testing.assert_close(model_sampling_of(model).schedule.sigmas, expected)


def test_without_buffers_the_published_schedule_of_the_layout_is_used(checkpoints):
    state_dict, metadata = load_state_dict(checkpoints["inpaint"])
    stripped = {k: v for k, v in state_dict.items() if k != "alphas_cumprod"}
    model, _, _ = assemble_checkpoint(stripped, metadata, "stripped.ckpt", compute=FP32_CPU)
    assert (model.schedule.linear_start, model.schedule.linear_end) == (0.0015, 0.0205)
    assert model.schedule.alphas_cumprod_table is None


def test_scale_factor_buffer_wins_over_the_config_default(checkpoints):
    state_dict, metadata = load_state_dict(checkpoints["uncond"])
    model, _, vae = assemble_checkpoint(dict(state_dict, scale_factor=torch.tensor(0.5)), metadata, "x.ckpt",
                                        compute=FP32_CPU)
    assert model.latent_format.scale_factor == vae.scale_factor == 0.5


def test_unet_alone_is_refused_with_the_reason(checkpoints, tmp_path):
    with pytest.raises(DetectionError, match="whole checkpoint"):
        load_unet(checkpoints["uncond"], compute=FP32_CPU)


def test_without_clip_no_stage_is_built(checkpoints):
    _, clip, _ = load_checkpoint(checkpoints["cin"], compute=FP32_CPU, with_clip=False)
    assert clip is None


def test_class_stage_tokens():
    from ldm.cond_stage.stages import build_class_stage
    stage = build_class_stage(torch.randn(1001, 8))
    assert stage.tokenize("") == {"class": [[(1000, 1.0)]]}
    assert stage.tokenize(" 12 ") == {"class": [[(12, 1.0)]]}
    with pytest.raises(ValueError, match="ClassConditioning"):
        stage.tokenize("a goldfish")
    with pytest.raises(ValueError, match="unconditional"):
        build_class_stage(torch.randn(1000, 8)).encode_class(-1)
    cond = stage.encode_class(3)[0][0]
    torch.testing.assert_close(cond, stage.embedder.embedding.weight[3].reshape(1, 1, 8))


def test_layout_encoder_is_told_from_the_text_encoder_by_its_vocabulary(checkpoints):
    from ldm.cond_stage.layout_encoder import layout_encoder_width
    layout_sd, _ = load_state_dict(checkpoints["layout"])
    text_sd, _ = load_state_dict(checkpoints["txt2img"])
    assert layout_sd["cond_stage_model.transformer.token_emb.weight"].shape[0] == 8192
    assert layout_sd["cond_stage_model.transformer.pos_emb.emb.weight"].shape[0] == 92
    assert layout_encoder_width(layout_sd) == 32
    assert layout_encoder_width(text_sd) is None
    assert layout_encoder_width(load_state_dict(checkpoints["cin"])[0]) is None


def test_layout_stage_reads_json_layouts_and_refuses_prose(checkpoints):
    from ldm.text.layout_tokens import OPENIMAGES_LAYOUT, class_ids, layout_tokens
    _, clip, _ = load_checkpoint(checkpoints["layout"], compute=FP32_CPU)
    cat = class_ids("openimages")["Cat"]
    layout = ('[{"label": "cat", "x": 0.1, "y": 0.2, "w": 0.5, "h": 0.6}, '
              '{"label": "12", "x": 0, "y": 0, "w": 1, "h": 1}]')
    expected = layout_tokens([(cat, 0.1, 0.2, 0.5, 0.6), (12, 0.0, 0.0, 1.0, 1.0)], OPENIMAGES_LAYOUT)
    assert [token for token, _ in clip.tokenize(layout)["layout"][0]] == expected
    empty = [token for token, _ in clip.tokenize("")["layout"][0]]
    assert empty == [token for token, _ in clip.tokenize("[]")["layout"][0]] == layout_tokens([], OPENIMAGES_LAYOUT)
    with pytest.raises(ValueError, match="LayoutConditioning"):
        clip.tokenize("a cat on a sofa")
    with pytest.raises(ValueError, match=r"'Catt'.*OpenImages class names"):
        clip.tokenize('[{"label": "Catt", "x": 0, "y": 0, "w": 1, "h": 1}]')
    assert clip.clone().encode(layout).shape == (1, 92, 32)
