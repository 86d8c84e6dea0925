import pytest
import torch

from ldm.sampling.model_sampling import SD_SCHEDULE, alphas_cumprod
from ldm.training.config import TINY
from ldm.training.diffusion import (TrainingLatents, draw_batch, min_snr_weights, noise_prediction_loss,
                                    prediction_target, train_diffusion)
from ldm.training.init import new_unet
from ldm.training.loop import step_generator
from ldm.training.state import ResumeError
from ldm.training.text import caption_ids, new_text_encoder

from .conftest import FAST_DIFFUSION, StopAt, fast, same_weights

ALPHA_BARS = alphas_cumprod(SD_SCHEDULE).float()


def test_encoded_dataset(tiny_latents, tiny_scenes):
    assert tiny_latents.latents.shape == (32, 4, 8, 8)
    assert tiny_latents.ids.shape == (32, 77)
    assert torch.equal(tiny_latents.ids[3], caption_ids([tiny_scenes.caption(3)], TINY.text.width)[0])


def fixed_loss(unet, text, data):
    """Unweighted eps MSE on one fixed batch (same latents, timesteps and noise every time)."""
    empty = caption_ids([""], TINY.text.width)[0]
    batch = draw_batch(data, 16, 0.0, empty, step_generator(123, 0))
    with torch.no_grad():
        return noise_prediction_loss(unet, text, batch, ALPHA_BARS)[1].mean().item()


def test_a_few_steps_reduce_the_loss(tiny_latents):
    data = TrainingLatents(tiny_latents.latents[:8], tiny_latents.ids[:8])
    before = fixed_loss(new_unet(TINY.unet, 0), new_text_encoder(TINY.text, 1), data)
    config = fast(FAST_DIFFUSION, steps=15, batch_size=8, learning_rate=2e-3, final_learning_rate=2e-3,
                  ema_decay=0.5, min_snr_gamma=0.0)
    result = train_diffusion(data, TINY, config)
    after = fixed_loss(result.unet, result.text, data)
    assert after < 0.75 * before
    assert result.steps == 15


def test_a_few_v_prediction_steps_reduce_the_loss(tiny_latents):
    data = TrainingLatents(tiny_latents.latents[:8], tiny_latents.ids[:8])
    empty = caption_ids([""], TINY.text.width)[0]
    batch = draw_batch(data, 16, 0.0, empty, step_generator(123, 0))

    def v_loss(result_or_nets):
        unet, text = result_or_nets
        with torch.no_grad():
            return noise_prediction_loss(unet, text, batch, ALPHA_BARS, prediction="v")[1].mean().item()

    before = v_loss((new_unet(TINY.unet, 0), new_text_encoder(TINY.text, 1)))
    config = fast(FAST_DIFFUSION, steps=15, batch_size=8, learning_rate=2e-3, final_learning_rate=2e-3,
                  ema_decay=0.5, min_snr_gamma=0.0, prediction="v")
    result = train_diffusion(data, TINY, config)
    assert v_loss((result.unet, result.text)) < 0.75 * before


def test_resume_continues_the_step_count(tiny_latents, tmp_path):
    straight = train_diffusion(tiny_latents, TINY, FAST_DIFFUSION)
    with pytest.raises(StopAt.Stop):
        train_diffusion(tiny_latents, TINY, FAST_DIFFUSION, state_path=tmp_path / "d.pt", progress=StopAt(2))
    steps = []
    resumed = train_diffusion(tiny_latents, TINY, FAST_DIFFUSION, state_path=tmp_path / "d.pt",
                              progress=lambda p: steps.append(p.step))
    assert steps == [3, 4] and resumed.steps == 4
    assert same_weights(straight.unet, resumed.unet) and same_weights(straight.text, resumed.text)
    with pytest.raises(ResumeError):
        train_diffusion(tiny_latents, TINY, fast(FAST_DIFFUSION, caption_dropout=0.2),
                        state_path=tmp_path / "d.pt")


def test_captions_are_dropped_at_the_configured_rate(tiny_latents):
    empty = caption_ids([""], TINY.text.width)[0]
    dropped = kept = 0
    for step in range(50):
        batch = draw_batch(tiny_latents, 32, 0.1, empty, step_generator(0, step))
        assert torch.equal(batch.ids[batch.dropped], empty.expand(int(batch.dropped.sum()), -1))
        assert not (batch.ids[~batch.dropped] == empty).all(dim=1).any()
        dropped += int(batch.dropped.sum())
        kept += int((~batch.dropped).sum())
    assert 0.07 < dropped / (dropped + kept) < 0.13
    again = draw_batch(tiny_latents, 32, 0.1, empty, step_generator(0, 7))
    assert torch.equal(again.noise, draw_batch(tiny_latents, 32, 0.1, empty, step_generator(0, 7)).noise)


def test_low_frequency_noise_hides_the_coarse_components(tiny_latents):
    empty = caption_ids([""], TINY.text.width)[0]
    plain = draw_batch(tiny_latents, 256, 0.1, empty, step_generator(0, 3))
    coarse = draw_batch(tiny_latents, 256, 0.1, empty, step_generator(0, 3), low_frequency=0.4)
    # the same draw otherwise: latents, captions and timesteps do not move with the option
    assert torch.equal(plain.x0, coarse.x0) and torch.equal(plain.ids, coarse.ids)
    assert torch.equal(plain.timesteps, coarse.timesteps)
    # about unit variance still, but each latent's mean (its "offset") varies several times more
    assert 0.85 < coarse.noise.std().item() < 1.05
    plain_offsets, coarse_offsets = plain.noise.mean((2, 3)).std(), coarse.noise.mean((2, 3)).std()
    assert coarse_offsets > 3 * plain_offsets
    again = draw_batch(tiny_latents, 256, 0.1, empty, step_generator(0, 3), low_frequency=0.4)
    assert torch.equal(coarse.noise, again.noise)


