"""nodes.loaders.DiffusersLoader: diffusers model folders under models/diffusers, as ComfyUI lists
and loads them."""

from __future__ import annotations

import pytest
import torch

from graph.folders import UnsafePathError
from graph.registry import NodeRegistry
from nodes import loaders
from tests.ldm.loading.test_diffusers_folder import sd1_folder


def test_schema_is_comfyuis():
    registry = NodeRegistry()
    registry.register_mappings({"DiffusersLoader": loaders.DiffusersLoader}, loaders.NODE_DISPLAY_NAME_MAPPINGS,
                               core=True)
    info = registry.object_info()["DiffusersLoader"]
    assert (info["display_name"], info["category"]) == ("Load Diffusers Model (DEPRECATED)", "model/loaders")
    assert info["deprecated"] is True
    assert list(info["input"]["required"]) == ["model_path"] and info["output"] == ["MODEL", "CLIP", "VAE"]
    assert loaders.DiffusersLoader.INPUT_TYPES() == {"required": {"model_path": ([],)}}  # no server: no folders


def test_lists_and_loads_folders_under_models_diffusers(node_services):
    root = node_services.folders.models_root / "diffusers"
    unet, _, _ = sd1_folder(root / "tiny" / "sd1")
    (root / "not-a-model").mkdir()
    assert loaders.DiffusersLoader.INPUT_TYPES()["required"]["model_path"] == (["tiny/sd1"],)
    model, clip, vae = loaders.DiffusersLoader().load_checkpoint("tiny/sd1")
    assert (model.family, vae.latent_channels, list(clip.encoders)) == ("sd1", 4, ["clip_l"])
    x, context = torch.randn(1, 4, 8, 8), torch.randn(1, 77, 32)
    with node_services.engine.use_unet(model) as runnable:
        found = runnable(x, torch.tensor([20.0]), context=context)
    with torch.no_grad():
        expected = unet(x, torch.tensor([20.0]), encoder_hidden_states=context).sample
    torch.testing.assert_close(found, expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(FileNotFoundError, match="not-a-model"):
        loaders.DiffusersLoader().load_checkpoint("not-a-model")
    with pytest.raises(UnsafePathError):
        loaders.DiffusersLoader().load_checkpoint("../escape")
