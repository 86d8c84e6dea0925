"""ComfyUI features Weft does not have: their names exist so packs import, and using them fails clearly.

A test pack written like Advanced-ControlNet / efficiency-nodes (tests/facade/packs/absent_pack.py)
imports and registers; its ControlNet node fails as an execution error naming the feature while its
other node runs. Placeholder classes are real classes that match no Weft object. The helpers Weft
does have (``clip_vision.Output`` / ``clip_preprocess``, ``comfy_extras.nodes_mask.composite``, the
prompt-weight parser, the noise objects) behave as ComfyUI's, checked against values computed here.
"""

from __future__ import annotations

import math

import pytest
import torch

# OpenAI CLIP's normalisation constants, as published with the model.
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def clip_normalised(rgb: tuple[float, float, float]) -> torch.Tensor:
    """``[3]``: one colour quantised to 8 bits and normalised with CLIP's mean and std."""
    return torch.tensor([(round(c * 255) / 255 - m) / s for c, m, s in zip(rgb, MEAN, STD)])


# -- the pack -----------------------------------------------------------------------------------------

def test_a_pack_using_absent_features_imports_and_its_other_node_runs(pack_studio):
    [report] = pack_studio.load("absent_pack.py")
    assert report.loaded, report.error
    assert {"ApplyAdvancedControlNet", "ClipVisionPrep"} <= set(pack_studio.registry.names())

    image = {"class_type": "EmptyImage", "inputs": {"width": 96, "height": 64, "batch_size": 2, "color": 0x3366CC}}
    ran = pack_studio.run({"1": image, "2": {"class_type": "ClipVisionPrep", "inputs": {"image": ["1", 0], "size": 32}}})
    assert ran.outputs["2"]["shape"] == [[2, 3, 32, 32]]

    failed = pack_studio.execute({"1": image, "2": {"class_type": "ApplyAdvancedControlNet",
                                                    "inputs": {"image": ["1", 0], "strength": 1.0}}})
    assert failed.status == "error"
    event, error = failed.messages[-1]
    assert event == "execution_error" and error["node_type"] == "ApplyAdvancedControlNet"
    assert error["exception_type"] == "_weft_absent.NotInWeftError"
    assert error["exception_message"] == (
        "ComfyUI's ControlNet classes (Weft's CONTROL_NET is its own object: comfy.controlnet.load_controlnet "
        "loads one, the ControlNetApply nodes apply it) are not in Weft (ComfyUI's comfy.controlnet.ControlNet); "
        "the node that needs them cannot run")


# -- class checks -------------------------------------------------------------------------------------

