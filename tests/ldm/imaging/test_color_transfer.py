"""Colour transfer: the statistics each method promises to carry over, in Lab or per channel."""

import numpy as np
import pytest
import torch

from ldm.imaging import color_transfer as T
from ldm.imaging.color_spaces import lab_to_rgb, rgb_to_lab


def muted(seed, batch=1, size=12):
    """Mid-tone images that stay inside sRGB after a mild transfer."""
    generator = torch.Generator().manual_seed(seed)
    return 0.3 + 0.4 * torch.rand(batch, size, size, 3, generator=generator)


def lab_stats(image):
    columns = rgb_to_lab(image).reshape(-1, 3).double()
    return columns.mean(0), columns.std(0, unbiased=False), torch.cov(columns.T, correction=0)


def test_reinhard_matches_lab_mean_and_deviation():
    target, reference = muted(1), 0.35 + 0.3 * muted(2)
    out = T.transfer(target, reference, "reinhard_lab")
    mean, deviation, _ = lab_stats(out[0])
    ref_mean, ref_deviation, _ = lab_stats(reference[0])
    torch.testing.assert_close(mean, ref_mean, atol=2e-2, rtol=0)
    torch.testing.assert_close(deviation, ref_deviation, atol=2e-2, rtol=0)


def test_mkl_matrix_carries_one_covariance_onto_the_other():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 3, generator=generator), torch.randn(3, 3, generator=generator)
    source, reference = a @ a.T + 0.1 * torch.eye(3), b @ b.T + 0.1 * torch.eye(3)
    matrix = T.mkl_matrix(source.double(), reference.double())
    torch.testing.assert_close(matrix @ source.double() @ matrix.T, reference.double())
    torch.testing.assert_close(matrix, matrix.T)  # the MKL map is symmetric positive definite
    assert torch.all(torch.linalg.eigvalsh(matrix) > 0)


def test_mkl_matches_the_lab_covariance():
    target, reference = muted(3), 0.4 + 0.2 * muted(4)
    out = T.transfer(target, reference, "mkl_lab")
    mean, _, covariance = lab_stats(out[0])
    ref_mean, _, ref_covariance = lab_stats(reference[0])
    torch.testing.assert_close(mean, ref_mean, atol=2e-2, rtol=0)
    torch.testing.assert_close(covariance, ref_covariance, atol=5e-2, rtol=1e-2)


def test_histogram_matching_gives_the_reference_distribution():
    generator = np.random.default_rng(5)
    target = torch.from_numpy(generator.random((1, 32, 32, 3)).astype(np.float32))
    reference = torch.from_numpy(generator.beta(2, 5, (1, 32, 32, 3)).astype(np.float32))
    out = T.transfer(target, reference, "histogram")
    for channel in range(3):
        quantiles = np.linspace(0.05, 0.95, 10)
        np.testing.assert_allclose(np.quantile(out[0, ..., channel].numpy(), quantiles),
                                   np.quantile(reference[0, ..., channel].numpy(), quantiles), atol=0.02)


def test_histogram_lut_is_the_cdf_lookup():
    source = torch.tensor([[[[0.0], [0.5]], [[0.5], [1.0]]]])  # 1 channel, bins 0, 127, 127, 255
    reference = torch.tensor([[[[0.2], [0.2]], [[0.2], [0.8]]]])  # bins 51 x3, 204
    lut = T.histogram_lut(source, reference)
    # source CDF 0.25 at bin 0, 0.75 at 127, 1 at 255; reference CDF reaches 0.75 at 51, 1 at 204
    assert lut[0, 0] == pytest.approx(51 / 255) and lut[0, 127] == pytest.approx(51 / 255)
    assert lut[0, 255] == pytest.approx(204 / 255)


def test_strength_interpolates_and_zero_or_no_reference_is_identity():
    target, reference = muted(6), muted(7) * 0.5
    assert T.transfer(target, reference, "reinhard_lab", strength=0.0) is target
    assert T.transfer(target, None, "mkl_lab") is target
    full = T.transfer(target, reference, "histogram")
    half = T.transfer(target, reference, "histogram", strength=0.5)
    torch.testing.assert_close(half, (target + full) / 2, atol=1e-6, rtol=0)
    lab_half = T.transfer(target, reference, "reinhard_lab", strength=0.5)
    expected = lab_to_rgb((rgb_to_lab(target) + rgb_to_lab(T.transfer(target, reference, "reinhard_lab"))) / 2)
    torch.testing.assert_close(lab_half, expected, atol=1e-4, rtol=0)


def test_uniform_and_target_frame_apply_one_transform_to_every_frame():
    target = torch.cat([muted(8), muted(8) * 0.8])  # the second frame a darker copy of the first
    reference = muted(9)
    uniform = T.transfer(target, reference, "reinhard_lab", "uniform")
    per_frame = T.transfer(target, reference, "reinhard_lab", "per_frame")
    # per frame, both frames end on the reference statistics: nearly the same image
    assert (per_frame[0] - per_frame[1]).abs().mean() < 0.01
    # one shared transform keeps the first frame brighter than the second
    assert uniform[0].mean() > uniform[1].mean() + 0.02
    chosen = T.transfer(target, reference, "reinhard_lab", "target_frame", target_index=7)  # clamps to frame 1
    mean, _, _ = lab_stats(chosen[1])
    torch.testing.assert_close(mean, lab_stats(reference[0])[0], atol=2e-2, rtol=0)


def test_per_frame_pairs_reference_frames_by_index():
    target = torch.cat([muted(10), muted(11)])
    reference = torch.cat([torch.full((1, 12, 12, 3), 0.2), torch.full((1, 12, 12, 3), 0.8)])
    out = T.transfer(target, reference, "histogram")
    assert torch.allclose(out[0], torch.full_like(out[0], 51 / 255))
    assert torch.allclose(out[1], torch.full_like(out[1], 204 / 255))


def test_alpha_is_kept_and_bad_names_are_refused():
    target = torch.cat([muted(12), torch.rand(1, 12, 12, 1)], dim=-1)
    out = T.transfer(target, muted(13), "mkl_lab")
    assert out.shape == target.shape and torch.equal(out[..., 3], target[..., 3])
    with pytest.raises(ValueError, match="method"):
        T.transfer(target, target, "nope")
    with pytest.raises(ValueError, match="source_stats"):
        T.transfer(target, target, "histogram", "sometimes")
