import torch

from ldm.devices import detect_compute
from ldm.loading.checkpoint import load_state_dict
from ldm.model import load_checkpoint, load_vae
from ldm.sampling.from_handle import guided_model
from ldm.sampling.sample import common_ksampler
from ldm.training.config import TINY
from ldm.training.export import model_metadata, write_checkpoint, write_vae
from ldm.training.init import new_unet
from ldm.training.text import clip_handle, new_text_encoder


def write_tiny(path, vae):
    unet = new_unet(TINY.unet, seed=0)
    text = new_text_encoder(TINY.text, seed=1).eval()
    metadata = model_metadata(unet, title="tiny", description="test", resolution=16, training={"steps": 0})
    write_checkpoint(path, unet, text, vae, metadata)
    return unet, text


def test_checkpoint_loads_through_the_normal_path_and_samples(tmp_path, tiny_vae):
    path = tmp_path / "tiny.safetensors"
    unet, text = write_tiny(path, tiny_vae)
    weights, metadata = load_state_dict(path)
    assert metadata["weft.num_head_channels"] == "16" and metadata["modelspec.prediction_type"] == "epsilon"
    assert all(v.dtype == torch.bfloat16 for v in weights.values())

    fp32 = detect_compute("cpu", force_dtype=torch.float32)
    model, clip, vae = load_checkpoint(path, compute=fp32)
    assert (model.family, model.prediction) == ("sd1", "eps")
    assert model.config == unet.config
    assert vae.downscale_ratio == 2 and vae.latent_channels == 4

    caption = "a red circle at the top left on a blue background"
    loaded_cond = clip.encode(caption)
    with torch.no_grad():
        trained_cond = clip_handle(text).encode(caption)
    assert loaded_cond.shape == (1, 77, 32)
    assert torch.allclose(loaded_cond, trained_cond, atol=0.1)  # weights stored in bf16

    positive = clip.encode_from_tokens_scheduled(clip.tokenize(caption))
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(""))
    guided = guided_model(model, model.unet)
    latent = common_ksampler(guided, 0, 3, 5.0, "euler", "normal", positive, negative,
                             {"samples": torch.zeros(1, 4, 8, 8)})["samples"]
    image = vae.decode(latent)
    assert image.shape == (1, 16, 16, 3) and torch.isfinite(image).all()


def test_v_prediction_is_written_and_detected(tmp_path, tiny_vae):
    path = tmp_path / "tiny_v.safetensors"
    unet = new_unet(TINY.unet, seed=0)
    metadata = model_metadata(unet, title="tiny", description="test", resolution=16, prediction="v")
    write_checkpoint(path, unet, new_text_encoder(TINY.text, seed=1), tiny_vae, metadata)
    model, _, _ = load_checkpoint(path, compute=detect_compute("cpu", force_dtype=torch.float32))
    assert (model.family, model.prediction) == ("sd1", "v")


def test_vae_file_loads_with_the_vae_loader(tmp_path, tiny_vae):
    write_vae(tmp_path / "vae.safetensors", tiny_vae)
    vae = load_vae(tmp_path / "vae.safetensors", compute=detect_compute("cpu", force_dtype=torch.float32))
    pixels = torch.rand(1, 16, 16, 3)
    assert vae.encode(pixels).shape == (1, 4, 8, 8)
