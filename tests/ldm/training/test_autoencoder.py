import pytest
import torch

from ldm.data.captioned import image_batch
from ldm.data.shapes import ShapesDataset
from ldm.latent_formats import SD15
from ldm.training.autoencoder import (calibrate_latents, edge_l1, kl_to_standard_normal,
                                      latent_statistics, train_autoencoder)
from ldm.training.config import TINY
from ldm.training.init import new_autoencoder
from ldm.training.state import ResumeError

from .conftest import FAST_AUTOENCODER, StopAt, fast, same_weights


def reconstruction_error(vae, images):
    with torch.no_grad():
        return float((vae.decode(vae.encode(images)[0]) - images).abs().mean())


def test_a_few_steps_reduce_the_reconstruction_loss():
    scenes = ShapesDataset(seed=0, length=4, size=TINY.image_size)
    images = image_batch(scenes, range(4))
    before = reconstruction_error(new_autoencoder(TINY.vae, seed=0), images)
    config = fast(FAST_AUTOENCODER, steps=20, batch_size=4, learning_rate=1e-3, discriminator_start=100)
    trained = train_autoencoder(scenes, TINY.vae, config)
    assert reconstruction_error(trained, images) < 0.8 * before


def test_discriminator_phase_reports_its_losses(tiny_scenes):
    reports = []
    train_autoencoder(tiny_scenes, TINY.vae, FAST_AUTOENCODER, progress=reports.append)
    assert [r.step for r in reports] == [1, 2, 3, 4]
    assert "g" not in reports[1].losses and {"g", "d"} <= set(reports[2].losses)
    assert reports[-1].preview is not None and reports[-1].preview.size == (4 * 16 * 2, 2 * 16 * 2)


def test_resume_continues_the_step_count(tiny_scenes, tmp_path):
    straight = train_autoencoder(tiny_scenes, TINY.vae, FAST_AUTOENCODER)
    stop = StopAt(2)
    with pytest.raises(StopAt.Stop):
        train_autoencoder(tiny_scenes, TINY.vae, FAST_AUTOENCODER, state_path=tmp_path / "s.pt",
                          progress=stop)
    resumed_steps = []
    resumed = train_autoencoder(tiny_scenes, TINY.vae, FAST_AUTOENCODER, state_path=tmp_path / "s.pt",
                                progress=lambda p: resumed_steps.append(p.step))
    assert resumed_steps == [3, 4]
    assert same_weights(straight, resumed)
    with pytest.raises(ResumeError):
        train_autoencoder(tiny_scenes, TINY.vae, fast(FAST_AUTOENCODER, learning_rate=1e-3),
                          state_path=tmp_path / "s.pt")


def test_calibration_keeps_reconstructions_and_normalises_latents(tiny_scenes):
    vae = new_autoencoder(TINY.vae, seed=3).eval()
    images = image_batch(tiny_scenes, range(16))
    with torch.no_grad():
        before = vae.decode(vae.encode(images)[0])
        mean, std = latent_statistics(vae, tiny_scenes, count=16)
        calibrate_latents(vae, mean, std)
        latents, logvar = vae.encode(images)
        after = vae.decode(latents)
    assert torch.allclose(before, after, atol=1e-4)
    scaled = SD15.process_in(latents).transpose(0, 1).flatten(1)
    assert torch.allclose(scaled.mean(1), torch.zeros(4), atol=1e-4)
    assert torch.allclose(scaled.std(1), torch.ones(4), atol=1e-4)


def test_loss_terms():
    x = torch.zeros(1, 3, 4, 4)
    y = x.clone()
    y[..., 2:, :] = 1.0  # one horizontal edge across 4 columns and 3 channels
    assert edge_l1(x, y).item() == pytest.approx(12.0)
    assert kl_to_standard_normal(torch.zeros(2, 4, 2, 2), torch.zeros(2, 4, 2, 2)).tolist() == [0.0, 0.0]
    assert kl_to_standard_normal(torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)).item() == pytest.approx(0.5)
