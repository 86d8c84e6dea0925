"""ComfyUI's names in `nodes`, `comfy_extras.nodes_*` and `comfy.sd`, over Weft's registry and loaders."""

from __future__ import annotations

import pytest


def test_nodes_package_answers_comfyui_names(pack_studio):
    import nodes

    assert nodes.MAX_RESOLUTION == 16384
    assert nodes.NODE_CLASS_MAPPINGS["KSampler"] is pack_studio.registry.get("KSampler").node_class
    assert "CheckpointLoaderSimple" in nodes.NODE_CLASS_MAPPINGS
    assert nodes.CLIPTextEncode is pack_studio.registry.get("CLIPTextEncode").node_class
    assert nodes.NODE_DISPLAY_NAME_MAPPINGS["KSampler"] == pack_studio.registry.get("KSampler").display_name
    with pytest.raises(AttributeError, match="not one of ComfyUI's names"):
        nodes.NoSuchNode
    with pytest.raises(TypeError):
        del nodes.NODE_CLASS_MAPPINGS["KSampler"]


def test_only_the_core_nodes_weft_lacks_are_placeholders(pack_studio):
    import importlib

    import nodes

    names = importlib.import_module("_weft_nodes_names")
    registered = set(pack_studio.registry.names())
    assert set(names.ABSENT_CORE_NODES) <= names.COMFYUI_CORE_NODES - registered
    # LoadImageOutput is Weft's own node (nodes/image_save.py), no longer a placeholder
    assert "LoadImageOutput" in registered
    assert nodes.LoadImageOutput is pack_studio.registry.get("LoadImageOutput").node_class
    assert nodes.LoadImageOutput is not names.placeholder_node("LoadImageOutput")


def test_comfy_extras_modules_give_core_classes_helpers_and_refuse_others(pack_studio):
    from comfy_extras import nodes_custom_sampler, nodes_model_advanced
    from comfy_extras.nodes_mask import composite  # a helper function, not a node

    assert nodes_custom_sampler.SamplerCustom is pack_studio.registry.get("SamplerCustom").node_class
    assert nodes_model_advanced.ModelSamplingDiscrete is pack_studio.registry.get("ModelSamplingDiscrete").node_class
    assert callable(composite) and not hasattr(composite, "FUNCTION")  # Weft's compositing (test_absent_features)
    with pytest.raises(ImportError, match="cannot import name .no_such_helper."):
        from comfy_extras.nodes_mask import no_such_helper  # noqa: F401
    with pytest.raises(AttributeError, match="neither one of ComfyUI's nodes of that module nor a helper"):
        nodes_custom_sampler.sample_custom_helper
    with pytest.raises(ModuleNotFoundError):
        import comfy_extras.nodes_that_never_existed  # noqa: F401


def test_a_pack_loads_and_runs_through_comfy_sd_and_nodes_names(pack_studio):
    [report] = pack_studio.load("names_pack.py")
    assert report.loaded, report.error
    prompt = {
        "1": {"class_type": "LoadThroughComfySd", "inputs": {"ckpt_name": "tiny_sd1.safetensors", "width": 64}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": ["1", 3], "height": 64, "batch_size": 1}},
        "4": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0],
                                                   "latent_image": ["3", 0], "seed": 1, "steps": 2, "cfg": 2.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}},
    }
    outcome = pack_studio.run(prompt)
    assert outcome.outputs["6"]["images"][0]["type"] == "temp"


def test_comfy_submodules_are_reachable_as_attributes_and_legacy_names_import(pack_studio):
    import importlib

    import comfy

    assert comfy.samplers.KSampler.SAMPLERS  # no `import comfy.samplers` needed, as in ComfyUI
    assert comfy.ldm.models.autoencoder.AutoencoderKL is not None
    with pytest.raises(AttributeError, match="not provided by Weft"):
        comfy.no_such_module
    # ComfyUI puts comfy/ on sys.path: `import model_management` is the same facade module's code.
    legacy = importlib.import_module("model_management")
    assert legacy.get_torch_device() == comfy.model_management.get_torch_device()
    assert "facade" not in importlib.import_module("ldm").__file__  # Weft's own ldm is never shadowed
