"""ldm.imaging.editing and ldm.imaging.morphology against independent references: scipy.ndimage's grey
morphology, the textbook Porter-Duff equations on straight alpha, PIL's Lanczos, and small
tensors worked out by hand."""

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from ldm.imaging import bounding_boxes, editing, morphology


def planes(samples: torch.Tensor):
    """Each [H, W] plane of a [B, C, H, W] tensor as float64 numpy."""
    return [samples[b, c].double().numpy() for b in range(samples.shape[0]) for c in range(samples.shape[1])]


def pil_lanczos(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """PIL's Lanczos of an [H, W, 3] float image through 8-bit pixels, back in 0..1."""
    pixels = np.clip(255.0 * image, 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(pixels).resize((width, height), Image.Resampling.LANCZOS)) / 255.0


# -- morphology --------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
def test_erode_and_dilate_match_scipy_min_max_filters(size):
    samples = torch.rand(2, 3, 9, 11, generator=torch.Generator().manual_seed(size))
    eroded, dilated = morphology.erode(samples, size), morphology.dilate(samples, size)
    assert eroded.shape == samples.shape and dilated.shape == samples.shape
    for plane, got_min, got_max in zip(planes(samples), planes(eroded), planes(dilated)):
        np.testing.assert_allclose(got_min, ndimage.minimum_filter(plane, size=size, mode="nearest"), atol=1e-6)
        np.testing.assert_allclose(got_max, ndimage.maximum_filter(plane, size=size, mode="nearest"), atol=1e-6)


@pytest.mark.parametrize("size", [3, 5, 7])
@pytest.mark.parametrize("operation, reference", [
    ("open", ndimage.grey_opening), ("close", ndimage.grey_closing),
    ("gradient", ndimage.morphological_gradient), ("top_hat", ndimage.white_tophat),
    ("bottom_hat", ndimage.black_tophat),
])
def test_composite_operations_match_scipy_grey_morphology(operation, reference, size):
    samples = torch.rand(1, 2, 12, 10, generator=torch.Generator().manual_seed(7))
    result = morphology.apply(samples, operation, size)
    for plane, got in zip(planes(samples), planes(result)):
        np.testing.assert_allclose(got, reference(plane, size=(size, size), mode="nearest"), atol=1e-6)


def test_morphology_rejects_unknown_operations():
    with pytest.raises(ValueError, match="unknown morphology operation"):
        morphology.apply(torch.zeros(1, 1, 4, 4), "tophat", 3)


# -- Porter-Duff --------------------------------------------------------------------------------

def straight_reference(mode, s, sa, d, da):
    """Porter & Duff's operators on straight colours: (alpha, colour)."""
    fa, fb = {"SRC_OVER": (1, 1 - sa), "DST_OVER": (1 - da, 1), "SRC_IN": (da, 0), "DST_IN": (0, sa),
              "SRC_OUT": (1 - da, 0), "DST_OUT": (0, 1 - sa), "SRC_ATOP": (da, 1 - sa),
              "DST_ATOP": (1 - da, sa), "XOR": (1 - da, 1 - sa), "SRC": (1, 0), "DST": (0, 1)}[mode]
    alpha = sa * fa + da * fb
    premultiplied = s * sa * fa + d * da * fb
    colour = np.where(alpha > 1e-5, premultiplied / np.where(alpha > 1e-5, alpha, 1), 0)
    return alpha, np.clip(colour, 0, 1)


@pytest.mark.parametrize("mode", ["SRC_OVER", "DST_OVER", "SRC_IN", "DST_IN", "SRC_OUT", "DST_OUT",
                                  "SRC_ATOP", "DST_ATOP", "XOR", "SRC", "DST"])
def test_porter_duff_operators_match_the_paper(mode):
    gen = torch.Generator().manual_seed(3)
    s, d = torch.rand(4, 5, 3, generator=gen), torch.rand(4, 5, 3, generator=gen)
    s_mask, d_mask = torch.rand(4, 5, 1, generator=gen), torch.rand(4, 5, 1, generator=gen)
    image, mask = editing.porter_duff(s, s_mask, d, d_mask, mode)
    alpha, colour = straight_reference(mode, s.double().numpy(), 1 - s_mask.double().numpy(),
                                       d.double().numpy(), 1 - d_mask.double().numpy())
    np.testing.assert_allclose(mask.numpy(), 1 - alpha, atol=1e-6)
    np.testing.assert_allclose(image.numpy(), colour, atol=1e-5)


def test_porter_duff_darken_and_clear_by_hand():
    # one pixel: source 0.8 at alpha 0.5, destination 0.4 at alpha 1
    s, d = torch.tensor([[[0.8]]]), torch.tensor([[[0.4]]])
    s_mask, d_mask = torch.tensor([[[0.5]]]), torch.tensor([[[0.0]]])
    image, mask = editing.porter_duff(s, s_mask, d, d_mask, "DARKEN")
    # alpha = .5 + 1 - .5 = 1; colour = (1-1)*.4 + (1-.5)*.4 + min(.4, .4) = .6
    assert mask.item() == pytest.approx(0.0) and image.item() == pytest.approx(0.6)
    image, mask = editing.porter_duff(s, s_mask, d, d_mask, "CLEAR")
    assert mask.item() == 1.0 and image.item() == 0.0


def test_porter_duff_batch_takes_the_shortest_batch_and_resizes_the_source():
    source = torch.rand(3, 2, 2, 3)
    destination = torch.rand(2, 4, 4, 3)
    image, mask = editing.porter_duff_batch(source, torch.zeros(3, 2, 2), destination,
                                              torch.ones(1, 4, 4), "SRC_OVER")
    assert image.shape == (1, 4, 4, 3) and mask.shape == (1, 4, 4)
    # an opaque source over a transparent destination is the (resized) source itself
    assert torch.all(mask == 0)
    with pytest.raises(ValueError, match="same channels"):
        editing.porter_duff_batch(torch.rand(1, 4, 4, 4), torch.zeros(1, 4, 4), destination,
                                    torch.zeros(1, 4, 4), "SRC")


def test_join_and_split_alpha():
    image = torch.rand(2, 3, 4, 3)
    mask = torch.tensor([[0.0, 1.0], [0.25, 0.75]]).expand(3, 2, 2)  # resized to 3x4, batch 3 -> 2
    joined = editing.join_alpha(image, mask)
    assert joined.shape == (2, 3, 4, 4)
    assert torch.equal(joined[..., :3], image)
    expected = 1 - torch.nn.functional.interpolate(mask[:1, None], size=(3, 4), mode="bilinear")[0, 0]
    assert torch.allclose(joined[0, ..., 3], expected)
    rgb, split_mask = editing.split_alpha(joined)
    assert torch.equal(rgb, image) and torch.allclose(split_mask, 1 - joined[..., 3])
    rgb, opaque = editing.split_alpha(image)
    assert torch.equal(rgb, image) and torch.all(opaque == 0) and opaque.shape == (2, 3, 4)


# -- geometry ------------------------------------------------------------------------------------

def solid(batch, height, width, rgb):
    return torch.tensor(rgb, dtype=torch.float32).expand(batch, height, width, len(rgb)).clone()


def test_stitch_places_and_pads_by_hand():
    red, blue = solid(1, 2, 3, [1, 0, 0]), solid(1, 4, 2, [0, 0, 1])
    out = editing.stitch(red, blue, "right", False, 0, "white")
    assert out.shape == (1, 4, 5, 3)
    assert torch.all(out[0, 1:3, :3] == torch.tensor([1.0, 0, 0]))  # red, centred
    assert torch.all(out[0, [0, 3], :3] == 1.0)  # white padding above and below
    assert torch.all(out[0, :, 3:] == torch.tensor([0, 0, 1.0]))
    left = editing.stitch(red, blue, "left", False, 0, "black")
    assert torch.all(left[0, :, :2] == torch.tensor([0, 0, 1.0])) and torch.all(left[0, 0, 2:] == 0)
    down = editing.stitch(red, blue, "down", False, 3, "green")  # spacing 3 -> 4 rows of green
    assert down.shape == (1, 2 + 4 + 4, 3, 3)
    assert torch.all(down[0, 2:6] == torch.tensor([0, 1.0, 0]))
    up = editing.stitch(red, blue, "up", False, 0, "white")
    assert torch.all(up[0, :4, 1:2] == torch.tensor([0, 0, 1.0]))  # blue on top, centred in 3 columns


def test_stitch_matches_size_with_lanczos_and_handles_batches_and_alpha():
    image1 = torch.rand(3, 4, 5, 4)
    image2 = torch.rand(1, 6, 12, 3, generator=torch.Generator().manual_seed(1))
    out = editing.stitch(image1, image2, "right", True, 0, "white")
    # image2 is 12x6 (aspect 2): scaled to image1's height 4 -> 8 wide; batch 1 -> 3; alpha 1
    assert out.shape == (3, 4, 13, 4)
    expected = pil_lanczos(image2[0].numpy(), 8, 4)
    for index in range(3):
        np.testing.assert_allclose(out[index, :, 5:, :3].numpy(), expected, atol=1e-6)
        assert torch.all(out[index, :, 5:, 3] == 1.0)
    assert torch.equal(out[:, :, :5], image1)


def test_resize_and_pad_centres_the_fitted_image():
    image = torch.rand(2, 4, 8, 3)
    out = editing.resize_and_pad(image, 8, 8, 0.0, "nearest-exact")
    assert out.shape == (2, 8, 8, 3)
    assert torch.equal(out[:, 2:6], image) and torch.all(out[:, :2] == 0) and torch.all(out[:, 6:] == 0)
    out = editing.resize_and_pad(image, 5, 4, 1.0, "nearest-exact")  # scale 0.625 -> 5x2, rows 1..2
    assert out.shape == (2, 4, 5, 3) and torch.all(out[:, 0] == 1.0) and torch.all(out[:, 3] == 1.0)


def test_side_sizes():
    assert editing.longer_side_size(300, 200, 150) == (150, 100)
    assert editing.longer_side_size(200, 300, 150) == (100, 150)
    assert editing.shorter_side_size(300, 200, 100) == (150, 100)
    assert editing.shorter_side_size(64, 64, 32) == (32, 32)


def test_scale_to_multiple_cover_crops_to_the_multiple():
    mask = torch.rand(1, 13, 10)
    out = editing.scale_to_multiple_cover(mask, 4, "bilinear")
    assert out.shape == (1, 12, 8)
    same = torch.rand(1, 8, 12, 3)
    assert editing.scale_to_multiple_cover(same, 4, "bilinear") is same


def test_tile_grid_by_hand_and_coverage():
    # width 10, tiles of 4 with overlap 1: step 3, the last tile moved back to end at 10
    assert [t[0] for t in editing.tile_grid(10, 4, 4, 4, 1)] == [0, 3, 6]
    assert editing.tile_grid(10, 4, 4, 4, 1)[-1] == (6, 0, 10, 4)
    assert editing.tile_grid(3, 3, 8, 8, 0) == [(0, 0, 3, 3)]  # a tile larger than the image is cut
    # a huge overlap still steps by a quarter tile
    assert [t[0] for t in editing.tile_grid(16, 8, 8, 8, 100)] == [0, 2, 4, 6, 8]
    covered = np.zeros((23, 37), bool)
    for x0, y0, x1, y1 in editing.tile_grid(37, 23, 10, 8, 3):
        covered[y0:y1, x0:x1] = True
    assert covered.all()


@pytest.mark.parametrize("overlap", [0, 5])
def test_split_then_merge_tiles_gives_the_image_back(overlap):
    image = torch.rand(2, 23, 37, 3)
    tiles = editing.split_tiles(image, 16, 12, overlap)
    assert all(tile.shape == (2, 12, 16, 3) for tile in tiles)
    assert torch.allclose(editing.merge_tiles(tiles, 37, 23, overlap), image, atol=1e-5)


def test_merge_tiles_weights_overlaps_with_a_sine_window():
    # two 1x3 tiles over a 1x4 image (overlap 2): columns 1..2 are shared; window sin(pi*[0,.5,1])
    left, right = torch.zeros(1, 1, 3, 1), torch.ones(1, 1, 3, 1)
    merged = editing.merge_tiles([left, right], 4, 1, 2)
    w0 = 1e-5  # the window's clamped ends
    expected = [0.0, (0 * 1 + 1 * w0) / (1 + w0), (0 * w0 + 1 * 1) / (w0 + 1), 1.0]
    assert torch.allclose(merged.flatten(), torch.tensor(expected), atol=1e-6)


def test_image_grid_places_cells_with_padding():
    frames = [solid(1, 5, 7, rgb) for rgb in ([1, 0, 0], [0, 1, 0], [0, 0, 1])]
    grid = editing.image_grid(frames, 2, 4, 3, 1)
    assert grid.shape == (1, 3 * 2 + 1, 4 * 2 + 1, 3)
    assert torch.all(grid[0, :3, :4] == torch.tensor([1.0, 0, 0]))
    assert torch.all(grid[0, :3, 5:] == torch.tensor([0, 1.0, 0]))
    assert torch.all(grid[0, 4:, :4] == torch.tensor([0, 0, 1.0]))
    assert torch.all(grid[0, 3] == 0) and torch.all(grid[0, :, 4] == 0) and torch.all(grid[0, 4:, 5:] == 0)
    with pytest.raises(ValueError, match="empty"):
        editing.image_grid([], 2, 4, 3, 1)


# -- batches -------------------------------------------------------------------------------------

def test_batch_images_unifies_channels_and_size():
    first, rgb, other = torch.rand(1, 4, 6, 4), torch.rand(2, 4, 6, 3), torch.rand(1, 8, 12, 4)
    out = editing.batch_images([first, rgb, other])
    assert out.shape == (4, 4, 6, 4)
    assert torch.equal(out[0], first[0]) and torch.equal(out[1:3, ..., :3], rgb) and torch.all(out[1:3, ..., 3] == 1)
    # same aspect, half size: bilinear halving of a 2x2 block average
    expected = torch.nn.functional.interpolate(other.movedim(-1, 1), size=(4, 6), mode="bilinear").movedim(1, -1)
    assert torch.allclose(out[3], expected[0])


def test_batch_masks_resizes_to_the_first():
    out = editing.batch_masks([torch.zeros(1, 4, 4), torch.ones(2, 8, 8)])
    assert out.shape == (3, 4, 4) and torch.all(out[1:] == 1)


def frames_of(*counts):
    start, batches = 0, []
    for count in counts:
        batches.append(torch.arange(start, start + count, dtype=torch.float32).reshape(count, 1, 1, 1).expand(count, 2, 2, 3))
        start += count
    return batches


def ids(batches):
    return [b[:, 0, 0, 0].tolist() for b in batches]


def test_rebatch_regroups_across_inputs():
    assert ids(editing.rebatch(frames_of(3, 2), 2)) == [[0, 1], [2, 3], [4]]
    assert ids(editing.rebatch(frames_of(1, 1, 1), 4)) == [[0, 1, 2]]
    # frames of another size start a new batch
    odd = frames_of(1)[0][:, :1]
    assert [b.shape[0] for b in editing.rebatch(frames_of(1) + [odd], 4)] == [1, 1]


def test_rebatch_overlap_repeats_frames_between_outputs():
    assert ids(editing.rebatch(frames_of(6), 4, overlap=2)) == [[0, 1, 2, 3], [2, 3, 4, 5]]
    with pytest.raises(ValueError, match="smaller than the batch size"):
        editing.rebatch(frames_of(6), 2, overlap=2)


@pytest.mark.parametrize("mode, shared", [
    ("truncate start", [1.0, 2.0]),
    ("truncate end", [3.0, 4.0]),
    ("fade linear", [1.0, 4.0]),  # weights 0, 1
])
def test_rebatch_reconciles_the_frames_inputs_share(mode, shared):
    # inputs 0,1,2 and 3,4,5 share two frames: (1,2) vs (3,4)
    out = editing.rebatch(frames_of(3, 3), 10, overlap=2, mode=mode)
    assert ids(out) == [[0.0, *shared, 5.0]]


def test_rebatch_smooth_fade_uses_smoothstep():
    out = editing.rebatch(frames_of(3, 3), 10, overlap=3, mode="fade smooth")
    weight = np.array([0, 0.5, 1.0])
    weight = weight * weight * (3 - 2 * weight)
    np.testing.assert_allclose(ids(out)[0], np.array([0, 1, 2]) * (1 - weight) + np.array([3, 4, 5]) * weight)


# -- crop to mask and duplicates ---------------------------------------------------------------

def test_crop_to_mask_matches_a_hand_crop():
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(5))
    mask = torch.zeros(32, 32)
    mask[8:16, 4:20] = 1.0  # 16 wide, 8 tall
    out = editing.crop_to_mask(image, mask, 48, 48, 1.0, 0, (0.0, 0.0, 1.0))
    # square crop of 16 centred on (11.5, 11.5): columns/rows 3..18
    region = image[3:19, 3:19].numpy()
    cover = mask[3:19, 3:19].numpy()[..., None]
    composite = region * cover + np.array([0, 0, 1.0]) * (1 - cover)
    np.testing.assert_allclose(out[0].numpy(), pil_lanczos(composite, 48, 48), atol=1.5 / 255)


