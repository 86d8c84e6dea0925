"""``latent_preview``: Weft's previewers behind ComfyUI's classes and the sampler callback packs use."""

import argparse
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ldm.latent_formats import SD15, SDXL
from ldm.networks.taesd import taesd_decoder


@pytest.fixture
def lp(pack_studio):
    import latent_preview

    return latent_preview


def _write_taesd(path):
    generator = torch.Generator().manual_seed(0)
    save_file({k: torch.randn(v.shape, generator=generator) * 0.05 for k, v in taesd_decoder().state_dict().items()},
              str(path))


def test_no_previews_when_the_server_says_none(lp):
    assert lp.get_previewer(torch.device("cpu"), SD15) is None


def test_latent2rgb_previews_of_weft_formats(pack_studio, lp):
    pack_studio.services.options.preview_method = "auto"
    previewer = lp.get_previewer(torch.device("cpu"), SDXL)
    assert isinstance(previewer, lp.LatentPreviewer)
    x0 = torch.randn(2, 4, 8, 6)
    image_format, image, size = previewer.decode_latent_to_preview_image("JPEG", x0)
    assert (image_format, image.size, size) == ("JPEG", (6, 8), 512)
    expected = (SDXL.latent_to_rgb(x0[:1])[0] * 255).round()
    assert (torch.tensor(np.array(image), dtype=torch.float32) - expected).abs().max() <= 1


def test_comfyui_style_latent_format_and_own_previewers(pack_studio, lp):
    pack_studio.services.options.preview_method = "latent2rgb"
    fmt = SimpleNamespace(latent_rgb_factors=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                          latent_rgb_factors_bias=[0.0, 0.0, 1.0], taesd_decoder_name=None, latent_channels=2)
    previewer = lp.get_previewer(None, fmt)
    assert isinstance(previewer, lp.Latent2RGBPreviewer)
    image = previewer.decode_latent_to_preview(torch.ones(1, 2, 3, 3))
    assert image.getpixel((0, 0)) == (255, 255, 255)
    image = previewer.decode_latent_to_preview(-torch.ones(1, 2, 1, 4, 4))  # video latents: first frame
    assert image.size == (4, 4) and image.getpixel((0, 0)) == (0, 0, 255)
    assert lp.get_previewer(None, SimpleNamespace(latent_rgb_factors=None, taesd_decoder_name=None)) is None

    class FakeTAESD:
        def decode(self, x):
            return torch.zeros(x.shape[0], 3, x.shape[2] * 8, x.shape[3] * 8)

    assert lp.TAESDPreviewerImpl(FakeTAESD()).decode_latent_to_preview(torch.zeros(1, 4, 2, 2)).getpixel((0, 0)) == \
        (128, 128, 128)


def test_taesd_previews_from_vae_approx(pack_studio, lp):
    pack_studio.services.options.preview_method = "taesd"
    _write_taesd(pack_studio.services.folders.model_roots("vae_approx")[0] / "taesd_decoder.safetensors")
    image = lp.get_previewer(torch.device("cpu"), SD15).decode_latent_to_preview(torch.randn(1, 4, 4, 4))
    assert image.size == (32, 32)
    fmt = SimpleNamespace(latent_rgb_factors=None, taesd_decoder_name="taesd_decoder", latent_channels=4)
    image = lp.get_previewer(torch.device("cpu"), fmt).decode_latent_to_preview(torch.randn(1, 4, 4, 4))
    assert image.size == (32, 32)
    # SDXL's decoder is not there: latent2rgb instead
    assert lp.get_previewer(torch.device("cpu"), SDXL).decode_latent_to_preview(torch.randn(1, 4, 4, 4)).size == (4, 4)


def test_preview_method_override_and_resolution(pack_studio, lp):
    from comfy.cli_args import LatentPreviewMethod, args

    pack_studio.host.args = argparse.Namespace(preview_method="auto")
    lp.set_preview_method("taesd")
    assert pack_studio.services.options.preview_method == "taesd" and args.preview_method is LatentPreviewMethod.TAESD
    lp.set_preview_method("default")
    assert pack_studio.services.options.preview_method == "auto"
    assert lp.default_preview_method is LatentPreviewMethod.Auto
    pack_studio.services.options.preview_size = 256
    assert lp.MAX_PREVIEW_RESOLUTION == 256


def test_prepare_callback_reports_progress_with_previews(pack_studio):
    pack_studio.services.options.preview_method = "latent2rgb"
    (report,) = pack_studio.load("progress_pack.py")
    assert report.loaded, report.error
    outcome = pack_studio.run({
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny_sd1.safetensors"}},
        "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "PreviewSteps", "inputs": {"model": ["1", 0], "samples": ["2", 0], "steps": 3}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}}})
    assert outcome.status == "success"
    progress = [(d["node"], d["value"], d["max"]) for e, d in pack_studio.events if e == "progress"]
    assert progress == [("3", 1, 3), ("3", 2, 3), ("3", 3, 3)]
    previews = [d for e, d in pack_studio.events if e == "preview"]
    assert len(previews) == 3 and all(d["node_id"] == "3" and d["image"].size == (8, 8) for d in previews)
