"""ldm.loading.saving: checkpoints written back in CompVis layout, with the stored weights and the model's
own patches (the nodes that use it are tested in tests/nodes/test_model_saving.py)."""

from __future__ import annotations

import torch

from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.loading import saving
from ldm.loading.checkpoint import load_state_dict
from ldm.loading.detect import META_PREDICTION
from ldm.lora.patches import DiffAdapter, WeightPatch
from ldm.memory import MemoryManager, MemoryOptions, VramMode
from ldm.model import load_checkpoint
from ldm.tiny import write_tiny_checkpoint

FP32 = detect_compute("cpu", force_dtype=torch.float32)


def test_save_round_trip_keeps_family_prediction_and_weights(tmp_path):
    source = write_tiny_checkpoint(tmp_path / "src.safetensors", "sd2_v", include_text=False)
    model, _clip, vae = load_checkpoint(source, compute=FP32)
    target = tmp_path / "saved.safetensors"
    saving.save_checkpoint(target, model, None, vae, metadata={"prompt": "{}"})
    again, _, _ = load_checkpoint(target, compute=FP32)
    assert (again.family, again.prediction, again.config) == ("sd2_v", "v", model.config)
    original, _ = load_state_dict(source)
    saved, saved_meta = load_state_dict(target)
    # bit-exact in the file's dtype; a v-prediction model gains ComfyUI's empty v_pred marker
    assert set(saved) == set(original) | {"v_pred"} and saved["v_pred"].numel() == 0
    assert all(torch.equal(saved[k], original[k]) for k in original)
    assert saved_meta["prompt"] == "{}" and saved_meta[META_PREDICTION] == "v"


def test_a_loaded_models_patches_are_written_once(tmp_path):
    source = write_tiny_checkpoint(tmp_path / "src.safetensors", "sd1", include_text=False, dtype=torch.float32)
    model, _clip, _vae = load_checkpoint(source, compute=FP32)
    key = "input_blocks.1.1.proj_in.weight"
    stored = model.unet.state_dict()[key].clone()
    model.patches = {key: [WeightPatch(1.0, DiffAdapter(torch.ones_like(stored)))]}
    engine = Engine(FP32, manager=MemoryManager(MemoryOptions(mode=VramMode.CPU)))
    with engine.use_unet(model):
        # the module now computes with a patched copy; the file must still get stored + patch
        assert torch.equal(model.unet.state_dict()[key], stored + 1)
        target = tmp_path / "saved.safetensors"
        saving.save_checkpoint(target, model)
    saved, _ = load_state_dict(target)
    torch.testing.assert_close(saved["model.diffusion_model." + key], stored + 1)
