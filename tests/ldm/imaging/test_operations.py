import math

import pytest
import torch
import torch.nn.functional as F

from ldm.imaging import operations as imaging


def ramp_image(batch=1, height=6, width=8, channels=3):
    values = torch.linspace(0, 1, batch * height * width * channels)
    return values.reshape(batch, height, width, channels)


# -- batches ---------------------------------------------------------------------------------------

def test_repeat_to_batch_cuts_and_cycles():
    t = torch.arange(3).reshape(3, 1)
    assert imaging.repeat_to_batch(t, 2).flatten().tolist() == [0, 1]
    assert imaging.repeat_to_batch(t, 7).flatten().tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert imaging.repeat_to_batch(t, 3) is t
    with pytest.raises(ValueError):
        imaging.repeat_to_batch(t[:0], 2)


def test_match_channels_adds_opaque_alpha():
    rgb, rgba = torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 2, 4)
    a, b = imaging.match_channels(rgb, rgba)
    assert a.shape[-1] == 4 and torch.all(a[..., 3] == 1) and b is rgba
    a, b = imaging.match_channels(rgba, rgb)
    assert b.shape[-1] == 4 and a is rgba


# -- resampling --------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["nearest-exact", "bilinear", "area", "bicubic", "bislerp", "lanczos"])
def test_resample_shapes_and_constant_images(method):
    samples = torch.full((2, 3, 5, 7), 0.25)
    out = imaging.resample(samples, 11, 4, method)
    assert out.shape == (2, 3, 4, 11)
    # lanczos goes through 8-bit pixels: 0.25 * 255 = 63.75 truncates to 63
    expected = 63 / 255 if method == "lanczos" else 0.25
    assert torch.allclose(out, torch.full_like(out, expected), atol=1e-6)


def test_resample_matches_torch_interpolate():
    samples = torch.rand(1, 4, 6, 6)
    assert torch.equal(imaging.resample(samples, 9, 3, "bicubic"),
                       F.interpolate(samples, size=(3, 9), mode="bicubic"))


def test_resample_rejects_bad_requests():
    samples = torch.rand(1, 3, 4, 4)
    with pytest.raises(ValueError):
        imaging.resample(samples, 4, 4, "sinc")
    with pytest.raises(ValueError):
        imaging.resample(samples, 0, 4, "bilinear")
    with pytest.raises(ValueError):
        imaging.resample(samples, 4, 4, "bilinear", crop="top")
    with pytest.raises(ValueError):
        imaging.resample(torch.rand(1, 3, 0, 4), 4, 4, "bilinear")
    assert imaging.resample(torch.rand(0, 3, 4, 4), 2, 2, "bilinear").shape == (0, 3, 2, 2)


def test_center_crop_keeps_the_middle():
    samples = torch.arange(8.0).reshape(1, 1, 1, 8).expand(1, 1, 2, 8)
    cropped = imaging.center_crop_to_aspect(samples, 4, 2)  # 8x2 -> aspect 2: cut 2 columns each side
    assert cropped[0, 0, 0].tolist() == [2, 3, 4, 5]
    tall = torch.zeros(1, 1, 10, 2)
    assert imaging.center_crop_to_aspect(tall, 2, 2).shape == (1, 1, 2, 2)


def test_center_crop_resample_of_image_layout():
    image = ramp_image(1, 4, 8)
    out = imaging.resample_image(image, 4, 4, "nearest-exact", "center")
    assert out.shape == (1, 4, 4, 3)
    assert torch.equal(out, image[:, :, 2:6, :])


