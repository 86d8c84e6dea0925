"""``comfy_extras.nodes_upscale_model``: ComfyUI's V3 classes as packs call them directly
(``ImageUpscaleWithModel.execute(upscale_model, image)``), over Weft's upscale nodes."""

from __future__ import annotations

import torch

from graph.context import ExecutionContext, InterruptFlag, use_context
from ldm.loading.checkpoint import save_state_dict


def test_v3_execute_calls_run_weft_upscale_nodes(pack_studio):
    from spandrel.architectures.ESRGAN import ESRGAN

    import comfy_extras.nodes_upscale_model as module
    from comfy_api.latest import io
    from comfy_extras.nodes_upscale_model import ImageUpscaleWithModel, UpscaleModelLoader

    folder = pack_studio.services.folders.model_roots("upscale_models")[0]
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    save_state_dict(folder / "x2.safetensors", ESRGAN(num_filters=4, num_blocks=1, scale=2).state_dict())
    weft_loader = pack_studio.registry.get("UpscaleModelLoader").node_class
    weft_upscale = pack_studio.registry.get("ImageUpscaleWithModel").node_class
    assert issubclass(UpscaleModelLoader, weft_loader) and issubclass(ImageUpscaleWithModel, weft_upscale)
    assert module.ImageUpscaleWithModel is ImageUpscaleWithModel  # one class, not one per look-up
    image = torch.rand(1, 12, 10, 3, generator=torch.Generator().manual_seed(1))
    context = ExecutionContext("prompt", "1", "1", pack_studio.services, InterruptFlag())
    with use_context(context):
        loaded = UpscaleModelLoader.execute("x2.safetensors")
        assert isinstance(loaded, io.NodeOutput) and loaded[0].scale == 2
        upscaled = ImageUpscaleWithModel.execute(upscale_model=loaded[0], image=image)
        expected = weft_upscale().upscale(loaded.result[0], image)[0]
        old_style = ImageUpscaleWithModel().upscale(loaded[0], image)[0]  # ComfyUI's V1-era alias
    assert isinstance(upscaled, io.NodeOutput) and upscaled.result[0].shape == (1, 24, 20, 3)
    assert torch.equal(upscaled[0], expected) and torch.equal(old_style, expected)