def test_crop_to_mask_inverts_a_background_mask_and_keeps_everything_for_an_empty_one():
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(6))
    subject = torch.zeros(32, 32)
    subject[8:24, 8:24] = 1.0
    direct = editing.crop_to_mask(image, subject, 64, 64, 1.2, 0, (0, 0, 0))
    inverted = editing.crop_to_mask(image, 1.0 - subject, 64, 64, 1.2, 0, (0, 0, 0))
    assert torch.allclose(direct, inverted)
    # an empty mask covers nothing, so its inverse (everything) is the subject
    whole = editing.crop_to_mask(image, torch.zeros(32, 32), 64, 64, 1.0, 0, (0, 0, 0))
    np.testing.assert_allclose(whole[0].numpy(), pil_lanczos(image.numpy(), 64, 64), atol=1.5 / 255)
    # a mask with no clear subject either way keeps the whole frame, blended with the background
    faint = editing.crop_to_mask(image, torch.full((32, 32), 0.5), 64, 64, 1.0, 0, (1.0, 1.0, 1.0))
    np.testing.assert_allclose(faint[0].numpy(), pil_lanczos(0.5 * image.numpy() + 0.5, 64, 64), atol=1.5 / 255)


def test_crop_to_mask_grows_the_mask():
    image = torch.ones(32, 32, 3)
    mask = torch.zeros(32, 32)
    mask[14:18, 14:18] = 1.0
    grown = editing.crop_to_mask(image, mask, 64, 64, 2.0, 2, (0, 0, 0))
    plain = editing.crop_to_mask(image, mask, 64, 64, 2.0, 0, (0, 0, 0))
    # growing by 2 makes the subject 8 pixels wide, crop 16: a white square of half the output
    assert grown[0, 32, :, 0].gt(0.5).sum().item() == pytest.approx(32, abs=2)
    assert plain[0, 32, :, 0].gt(0.5).sum().item() == pytest.approx(32, abs=2)