def test_placeholder_classes_are_subclassable_and_match_no_weft_object(pack_studio, tiny_sd1):
    import comfy.clip_vision
    import comfy.controlnet
    import comfy.gligen
    import comfy.hooks
    import comfy.model_base
    import comfy.sd
    import comfy.sd1_clip
    import comfy.sdxl_clip
    from comfy.cldm.cldm import ControlNet as ControlNetCLDM

    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(str(tiny_sd1))
    weft_objects = (model, model.model, clip, clip.tokenizer, vae)
    absent_classes = (comfy.controlnet.ControlBase, comfy.controlnet.ControlNet, comfy.controlnet.T2IAdapter,
                      ControlNetCLDM, comfy.clip_vision.ClipVisionModel, comfy.sd1_clip.SD1ClipModel,
                      comfy.sd1_clip.SDTokenizer, comfy.sdxl_clip.SDXLClipModel, comfy.sdxl_clip.SDXLTokenizer,
                      comfy.hooks.ObjectPatchHook, comfy.gligen.Gligen, comfy.model_base.SVD_img2vid,
                      comfy.model_base.Flux, comfy.model_base.SD3)
    assert not any(isinstance(obj, cls) for obj in weft_objects for cls in absent_classes)
    assert isinstance(model.model, comfy.model_base.BaseModel)  # what Weft has still matches

    assert issubclass(comfy.controlnet.ControlLora, comfy.controlnet.ControlNet)
    assert issubclass(comfy.controlnet.ControlNet, comfy.controlnet.ControlBase)
    assert issubclass(comfy.sdxl_clip.SDXLRefinerClipModel, comfy.sd1_clip.SD1ClipModel)
    assert issubclass(ControlNetCLDM, torch.nn.Module)

    class PackControlNet(comfy.controlnet.ControlNet):
        pass

    with pytest.raises(NotImplementedError, match=r"ComfyUI's ControlNet classes .* are not in Weft "
                                                  r"\(ComfyUI's comfy\.controlnet\.ControlNet\)"):
        PackControlNet()
    assert isinstance(PackControlNet.__new__(PackControlNet), comfy.controlnet.ControlBase)
    with pytest.raises(NotImplementedError, match=r"ComfyUI's ClipVisionModel class .* are not in Weft"):
        comfy.clip_vision.ClipVisionModel("clip_vision_config_vitl.json")
    with pytest.raises(NotImplementedError, match=r"comfy\.controlnet\.controlnet_config\)"):
        comfy.controlnet.controlnet_config({})
    with pytest.raises(NotImplementedError, match=r"not in Weft \(ComfyUI's comfy\.hooks\.InjectionsHook\)"):
        comfy.hooks.InjectionsHook()
    with pytest.raises(NotImplementedError, match=r"comfy\.hooks\.create_transformer_options_from_hooks\)"):
        comfy.hooks.create_transformer_options_from_hooks(None, None)
    with pytest.raises(NotImplementedError, match="text-encoder classes"):
        comfy.sdxl_clip.SDXLClipModel()

    assert comfy.hooks.EnumHookMode.MaxSpeed.value == "maxspeed"
    assert comfy.hooks.WrapperHook is comfy.hooks.TransformerOptionsHook
    assert comfy.controlnet.StrengthType.LINEAR_UP.value == 2


def test_broadcast_image_to_fits_a_hint_batch_to_the_conds(pack_studio):
    from comfy.controlnet import broadcast_image_to

    hints = torch.arange(3.0).reshape(3, 1)
    single = torch.ones(1, 1)
    assert broadcast_image_to(single, 8, 2) is single
    # 2 conds × 4 per cond: the 3 hints cycled to 4, then repeated for each cond.
    assert broadcast_image_to(hints, 8, 2).flatten().tolist() == [0, 1, 2, 0, 0, 1, 2, 0]
    # 1 cond × 2: the first two hints.
    assert broadcast_image_to(hints, 2, 1).flatten().tolist() == [0, 1]


def test_model_base_helpers(pack_studio):
    import comfy.model_base as model_base

    pooled = torch.ones(1, 1280)
    assert model_base.sdxl_pooled({"pooled_output": pooled}, None) is pooled
    with pytest.raises(NotImplementedError, match="SDXL unCLIP"):
        model_base.sdxl_pooled({"unclip_conditioning": [], "pooled_output": pooled}, None)
    steps = torch.tensor([0.0, 10.0])
    embedding = model_base.Timestep(4)(steps)
    # cos then sin of t·10000^(-i/2), i = 0, 1.
    expected = torch.tensor([[1.0, 1.0, 0.0, 0.0],
                             [math.cos(10.0), math.cos(0.1), math.sin(10.0), math.sin(0.1)]])
    torch.testing.assert_close(embedding, expected)
    assert model_base.convert_tensor(torch.ones(2, dtype=torch.int64), torch.float16, "cpu").dtype == torch.int64
    assert model_base.convert_tensor(torch.ones(2), torch.float16, "cpu").dtype == torch.float16
    with pytest.raises(NotImplementedError):
        model_base.model_sampling(None, model_base.ModelType.EPS)


# -- nodes and comfy_extras placeholders ---------------------------------------------------------------