def test_bislerp_identity_at_same_size_and_preserves_norms_of_parallel_vectors():
    latent = torch.randn(1, 4, 5, 6, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(imaging.bislerp(latent, 6, 5), latent, atol=1e-6)
    # every pixel points the same way with magnitudes 1 and 3: slerp keeps the direction
    direction = torch.tensor([1.0, 2.0, 2.0, 0.0]) / 3
    scale = torch.tensor([[1.0, 3.0]])
    two = direction[None, :, None, None] * scale[None, None]  # [1, 4, 1, 2]
    out = imaging.bislerp(two, 4, 1)
    assert torch.allclose(out / out.norm(dim=1, keepdim=True), direction[None, :, None, None].expand_as(out),
                          atol=1e-6)


def test_bislerp_interpolates_angle_and_length():
    low = torch.tensor([1.0, 0.0])
    high = torch.tensor([0.0, 2.0])
    pair = torch.stack([low, high], dim=-1)[None, :, None, :]  # [1, 2, 1, 2]
    out = imaging.bislerp(pair, 4, 1)[0, :, 0, :].T  # 4 vectors
    # taps at source positions 0, 0.25, 0.75, 1 (half-pixel convention)
    for vector, ratio in zip(out, [0.0, 0.25, 0.75, 1.0]):
        angle = math.atan2(vector[1].item(), vector[0].item())
        assert angle == pytest.approx(ratio * math.pi / 2, abs=1e-5)
        assert vector.norm().item() == pytest.approx(1 + ratio, abs=1e-5)


def test_bislerp_zero_vectors_do_not_make_nan():
    out = imaging.bislerp(torch.zeros(1, 4, 2, 2), 5, 3)
    assert out.shape == (1, 4, 3, 5) and not torch.isnan(out).any()


def test_lanczos_handles_rgba_and_odd_channel_counts():
    assert imaging.lanczos(torch.rand(1, 4, 6, 6), 3, 3).shape == (1, 4, 3, 3)
    out = imaging.lanczos(torch.full((2, 2, 6, 6), 1.0), 12, 3)
    assert out.shape == (2, 2, 3, 12) and torch.allclose(out, torch.ones_like(out))


def test_fit_size_and_total_pixels():
    assert imaging.fit_size(0, 100, 200, 50) == (400, 100)
    assert imaging.fit_size(30, 0, 200, 50) == (30, 8)
    assert imaging.fit_size(0, 8, 8, 64, minimum=64) == (64, 64)
    assert imaging.fit_size(16, 700, 1, 1, minimum=64) == (64, 700)
    assert imaging.total_pixels_size(512, 512, 1.0) == (1024, 1024)
    assert imaging.total_pixels_size(100, 50, 0.01) == (145, 72)  # sqrt(10485 / 5000) = 1.448
    assert imaging.total_pixels_size(1000, 600, 1.0, 64) == (1344, 768)


# -- filters -----------------------------------------------------------------------------------------

def test_gaussian_kernel_is_normalised_and_symmetric():
    kernel = imaging.gaussian_kernel(5, 1.0)
    assert kernel.sum().item() == pytest.approx(1.0)
    assert torch.allclose(kernel, kernel.T) and torch.allclose(kernel, kernel.flip(0))
    assert kernel[2, 2] == kernel.max()


def test_blur_keeps_constants_and_smooths_a_spike():
    flat = torch.full((1, 6, 6, 3), 0.4)
    assert torch.allclose(imaging.blur(flat, 2, 1.0), flat)
    spike = torch.zeros(1, 7, 7, 1)
    spike[0, 3, 3, 0] = 1.0
    out = imaging.blur(spike, 1, 1.0)
    assert out.shape == spike.shape
    assert out.sum().item() == pytest.approx(1.0, abs=1e-6)  # away from the border nothing is lost
    assert torch.allclose(out[0, 2:5, 2:5, 0], imaging.gaussian_kernel(3, 1.0))


def test_blur_reflects_at_the_border():
    edge = torch.zeros(1, 5, 5, 1)
    edge[0, :, 0, 0] = 1.0
    out = imaging.blur(edge, 1, 1.0)
    kernel = imaging.gaussian_kernel(3, 1.0)
    # reflect padding mirrors column 1 into column -1, not column 0
    assert out[0, 2, 0, 0].item() == pytest.approx(kernel[:, 1].sum().item(), abs=1e-6)


def test_blur_of_images_smaller_than_the_radius():
    tiny = torch.rand(1, 2, 3, 3)
    out = imaging.blur(tiny, 5, 2.0)
    assert out.shape == tiny.shape and not torch.isnan(out).any()
    assert imaging.blur(torch.zeros(0, 4, 4, 3), 1, 1.0).shape == (0, 4, 4, 3)


def test_sharpen_keeps_constants_and_alpha_zero_is_identity():
    flat = torch.full((1, 5, 5, 3), 0.3)
    assert torch.allclose(imaging.sharpen(flat, 1, 1.0, 2.0), flat, atol=1e-6)
    image = torch.rand(2, 6, 6, 3, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(imaging.sharpen(image, 2, 1.0, 0.0), image, atol=1e-6)


def test_sharpen_increases_local_contrast_and_clamps():
    step = torch.zeros(1, 6, 6, 1)
    step[:, 3:] = 0.5  # rows 3.. are grey
    out = imaging.sharpen(step, 1, 1.0, 1.0)
    assert out[0, 3, 1, 0] > 0.5 and out[0, 2, 1, 0] == 0.0
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("mode, expected", [
    ("normal", 0.8), ("multiply", 0.16), ("screen", 0.84), ("overlay", 0.32),
    ("soft_light", 0.2 + (1.6 - 1) * (((16 * 0.2 - 12) * 0.2 + 4) * 0.2 - 0.2)),  # D(a) for a <= 1/4
    ("difference", 0.0),
])
def test_blend_modes(mode, expected):
    base, layer = torch.full((1, 2, 2, 3), 0.2), torch.full((1, 2, 2, 3), 0.8)
    out = imaging.blend(base, layer, 1.0, mode)
    assert out[0, 0, 0, 0].item() == pytest.approx(expected, abs=1e-6)


def test_blend_factor_mixes_with_the_first_image_and_resizes_the_second():
    base = torch.full((2, 4, 4, 3), 0.2)
    layer = torch.full((1, 2, 3, 3), 0.6)
    out = imaging.blend(base, layer, 0.25, "normal")
    assert out.shape == (2, 4, 4, 3)
    assert torch.allclose(out, torch.full_like(out, 0.2 * 0.75 + 0.6 * 0.25))
    with pytest.raises(ValueError):
        imaging.blend(base, layer, 0.5, "dodge")


def test_blend_keeps_the_alpha_of_an_rgba_base():
    base = torch.full((1, 2, 2, 4), 0.5)
    base[..., 3] = 0.3
    out = imaging.blend(base, torch.ones(1, 2, 2, 3), 1.0, "normal")
    assert torch.allclose(out[..., 3], torch.full((1, 2, 2), 0.3))
    assert torch.allclose(out[..., :3], torch.ones(1, 2, 2, 3))


# -- compositing -------------------------------------------------------------------------------------

def test_composite_places_the_source_and_clips_it():
    destination = torch.zeros(1, 1, 4, 6)
    source = torch.ones(1, 1, 3, 3)
    out = imaging.composite(destination, source, 4, 2)
    assert out[0, 0].tolist() == [[0] * 6, [0] * 6, [0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 1, 1]]
    assert torch.equal(destination, torch.zeros(1, 1, 4, 6))  # input untouched
    assert torch.equal(imaging.composite(destination, source, 100, 0), destination)


def test_composite_negative_offsets_clip_the_source_start():
    source = torch.arange(9.0).reshape(1, 1, 3, 3)
    out = imaging.composite(torch.zeros(1, 1, 3, 3), source, -1, -2)
    assert out[0, 0, 0].tolist() == [7, 8, 0]


def test_composite_latent_multiplier_and_mask():
    destination = torch.zeros(2, 4, 4, 4)
    source = torch.ones(1, 4, 2, 2)
    mask = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    out = imaging.composite(destination, source, 16, 8, mask, multiplier=8)
    assert out[:, :, 1:3, 2:4].tolist() == [[[[1.0, 0.0], [0.5, 1.0]]] * 4] * 2
    assert out.sum().item() == pytest.approx(2 * 4 * 2.5)


def test_composite_resizes_the_mask_to_the_source_and_can_resize_the_source():
    destination = torch.zeros(1, 3, 4, 4)
    source = torch.ones(1, 3, 2, 2)
    out = imaging.composite(destination, source, 0, 0, torch.ones(1, 8, 8), resize_source=True)
    assert torch.equal(out, torch.ones(1, 3, 4, 4))


def test_composite_feathered_ramps_inner_edges_only():
    destination = torch.zeros(1, 1, 6, 6)
    source = torch.ones(1, 1, 4, 4)
    out = imaging.composite_feathered(destination, source, 0, 2, 2)
    # pasted rows 2..5, columns 0..3; top edge (y != 0) and right edge (x + 4 < 6) feather
    assert out[0, 0, 2, :4].tolist() == pytest.approx([0.5, 0.5, 0.5, 0.25])
    assert out[0, 0, 5, :4].tolist() == pytest.approx([1.0, 1.0, 1.0, 0.5])
    assert out[0, 0, :2].abs().sum() == 0 and out[0, 0, :, 4:].abs().sum() == 0
    hard = imaging.composite_feathered(destination, source * 3, 4, 4, 0)
    assert hard[0, 0, 4:, 4:].tolist() == [[3, 3], [3, 3]]


def reference_outpaint_mask(height, width, left, top, right, bottom, feathering):
    """The padding mask computed pixel by pixel, as the node's description states it."""
    mask = torch.ones(height + top + bottom, width + left + right)
    inner = torch.zeros(height, width)
    if feathering > 0 and feathering * 2 < height and feathering * 2 < width:
        for i in range(height):
            for j in range(width):
                d = min(i if top else height, height - i if bottom else height,
                        j if left else width, width - j if right else width)
                if d < feathering:
                    inner[i, j] = ((feathering - d) / feathering) ** 2
    mask[top:top + height, left:left + width] = inner
    return mask[None]


@pytest.mark.parametrize("margins, feathering", [((8, 0, 0, 0), 3), ((0, 8, 8, 8), 2), ((8, 8, 8, 8), 0),
                                                 ((0, 0, 16, 0), 5), ((8, 0, 0, 8), 6)])
def test_pad_for_outpaint(margins, feathering):
    left, top, right, bottom = margins
    image = torch.rand(2, 10, 12, 3)
    padded, mask = imaging.pad_for_outpaint(image, left, top, right, bottom, feathering)
    assert padded.shape == (2, 10 + top + bottom, 12 + left + right, 3)
    assert torch.equal(padded[:, top:top + 10, left:left + 12], image)
    assert torch.all(padded[:, :top] == 0.5) and torch.all(padded[:, :, :left] == 0.5)
    assert torch.allclose(mask, reference_outpaint_mask(10, 12, left, top, right, bottom, feathering))


# -- masks -------------------------------------------------------------------------------------------

def test_feather_edges_multiplies_ramps():
    mask = torch.ones(1, 3, 4)
    out = imaging.feather_edges(mask, 2, 0, 1, 3)
    assert out[0, 0].tolist() == pytest.approx([0.5, 1.0, 1.0, 1.0])  # right=1 leaves the last column alone
    assert out[0, 2].tolist() == pytest.approx([1 / 6, 1 / 3, 1 / 3, 1 / 3])  # bottom=3: last row x 1/3
    assert imaging.feather_edges(torch.ones(4, 4), 9, 0, 0, 0).shape == (1, 4, 4)  # clamped to the width


def test_grow_and_shrink():
    mask = torch.zeros(1, 5, 5)
    mask[0, 2, 2] = 1.0
    cross = imaging.grow(mask, 1, True)
    assert cross[0].tolist() == [[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    square = imaging.grow(mask, 1, False)
    assert square[0, 1:4, 1:4].sum() == 9 and square.sum() == 9
    assert torch.equal(imaging.grow(square, -1, False), mask)
    assert imaging.grow(mask, 2, True).sum() == 13  # a diamond of radius 2
    assert torch.equal(imaging.grow(mask, 0, True), mask)


def test_grow_keeps_grey_levels_and_repeats_the_border():
    mask = torch.tensor([[[0.2, 0.7, 0.1]]])
    assert imaging.grow(mask, 1, True)[0, 0].tolist() == pytest.approx([0.7, 0.7, 0.7])
    assert imaging.grow(mask, -1, True)[0, 0].tolist() == pytest.approx([0.2, 0.1, 0.1])
    assert imaging.grow(torch.zeros(0, 3, 3), 3, True).shape == (0, 3, 3)


@pytest.mark.parametrize("operation, expected", [
    ("multiply", [0.7 * 0.6, 0.0]), ("add", [1.0, 0.4]), ("subtract", [0.1, 0.4]),
    ("and", [1.0, 0.0]), ("or", [1.0, 0.0]), ("xor", [0.0, 0.0]),
])
def test_combine_masks(operation, expected):
    destination = torch.tensor([[[0.7, 0.4, 0.9]]])
    source = torch.tensor([[0.6, 0.0]])
    out = imaging.combine_masks(destination, source, 0, 0, operation)
    assert out[0, 0, :2].tolist() == pytest.approx(expected)
    assert out[0, 0, 2].item() == pytest.approx(0.9)  # outside the source


def test_combine_masks_offsets_clipping_and_batches():
    destination = torch.zeros(1, 3, 3)
    source = torch.ones(2, 2, 2)
    out = imaging.combine_masks(destination, source, 2, 1, "add")
    assert out.shape == (2, 3, 3)
    assert out[0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 1]]
    assert torch.equal(imaging.combine_masks(destination, source, 5, 5, "add"), torch.zeros(2, 3, 3))
    with pytest.raises(ValueError):
        imaging.combine_masks(destination, source, 0, 0, "nand")


def test_boolean_mask_operations_round_half_to_even():
    half, one = torch.full((1, 1, 1), 0.5), torch.ones(1, 1, 1)
    assert imaging.combine_masks(half, one, 0, 0, "and").item() == 0.0  # 0.5 rounds to 0
    assert imaging.combine_masks(half, one, 0, 0, "xor").item() == 1.0


def test_color_to_mask_and_solid_color():
    image = imaging.solid_color(2, 1, 1, 0x123456)
    assert image.shape == (1, 1, 2, 3)
    assert image[0, 0, 0].tolist() == pytest.approx([0x12 / 255, 0x34 / 255, 0x56 / 255])
    image[0, 0, 1] = 0.0
    assert imaging.color_to_mask(image, 0x123456).tolist() == [[[1.0, 0.0]]]
    assert imaging.color_to_mask(image, 0).tolist() == [[[0.0, 1.0]]]


# -- latent batches ----------------------------------------------------------------------------------

def test_take_from_batch_indices_and_masks():
    samples = torch.arange(5.0).reshape(5, 1, 1, 1)
    masks = torch.arange(2.0).reshape(2, 1, 1, 1)
    taken, mask, indices = imaging.take_from_batch(samples, masks, None, 2, 2)
    assert taken.flatten().tolist() == [2, 3] and indices == [2, 3]
    assert mask.flatten().tolist() == [0, 1]  # masks repeat cyclically: 0 1 0 1 0
    _, _, indices = imaging.take_from_batch(samples, None, [10, 11, 12, 13, 14], 3, 9)
    assert indices == [13, 14]
    taken, one_mask, indices = imaging.take_from_batch(samples, masks[:1], None, 99, 4)
    assert taken.flatten().tolist() == [4] and indices == [4] and one_mask.shape[0] == 1


def test_repeat_batch_offsets_indices_and_repeats_masks():
    samples = torch.arange(2.0).reshape(2, 1, 1, 1)
    repeated, mask, indices = imaging.repeat_batch(samples, None, [3, 4], 3)
    assert repeated.flatten().tolist() == [0, 1, 0, 1, 0, 1]
    assert indices == [3, 4, 5, 6, 7, 8] and mask is None
    masks = torch.arange(3.0).reshape(3, 1, 1)
    _, mask, indices = imaging.repeat_batch(torch.zeros(4, 1, 1, 1), masks, None, 2)
    assert mask.flatten().tolist() == [0, 1, 2, 0, 0, 1, 2, 0] and indices is None
    single = torch.ones(1, 1, 2, 2)
    assert imaging.repeat_batch(samples, single, None, 2)[1] is single
