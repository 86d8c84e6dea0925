"""``comfy.cli_args.args``: ComfyUI's names, answered from Weft's flags and objects."""

import argparse

import pytest
import torch

import server
from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.memory import MemoryOptions, VramMode


@pytest.fixture
def ca(pack_studio):
    import comfy.cli_args

    return comfy.cli_args


def test_defaults_are_comfyui_s(ca):
    defaults = ca.comfy_defaults()
    assert defaults["port"] == 8188 and defaults["listen"] == "127.0.0.1"
    assert defaults["preview_method"] is ca.LatentPreviewMethod.NoPreviews
    assert defaults["fast"] == set() and defaults["default_hashing_function"] == "sha256"
    assert defaults["whitelist_custom_nodes"] == [] and defaults["reserve_vram"] is None
    parsed = ca.parser.parse_args(["--listen", "--fp8_e4m3fn-unet", "--preview-method", "taesd", "--fast"])
    assert parsed.listen == "0.0.0.0,::" and parsed.fp8_e4m3fn_unet
    assert parsed.preview_method is ca.LatentPreviewMethod.TAESD and parsed.fast == []
    assert ca.LatentPreviewMethod.from_string("latent2rgb") is ca.LatentPreviewMethod.Latent2RGB
    assert ca.LatentPreviewMethod.from_string("nope") is None
    assert isinstance(ca.args, argparse.Namespace)


def test_args_follow_the_server(pack_studio, ca):
    args = ca.args
    folders = pack_studio.services.folders
    assert args.output_directory == str(folders.output) and args.input_directory == str(folders.input)
    assert args.base_directory == str(folders.base)
    assert args.cpu and not args.lowvram and not args.gpu_only  # the engine computes on the CPU
    assert args.preview_method is ca.LatentPreviewMethod.NoPreviews  # the studio's options say "none"
    assert args.disable_metadata is False and args.preview_size == 512
    assert args.use_pytorch_cross_attention and not args.use_sage_attention
    assert args.deterministic is False and args.fast == set()
    pack_studio.services.options.preview_method = "latent2rgb"
    assert args.preview_method is ca.LatentPreviewMethod.Latent2RGB


def test_writes_to_node_options_reach_weft(pack_studio, ca):
    options = pack_studio.services.options
    ca.args.preview_method = ca.LatentPreviewMethod.TAESD
    ca.args.disable_metadata = True
    ca.args.preview_size = 256
    assert (options.preview_method, options.disable_metadata, options.preview_size) == ("taesd", True, 256)
    ca.args.some_pack_flag = 3
    assert ca.args.some_pack_flag == 3
    del ca.args.some_pack_flag
    with pytest.raises(AttributeError):
        ca.args.some_pack_flag


def test_weft_flags_under_comfyui_names(pack_studio, ca):
    weft = server.parse_args(["--port", "9000", "--listen", "--lowvram", "--fp16-unet", "--bf16-vae",
                              "--extra-model-paths-config", "a.yaml", "--disable-smart-memory",
                              "--reserve-vram", "1.5", "--cuda-device", "1", "--cache-none"])
    pack_studio.host.args = weft
    pack_studio.services.engine = Engine(detect_compute("cpu", force_dtype=torch.float32),
                                         MemoryOptions(mode=VramMode.LOW, smart_memory=False))
    args = ca.args
    assert (args.port, args.listen) == (9000, "0.0.0.0")
    assert args.lowvram and not args.cpu and args.fp16_unet and not args.fp32_unet and args.bf16_vae
    assert args.extra_model_paths_config == [["a.yaml"]]
    assert args.disable_smart_memory and args.reserve_vram == 1.5 and args.cuda_device == 1
    assert args.cache_none and args.whitelist_custom_nodes == []


def test_options_switch(pack_studio):
    import comfy.options

    assert comfy.options.args_parsing is False
    comfy.options.enable_args_parsing()
    assert comfy.options.args_parsing is True
    comfy.options.enable_args_parsing(False)