def test_nodes_answers_comfyui_core_nodes_weft_lacks_with_placeholders(pack_studio):
    import nodes

    # GLIGEN's core nodes are Weft's: answered from the registry, not by placeholders
    assert nodes.GLIGENTextBoxApply is pack_studio.registry.get("GLIGENTextBoxApply").node_class
    assert "GLIGENTextBoxApply" in nodes.NODE_CLASS_MAPPINGS
    assert len(nodes.NODE_CLASS_MAPPINGS) == len(pack_studio.registry.names())
    # ControlNet's core nodes are Weft's
    assert nodes.ControlNetApplyAdvanced is pack_studio.registry.get("ControlNetApplyAdvanced").node_class

    class LatentSender(nodes.SaveLatent):  # Impact-Pack's way: Weft's SaveLatent, subclassed
        def __init__(self):
            super().__init__()
            self.type = "temp"

    assert nodes.SaveLatent is pack_studio.registry.get("SaveLatent").node_class
    assert nodes.DiffusersLoader is pack_studio.registry.get("DiffusersLoader").node_class
    assert LatentSender().FUNCTION == "save" and LatentSender().type == "temp"
    assert nodes.KSampler is pack_studio.registry.get("KSampler").node_class
    with pytest.raises(AttributeError, match="not one of ComfyUI's names"):
        nodes.NoSuchNode


def test_comfy_extras_answers_weft_nodes_helpers_and_placeholders(pack_studio):
    from comfy_extras import nodes_audio, nodes_custom_sampler, nodes_post_processing, nodes_sag
    from comfy_extras.chainner_models import model_loading
    from comfy_extras.nodes_upscale_model import ImageUpscaleWithModel

    # ComfyUI's class name Blend is the node ImageBlend, which Weft has.
    assert nodes_post_processing.Blend is pack_studio.registry.get("ImageBlend").node_class
    empty_audio = nodes_audio.EmptyLatentAudio  # a ComfyUI node Weft does not have
    assert empty_audio is nodes_audio.EmptyLatentAudio and empty_audio.FUNCTION == "generate"
    with pytest.raises(NotImplementedError, match=r"EmptyLatentAudio node in comfy_extras\.nodes_audio"):
        empty_audio().generate(seconds=1.0, batch_size=1)
    # Upscale models are Weft's: the nodes are its core nodes (with ComfyUI's V3 ``execute``, see
    # test_comfy_extras_upscale.py), the old loader is spandrel's.
    assert issubclass(ImageUpscaleWithModel, pack_studio.registry.get("ImageUpscaleWithModel").node_class)
    from spandrel.architectures.ESRGAN import ESRGAN
    upscaler = model_loading.load_state_dict(ESRGAN(num_filters=4, num_blocks=1, scale=2).state_dict())
    assert upscaler.scale == 2 and upscaler(torch.rand(1, 3, 5, 6)).shape == (1, 3, 10, 12)
    # SAG's helpers are Weft's: the Gaussian blur keeps a constant image, and the blur map blurs
    # x0 only where the attention concentrates (everywhere here: one token takes all attention).
    flat = torch.full((1, 4, 8, 8), 0.5)
    torch.testing.assert_close(nodes_sag.gaussian_blur_2d(flat, kernel_size=9, sigma=3.0), flat)
    x0 = torch.zeros(1, 1, 16, 16)
    x0[0, 0, 1, 1] = 1.0
    attention = torch.zeros(2, 256, 256)
    attention[:, :, 0] = 1.0  # two heads, every query on token 0 (cell 0, 0): it sums 256 > threshold 1
    blurred = nodes_sag.create_blur_map(x0, attention)
    assert blurred[0, 0, 0, 0] > 0 and blurred[0, 0, 1, 1] == 1.0  # only the attended cell blurred
    torch.testing.assert_close(nodes_sag.create_blur_map(x0, torch.zeros(2, 256, 256)), x0)
    original = nodes_sag.create_blur_map
    nodes_sag.create_blur_map = len  # packs replace helpers (TiledDiffusion does)
    assert nodes_sag.create_blur_map is len
    nodes_sag.create_blur_map = original
    with pytest.raises(AttributeError, match="neither one of ComfyUI's nodes"):
        nodes_custom_sampler.sample_custom_helper

    # The start noise of ComfyUI's custom sampling: torch's normal draw from the seed, on the CPU.
    latent = {"samples": torch.zeros(2, 4, 8, 8)}
    expected = torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(nodes_custom_sampler.Noise_RandomNoise(7).generate_noise(latent), expected)
    assert nodes_custom_sampler.Noise_EmptyNoise().generate_noise(latent).abs().sum() == 0