def test_min_snr_weights():
    alpha_bar = torch.tensor([0.999, 5.0 / 6.0, 0.5, 0.01])  # SNR 999, 5, 1, 0.0101
    assert min_snr_weights(alpha_bar, 5.0).tolist() == pytest.approx([5.0 / 999.0, 1.0, 1.0, 1.0], rel=1e-4)
    assert min_snr_weights(alpha_bar, 0.0).tolist() == [1.0] * 4
    # v-prediction: min(SNR, 5) / (SNR + 1)
    assert min_snr_weights(alpha_bar, 5.0, "v").tolist() == pytest.approx([5.0 / 1000.0, 5.0 / 6.0, 0.5, 0.01],
                                                                          rel=1e-3)


def test_an_x0_weight_floor_lifts_only_the_high_noise_weights():
    alpha_bar = torch.tensor([0.999, 5.0 / 6.0, 0.5, 0.01])  # SNR 999, 5, 1, 0.0101
    snr = alpha_bar / (1 - alpha_bar)
    floored = min_snr_weights(alpha_bar, 5.0, x0_floor=0.5)
    # eps weight w means x0 weight w * SNR: min(SNR, 5), but never under 0.5
    assert (floored * snr).tolist() == pytest.approx([5.0, 5.0, 1.0, 0.5], rel=1e-4)
    assert (min_snr_weights(alpha_bar, 5.0, "v", x0_floor=0.5) * (snr + 1)).tolist() == pytest.approx(
        [5.0, 5.0, 1.0, 0.5], rel=1e-4)
    # without min-SNR, the floor alone: x0 weight max(SNR, floor)
    assert (min_snr_weights(alpha_bar, 0.0, x0_floor=0.5) * snr).tolist() == pytest.approx(
        [999.0, 5.0, 1.0, 0.5], rel=1e-3)


def test_a_high_noise_share_of_the_batch(tiny_latents):
    empty = caption_ids([""], TINY.text.width)[0]
    plain = draw_batch(tiny_latents, 32, 0.1, empty, step_generator(0, 5))
    high = draw_batch(tiny_latents, 32, 0.1, empty, step_generator(0, 5), high_noise_fraction=0.25,
                      high_noise_from=900)
    assert (high.timesteps[:8] >= 900).all() and (high.timesteps[:8] <= 999).all()
    # everything else is the draw without the option
    assert torch.equal(high.timesteps[8:], plain.timesteps[8:])
    assert torch.equal(high.noise, plain.noise) and torch.equal(high.ids, plain.ids)
    again = draw_batch(tiny_latents, 32, 0.1, empty, step_generator(0, 5), high_noise_fraction=0.25)
    assert torch.equal(again.timesteps, high.timesteps)


def test_a_second_phase_starts_from_the_first_phases_networks(tiny_latents, tmp_path):
    first = train_diffusion(tiny_latents, TINY, FAST_DIFFUSION)
    steps = []
    second = train_diffusion(tiny_latents, TINY, fast(FAST_DIFFUSION, steps=2, learning_rate=0.0,
                                                      final_learning_rate=0.0, warmup_steps=0),
                             start_from=first, stage="refine", state_path=tmp_path / "refine.pt",
                             progress=lambda p: steps.append((p.stage, p.step)))
    assert steps == [("refine", 1), ("refine", 2)] and second.steps == 2
    # learning rate 0: the second phase's networks are the first phase's
    assert same_weights(first.unet, second.unet) and same_weights(first.text, second.text)


def test_v_target_recovers_the_clean_latent(tiny_latents):
    """x0 = sqrt(a) x_t - sqrt(1 - a) v: the sampler's v-prediction formula inverts the target."""
    empty = caption_ids([""], TINY.text.width)[0]
    batch = draw_batch(tiny_latents, 8, 0.0, empty, step_generator(0, 1))
    alpha_bar = ALPHA_BARS[batch.timesteps].view(-1, 1, 1, 1)
    noisy = alpha_bar.sqrt() * batch.x0 + (1 - alpha_bar).sqrt() * batch.noise
    v = prediction_target(batch, alpha_bar, "v")
    assert torch.allclose(alpha_bar.sqrt() * noisy - (1 - alpha_bar).sqrt() * v, batch.x0, atol=1e-5)
    assert torch.equal(prediction_target(batch, alpha_bar, "eps"), batch.noise)
    with pytest.raises(ValueError):
        prediction_target(batch, alpha_bar, "x0")


def test_preview_samples_through_ldm_sampling(tiny_latents, tiny_vae):
    from ldm.training.diffusion import PreviewSpec

    def decode(latents):
        with torch.no_grad():
            return tiny_vae.decode(latents).add(1).div(2).clamp(0, 1)

    reports = []
    train_diffusion(tiny_latents, TINY, fast(FAST_DIFFUSION, steps=2, preview_every=2),
                    progress=reports.append, preview=PreviewSpec(("a red circle", "a blue square"), decode))
    assert reports[0].preview is None and reports[1].preview.size == (2 * 16 * 2, 16 * 2)