def test_average_hash_and_near_duplicates():
    half = torch.zeros(16, 16, 3)
    half[:, :8] = 1.0
    bits = editing.average_hash(half).reshape(8, 8)
    assert bits[:, :4].all() and not bits[:, 4:].any()
    gen = torch.Generator().manual_seed(2)
    a, c = torch.rand(24, 24, 3, generator=gen), torch.rand(24, 24, 3, generator=gen)
    assert editing.distinct_indices([a, a.clone(), c, half], 0.95) == [0, 2, 3]
    assert editing.distinct_indices([a, c], 0.0) == [0]


# -- bounding boxes ------------------------------------------------------------------------------

def test_boxes_per_frame_accepts_a_box_a_list_or_a_list_per_frame():
    box = {"x": 1, "y": 2, "width": 3, "height": 4}
    assert bounding_boxes.per_frame(box, 2) == [[box], [box]]
    assert bounding_boxes.per_frame([box, box], 3) == [[box, box]] * 3
    assert bounding_boxes.per_frame([[box], []], 5) == [[box], []]
    assert bounding_boxes.per_frame([], 2) == [[], []]


def test_crop_to_boxes_falls_back_to_the_upper_centre_for_an_empty_box():
    image = torch.rand(1, 50, 100, 3)
    out = bounding_boxes.crop_to_boxes(image, {"x": 10, "y": 10, "width": 0, "height": 5}, 15, 15, 0, False)
    # 30 % of the short side (15 pixels), centred horizontally, 10 % (5 rows) from the top
    assert torch.allclose(out, image[:, 5:20, 42:57])
    assert bounding_boxes.crop_to_boxes(image, [[]], 8, 8, 0, False) is None
    # padding grows the union but stays inside the image
    grown = bounding_boxes.crop_to_boxes(image, {"x": 2, "y": 3, "width": 4, "height": 4}, 10, 9, 2, False)
    expected = torch.nn.functional.interpolate(image[:, 1:9, 0:8].movedim(-1, 1), size=(9, 10), mode="area")
    assert torch.allclose(grown, expected.movedim(1, -1), atol=1e-6)