def test_comfy_extras_composite_pastes_in_place(pack_studio):
    from comfy_extras.nodes_mask import composite

    destination = torch.zeros(2, 3, 8, 8)
    source = torch.ones(1, 3, 4, 4)
    mask = torch.full((4, 4), 0.25)
    out = composite(destination, source, 16, 8, mask)  # latent units: multiplier 8 → (2, 1)
    assert out is destination
    expected = torch.zeros(2, 3, 8, 8)
    expected[:, :, 1:5, 2:6] = 0.25
    torch.testing.assert_close(out, expected)
    # Pixel units (multiplier 1), no mask, clipped at the right edge.
    image = composite(torch.zeros(1, 1, 4, 4), torch.full((1, 1, 2, 2), 0.5), 3, 0, None, 1)
    assert image[0, 0].tolist() == [[0, 0, 0, 0.5], [0, 0, 0, 0.5], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_comfy_extras_helper_classes_are_weft_objects_or_subclassable_placeholders(pack_studio, tiny_sd1):
    import comfy.samplers
    import comfy.sd
    from comfy_extras import nodes_custom_sampler, nodes_model_advanced, nodes_perpneg

    model = comfy.sd.load_checkpoint_guess_config(str(tiny_sd1), output_clip=False)[0]
    guider = nodes_custom_sampler.Guider_Basic(model)
    guider.set_conds([[torch.zeros(1, 77, 8), {}]])
    assert isinstance(guider, comfy.samplers.CFGGuider) and list(guider.original_conds) == ["positive"]

    class ScheduledPerpNeg(nodes_perpneg.Guider_PerpNeg):  # Inspire-Pack's way
        pass

    assert issubclass(ScheduledPerpNeg, comfy.samplers.CFGGuider)
    with pytest.raises(NotImplementedError, match="Perp-Neg guider class"):
        ScheduledPerpNeg(None)

    sigmas = torch.linspace(0.03, 14.6, 10)
    rescaled = nodes_model_advanced.rescale_zero_terminal_snr_sigmas(sigmas)
    # The first step keeps its SNR; the last gets ᾱ = 4.8973451890853435e-08 (zero terminal SNR).
    torch.testing.assert_close(rescaled[0], sigmas[0])
    last_alpha_bar = 4.8973451890853435e-08
    assert rescaled[-1].item() == pytest.approx(math.sqrt((1 - last_alpha_bar) / last_alpha_bar), rel=1e-5)


# -- clip_vision and sd1_clip helpers ------------------------------------------------------------------

def test_clip_vision_load_gives_weft_towers(pack_studio):
    import comfy.clip_vision
    import comfy.model_base
    from ldm.loading.checkpoint import save_state_dict
    from ldm.vision.tiny import tiny_vision_state_dict, write_tiny_clip_vision

    path = write_tiny_clip_vision(pack_studio.base / "vit.safetensors", layout="openclip")
    vision = comfy.clip_vision.load(str(path))
    out = vision.encode_image(torch.rand(1, 40, 60, 3, generator=torch.Generator().manual_seed(0)))
    assert out["image_embeds"].shape == (1, 768) and out.penultimate_hidden_states.shape == (1, 50, 32)
    nested = tiny_vision_state_dict(layout="openclip", prefix="embedder.model.visual.")
    assert comfy.clip_vision.load_clipvision_from_sd(nested, "embedder.model.visual.", True) is not None
    save_state_dict(pack_studio.base / "other.safetensors", {"foo": torch.zeros(1)})
    assert comfy.clip_vision.load(str(pack_studio.base / "other.safetensors")) is None
    import nodes
    assert nodes.CLIPVisionLoader is pack_studio.host.registry.get("CLIPVisionLoader").node_class

    from ldm.vision.tiny import write_tiny_unclip_checkpoint
    import comfy.sd
    unclip = write_tiny_unclip_checkpoint(pack_studio.base / "unclip.safetensors")
    model, _, _, tower = comfy.sd.load_checkpoint_guess_config(str(unclip), output_clipvision=True)
    assert isinstance(model.model, comfy.model_base.SD21UNCLIP)
    assert not isinstance(model.model, comfy.model_base.SDXL)
    assert tower.encode_image(torch.rand(1, 32, 32, 3)).image_embeds.shape == (1, 768)


def test_clip_vision_output_is_an_attribute_and_item_container(pack_studio):
    from comfy.clip_vision import Output

    out = Output()
    embeds = torch.ones(1, 768)
    out["image_embeds"] = embeds
    out.last_hidden_state = torch.zeros(1, 257, 1024)
    assert out.image_embeds is embeds
    assert out["last_hidden_state"] is out.last_hidden_state
    with pytest.raises(AttributeError):
        out["penultimate_hidden_states"]


def test_clip_preprocess_quantises_and_normalises_an_image_of_the_right_size(pack_studio):
    from comfy.clip_vision import clip_preprocess

    image = torch.rand(2, 16, 16, 4, generator=torch.Generator().manual_seed(0))
    pixels = clip_preprocess(image, size=16)
    assert pixels.shape == (2, 3, 16, 16)  # alpha dropped, channels first, no resize
    expected = ((image[..., :3] * 255).round() / 255 - torch.tensor(MEAN)) / torch.tensor(STD)
    torch.testing.assert_close(pixels, expected.movedim(-1, 1))


def test_clip_preprocess_scales_the_shorter_side_and_centre_crops(pack_studio):
    from comfy.clip_vision import clip_preprocess

    red, green, blue = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
    image = torch.zeros(1, 64, 192, 3)  # three 64-pixel-wide bands: red | green | blue
    for band, colour in enumerate((red, green, blue)):
        image[:, :, band * 64:(band + 1) * 64] = torch.tensor(colour)

    cropped = clip_preprocess(image, size=32)
    # 64×192 → 32×96; the centre 32 columns are the green band (edges blend with its neighbours).
    assert cropped.shape == (1, 3, 32, 32)
    inner = cropped[0, :, :, 3:29]
    torch.testing.assert_close(inner, clip_normalised(green).view(3, 1, 1).expand_as(inner), atol=1e-6, rtol=0)

    squashed = clip_preprocess(image, size=32, crop=False)  # 64×192 → 32×32, all three bands
    for column, colour in ((2, red), (16, green), (29, blue)):
        torch.testing.assert_close(squashed[0, :, :, column], clip_normalised(colour).view(3, 1).expand(3, 32),
                                   atol=1e-6, rtol=0)


def test_sd1_clip_prompt_helpers_read_comfyui_weights(pack_studio):
    from comfy.sd1_clip import escape_important, token_weights, unescape_important

    parsed = token_weights(escape_important(r"a (b:1.2) (c) \(d\)"), 1.0)
    assert [(unescape_important(text), weight) for text, weight in parsed] == [
        ("a ", 1.0), ("b", 1.2), (" ", 1.0), ("c", pytest.approx(1.1)), (" (d)", 1.0)]


def test_sd1_clip_expand_directory_list(pack_studio, tmp_path):
    from comfy.sd1_clip import expand_directory_list

    root = tmp_path / "embeddings-root"
    (root / "a" / "b").mkdir(parents=True)
    found = {str(path) for path in expand_directory_list([str(root)])}
    assert found == {str(root), str(root / "a"), str(root / "a" / "b")}


def test_comfy_controlnet_loads_weft_control_nets_for_the_core_apply_node(pack_studio, tmp_path):
    import comfy.controlnet
    import nodes
    from ldm.control.tiny import tiny_adapter_config, tiny_adapter_state_dict, write_tiny_controlnet

    control = comfy.controlnet.load_controlnet(str(write_tiny_controlnet(tmp_path / "cn.safetensors")))
    assert control.kind == "controlnet" and not isinstance(control, comfy.controlnet.ControlBase)
    positive = [[torch.zeros(1, 77, 32), {}]]
    pos, neg = nodes.ControlNetApplyAdvanced().apply_controlnet(positive, positive, control,
                                                                torch.rand(1, 64, 64, 3), 1.0, 0.0, 1.0)
    assert pos[0][1]["control"].model is control and neg[0][1]["control"] is pos[0][1]["control"]
    adapter = comfy.controlnet.load_t2i_adapter(tiny_adapter_state_dict(tiny_adapter_config()))
    assert adapter.kind == "t2i_adapter"
    assert comfy.controlnet.load_t2i_adapter({"unrelated.weight": torch.zeros(2, 2)}) is None
