"""``comfy.conds``, ``patcher_extension``, ``sampler_helpers``, ``supported_models(_base)``,
``model_detection``, ``diffusers_convert``, ``comfy_types`` and ``k_diffusion.utils`` over Weft."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from ldm.loading.detect import UNET_PREFIX
from ldm.model import load_checkpoint
from ldm.sampling.guidance import CondEntry, GuidedModel, calc_cond_batch, prepare_denoise_mask
from ldm.sampling.model_conds import CrossAttnInput, RegularInput
from ldm.tiny import write_tiny_checkpoint


@pytest.fixture
def sd1_model(pack_studio, tiny_sd1):
    return load_checkpoint(tiny_sd1, with_clip=False)[0]


def test_comfy_conds_are_weft_model_inputs_and_batch_as_they_do(pack_studio):
    import comfy.conds

    short, long = comfy.conds.CONDCrossAttn(torch.ones(1, 2, 8)), CrossAttnInput(torch.zeros(1, 4, 8))
    assert isinstance(short, CrossAttnInput) and short.can_concat(long)
    assert short.concat([long]).shape == (2, 4, 8) and short.size() == [1, 2, 8]
    seen = []

    def apply_model(x, sigma, c):
        seen.append({key: value.shape for key, value in c.items()})
        return x

    model = GuidedModel(apply_model=apply_model, sampling=None)  # calc_cond_batch reads no schedule
    entries = [CondEntry({"c_crossattn": short, "y": comfy.conds.CONDRegular(torch.ones(1, 3))}),
               CondEntry({"c_crossattn": long, "y": RegularInput(torch.zeros(1, 3))})]
    calc_cond_batch(model, [entries[:1], entries[1:]], torch.zeros(1, 4, 8, 8), torch.ones(1))
    assert seen == [{"c_crossattn": (2, 4, 8), "y": (2, 3)}]  # one call, both sides batched
    noise_shaped = comfy.conds.CONDNoiseShape(torch.arange(64.0).reshape(1, 1, 8, 8))
    cropped = noise_shaped.process_cond(2, area=(4, 4, 2, 2))
    assert isinstance(cropped, comfy.conds.CONDNoiseShape) and cropped.cond.shape == (2, 1, 4, 4)
    assert cropped.cond[0, 0, 0, 0] == 18.0
    constant = comfy.conds.CONDConstant("mode")
    assert constant.can_concat(comfy.conds.CONDConstant("mode")) and constant.concat([constant]) == "mode"
    listed = comfy.conds.CONDList([torch.ones(1, 2), torch.ones(1, 3, 4)])
    assert [t.shape for t in listed.process_cond(2).concat([listed.process_cond(2)])] == [(4, 2), (4, 3, 4)]


def test_diffusion_model_wrappers_reach_weft_unet(sd1_model):
    import comfy.patcher_extension as pe

    calls = []

    def wrapper(executor, x, timesteps, context, y, control, transformer_options):
        calls.append(isinstance(executor, pe.WrapperExecutor))
        return executor(x, timesteps, context, y, control, transformer_options) * 0

    patched = sd1_model.clone()
    patched.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "test", wrapper)
    assert sd1_model.get_all_wrappers(pe.WrappersMP.DIFFUSION_MODEL) == []
    assert patched.get_wrappers(pe.WrappersMP.DIFFUSION_MODEL, "test") == [wrapper]
    x = torch.randn(1, 4, 8, 8)
    context = torch.zeros(1, 77, sd1_model.config.context_dim)
    sigma = torch.tensor([1.0])

    def denoised(model):
        options = model.model_options["transformer_options"]
        return model.model.apply_model(x, sigma, c_crossattn=context, transformer_options=options)

    plain = denoised(sd1_model)
    # eps forced to 0: x0 equals x (the eps parameterisation) only when the wrapper ran.
    torch.testing.assert_close(denoised(patched), x)
    assert calls == [True] and not torch.allclose(plain, x)
    patched.remove_wrappers_with_key(pe.WrappersMP.DIFFUSION_MODEL, "test")
    torch.testing.assert_close(denoised(patched), plain)
    with pytest.raises(NotImplementedError, match="outer_sample"):
        patched.add_wrapper_with_key(pe.WrappersMP.OUTER_SAMPLE, "k", wrapper)
    with pytest.raises(NotImplementedError, match="on_pre_run"):
        patched.add_callback(pe.CallbacksMP.ON_PRE_RUN, print)
    assert patched.get_all_callbacks(pe.CallbacksMP.ON_PRE_RUN) == []


def test_predict_noise_wrappers_wrap_each_guided_prediction(sd1_model):
    """LazyCache-style packs register ``predict_noise`` wrappers by key, on the MODEL or through its
    ``model_options``; Weft's guider runs them (grouped by key, as ComfyUI does), around the
    prediction, and removing a key removes its wrappers."""
    import comfy.patcher_extension as pe
    import comfy.sample

    calls = []

    def recorder(name, scale=1.0):
        def wrapper(executor, x, sigma, model_options, seed):
            calls.append(name)
            return executor(x, sigma, model_options, seed) * scale
        return wrapper

    first, zero, second = recorder("a1"), recorder("b", scale=0.0), recorder("a2")
    patched = sd1_model.clone()
    patched.add_wrapper_with_key(pe.WrappersMP.PREDICT_NOISE, "a", first)
    pe.add_wrapper_with_key(pe.WrappersMP.PREDICT_NOISE, "b", zero, patched.model_options, is_model_options=True)
    patched.add_wrapper_with_key(pe.WrappersMP.PREDICT_NOISE, "a", second)
    assert patched.get_all_wrappers(pe.WrappersMP.PREDICT_NOISE) == [first, second, zero]
    assert pe.get_wrappers_with_key(pe.WrappersMP.PREDICT_NOISE, "b", patched.model_options,
                                    is_model_options=True) == [zero]
    assert sd1_model.get_all_wrappers(pe.WrappersMP.PREDICT_NOISE) == [] and not sd1_model.hooks.predict_noise_wrappers
    context = torch.randn(1, 77, sd1_model.config.context_dim, generator=torch.Generator().manual_seed(3))
    positive, negative = [[context, {}]], [[torch.zeros_like(context), {}]]
    latent = torch.zeros(1, 4, 8, 8)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4))

    def sample(model):
        return comfy.sample.sample(model, noise, 1, 5.0, "euler", "normal", positive, negative, latent)

    plain = sample(sd1_model)
    # the "b" wrapper zeroes the guided x0; one euler step to sigma 0 then lands on it
    torch.testing.assert_close(sample(patched), torch.zeros_like(plain), atol=1e-4, rtol=0)
    assert calls == ["a1", "a2", "b"] and plain.abs().max() > 0
    patched.remove_wrappers_with_key(pe.WrappersMP.PREDICT_NOISE, "b")
    calls.clear()
    torch.testing.assert_close(sample(patched), plain)
    assert calls == ["a1", "a2"]
    with pytest.raises(NotImplementedError, match="predict_noise"):
        pe.add_wrapper(pe.WrappersMP.PREDICT_NOISE, len, {}, is_model_options=True)


def test_patcher_extension_dict_helpers(pack_studio):
    import comfy.patcher_extension as pe

    options = {}
    pe.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "a", len, options, is_model_options=True)
    pe.add_wrapper(pe.WrappersMP.DIFFUSION_MODEL, abs, options["transformer_options"])
    assert pe.get_all_wrappers(pe.WrappersMP.DIFFUSION_MODEL, options, is_model_options=True) == [len, abs]
    assert pe.get_wrappers_with_key(pe.WrappersMP.DIFFUSION_MODEL, "a", options["transformer_options"]) == [len]
    with pytest.raises(NotImplementedError, match="apply_model"):
        pe.add_wrapper(pe.WrappersMP.APPLY_MODEL, len, options)
    with pytest.raises(NotImplementedError):
        pe.add_callback_with_key(pe.CallbacksMP.ON_CLONE, "k", len, options)
    copied = pe.copy_nested_dicts(options)
    copied["transformer_options"]["wrappers"]["diffusion_model"]["a"].append(min)
    assert options["transformer_options"]["wrappers"]["diffusion_model"]["a"] == [len]
    merged = pe.merge_nested_dicts({"x": [1], "d": {"y": 1}}, {"x": [2], "d": {"z": 2}, "v": 3})
    assert merged == {"x": [1, 2], "d": {"y": 1, "z": 2}, "v": 3}
    order = []
    chain = pe.WrapperExecutor.new_executor(lambda v: order.append("original") or v,
                                            [lambda ex, v: order.append("outer") or ex(v + 1),
                                             lambda ex, v: order.append("inner") or ex(v * 2)])
    assert chain.execute(1) == 4 and order == ["outer", "inner", "original"]
    injection = pe.PatcherInjection(inject=len, eject=abs)
    assert (injection.inject, injection.eject) == (len, abs)


def test_sampler_helpers(sd1_model):
    import comfy.sampler_helpers as sh

    mask = torch.rand(1, 16, 16)
    shape = torch.Size([2, 4, 8, 8])
    torch.testing.assert_close(sh.prepare_mask(mask, shape, "cpu"), prepare_denoise_mask(mask, shape))
    cond = [[torch.ones(1, 77, 8), {"strength": 0.5}], [None, {"pooled_output": torch.ones(1, 8)}]]
    converted = sh.convert_cond(cond)
    assert converted[0]["cross_attn"] is cond[0][0] and converted[0]["strength"] == 0.5
    assert "cross_attn" not in converted[1] and converted[0]["model_conds"] == {}
    assert converted[0]["uuid"] != converted[1]["uuid"] and "uuid" not in cond[0][1]

    class Control:
        cleaned = 0

        def get_models(self):
            return ["control model"]

        def inference_memory_requirements(self, dtype):
            return 7

        def cleanup(self):
            Control.cleaned += 1

    control = Control()
    conds = {"positive": [{"control": control}, {"control": control, "additional_models": ["extra"]}],
             "negative": [{"gligen": ("position", "gligen model")}]}
    models, memory = sh.get_additional_models(conds, torch.float32)
    assert models == ["control model", "gligen model", "extra"] and memory == 7
    sh.cleanup_models(conds, [])
    assert Control.cleaned == 1
    assert sh.get_additional_models({"positive": sh.convert_cond(cond)}, torch.float32) == ([], 0)
    real, same_conds, loaded = sh.prepare_sampling(sd1_model, (1, 4, 8, 8), {"positive": converted})
    assert real.diffusion_model is sd1_model.unet and same_conds["positive"] is converted and loaded == []
    double, single = sh.estimate_memory(sd1_model, (1, 4, 8, 8), {})
    assert double == sd1_model.memory_required([2, 4, 8, 8]) and single == sd1_model.memory_required([1, 4, 8, 8])


def test_diffusers_load_reads_a_folder_with_weft_loader(pack_studio, tmp_path):
    import comfy.diffusers_convert
    import comfy.diffusers_load
    from ldm.loading.diffusers_folder import load_diffusers
    from tests.ldm.loading.test_diffusers_folder import sd1_folder

    root = tmp_path / "tiny-sd1"
    sd1_folder(root)
    model, clip, vae = comfy.diffusers_load.load_diffusers(str(root))
    ours, _, _ = load_diffusers(root, compute=pack_studio.services.engine.compute)
    assert (model.family, list(clip.encoders), vae.latent_channels) == ("sd1", ["clip_l"], 4)
    assert all(torch.equal(v, ours.unet.state_dict()[k]) for k, v in model.unet.state_dict().items())
    only_model = comfy.diffusers_load.load_diffusers(str(root), output_vae=False, output_clip=False)
    assert only_model[1:] == (None, None)
    assert not hasattr(comfy.diffusers_convert, "load_diffusers")  # ComfyUI keeps it in diffusers_load


def test_supported_models_match_weft_families(sd1_model, tmp_path):
    import comfy.supported_models as sm
    import comfy.supported_models_base as smb

    config = sd1_model.model.model_config
    assert isinstance(config, sm.SD15) and isinstance(config, smb.BASE)
    assert not isinstance(config, (sm.SDXL, sm.SD20, sm.SDXLRefiner, sm.SD_X4Upscaler, sm.Flux))
    sdxl = load_checkpoint(write_tiny_checkpoint(tmp_path / "xl.safetensors", "sdxl"), with_clip=False)[0]
    assert isinstance(sdxl.model.model_config, sm.SDXL) and not isinstance(sdxl.model.model_config, sm.SD15)

    class Kolors(sm.SDXL):  # Easy-Use subclasses ComfyUI's configs
        unet_config = {"model_channels": 320, "context_dim": 4096}

    kolors = Kolors({"model_channels": 320, "context_dim": 4096, "in_channels": 4})
    assert isinstance(kolors, sm.SDXL) and not isinstance(sdxl.model.model_config, Kolors)
    assert Kolors.matches({"model_channels": 320, "context_dim": 4096, "x": 1}) and not kolors.inpaint_model()
    assert kolors.unet_config["num_head_channels"] == 64  # unet_extra_config applied
    with pytest.raises(NotImplementedError, match="loaders"):
        kolors.get_model({})
    assert sm.SD15 in sm.models and sm.supported_models_base.BASE is smb.BASE


def test_model_detection_reads_weft_detection(pack_studio, tiny_sd1):
    import comfy.model_detection as md
    import comfy.supported_models as sm
    from ldm.loading.checkpoint import load_state_dict

    state_dict = load_state_dict(tiny_sd1)[0]
    assert md.unet_prefix_from_state_dict(state_dict) == UNET_PREFIX
    config = md.detect_unet_config(state_dict, UNET_PREFIX)
    assert config["in_channels"] == 4 and config["use_linear_in_transformer"] is False
    model_config = md.model_config_from_unet(state_dict, UNET_PREFIX)
    assert type(model_config) is sm.SD15 and model_config.unet_config["num_heads"] == 8
    # conv_in, the ResBlocks, one downsampler between levels
    assert md.count_blocks(state_dict.keys(), UNET_PREFIX + "input_blocks.{}.") == \
        1 + sum(config["num_res_blocks"]) + len(config["channel_mult"]) - 1
    converted = md.convert_config({"num_res_blocks": 2, "channel_mult": [1, 2, 4], "transformer_depth": 1,
                                   "attention_resolutions": [1, 2]})
    assert converted["transformer_depth"] == [1, 1, 1, 1, 0, 0]
    assert converted["transformer_depth_output"] == [1, 1, 1, 1, 1, 1, 0, 0, 0]
    assert converted["num_res_blocks"] == [2, 2, 2] and converted["transformer_depth_middle"] == 1
    with pytest.raises(NotImplementedError, match="UNet detection"):
        md.model_config_from_unet({"input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3)}, "")
    with pytest.raises(NotImplementedError, match="diffusers"):
        md.unet_config_from_diffusers_unet({})


def test_diffusers_convert_vae(pack_studio):
    import comfy.diffusers_convert as dc

    converted = dc.convert_vae_state_dict({
        "encoder.mid_block.attentions.0.to_q.weight": torch.ones(8, 8),
        "decoder.up_blocks.0.resnets.1.conv_shortcut.weight": torch.ones(8, 8, 1, 1),
        "encoder.conv_in.weight": torch.ones(8, 3, 3, 3)})
    assert converted["encoder.mid.attn_1.q.weight"].shape == (8, 8, 1, 1)
    assert "decoder.up.0.block.1.nin_shortcut.weight" in converted and "encoder.conv_in.weight" in converted


def test_comfy_types_and_k_diffusion_utils(pack_studio, tmp_path):
    from comfy.comfy_types import IO as reexported
    from comfy.comfy_types.node_typing import IO, CheckLazyMixin, ComfyNodeABC
    from comfy.k_diffusion.utils import FolderOfImages, append_dims

    assert reexported is IO and IO.ANY == "*" and IO.IMAGE == "IMAGE" and str(IO.MASK) == "MASK"
    assert not (IO.ANY != "LATENT") and not (IO.NUMBER != "INT") and IO.IMAGE != "MASK"
    assert CheckLazyMixin().check_lazy_status(a=None, b=1) == ["a"]
    with pytest.raises(TypeError):
        ComfyNodeABC()
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (2, 3), "red").save(tmp_path / "sub" / "b.PNG")
    Image.new("L", (2, 2)).save(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("x")
    images = FolderOfImages(tmp_path)
    assert len(images) == 2 and ".png" in FolderOfImages.IMG_EXTENSIONS
    assert images[0][0].mode == "RGB" and images[1][0].size == (2, 3)
    assert append_dims(torch.ones(3), 4).shape == (3, 1, 1, 1)
