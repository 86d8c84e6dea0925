"""nodes.datasets: ComfyUI's dataset nodes, each against a NumPy / PIL reference computed here, and
the image-list pipeline run through the executor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from graph.protocol import describe
from graph.registry import NodeRegistry
from ldm.model import assemble_checkpoint
from ldm.tiny import tiny_checkpoint
from nodes import datasets as dn
from tests.nodes.prompt_support import run_prompt


def _pixels(seed: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _write(path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _as_image(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels.astype(np.float32) / 255.0)[None]


def _reference_8bit(image: torch.Tensor) -> Image.Image:
    """ComfyUI's tensor -> picture: x·255 truncated to uint8."""
    return Image.fromarray((image[0].numpy() * 255).clip(0, 255).astype(np.uint8))


@pytest.fixture
def images():
    """Three random images of different sizes (as IMAGE [1, H, W, 3])."""
    return [_as_image(_pixels(i, h, w)) for i, (h, w) in enumerate([(12, 20), (20, 12), (16, 16)])]


# -- schemas ---------------------------------------------------------------------------------------------

def test_every_node_registers_with_comfyuis_names():
    registry = NodeRegistry()
    assert registry.register_mappings(dn.NODE_CLASS_MAPPINGS, dn.NODE_DISPLAY_NAME_MAPPINGS, core=True) == {}
    info = registry.object_info()
    assert describe("ShuffleDataset", dn.ShuffleDataset).input_is_list
    assert info["ShuffleDataset"]["output_is_list"] == [True]
    assert info["CenterCropImages"]["output_is_list"] == [False]
    assert not describe("CenterCropImages", dn.CenterCropImages).input_is_list
    assert info["ResolutionBucket"]["output_name"] == ["latents", "conditioning"]
    assert info["ResolutionBucket"]["category"] == "model/training"
    assert info["SaveImageDataSetToFolder"]["deprecated"] and info["SaveImageDataSetToFolder"]["output_node"]
    assert info["AdjustBrightness"]["category"] == "image/adjustments"
    assert list(info["SaveImageTextDataSetToFolder"]["input"]["optional"]) == ["texts"]
    assert info["RandomCropImages"]["input"]["required"]["seed"][1]["max"] == 0xFFFFFFFFFFFFFFFF
    assert info["LoadImageTextSetFromFolderNode"]["output"] == ["IMAGE", "CONDITIONING"]
    assert describe("LoadImageSetNode", dn.LoadImageSetNode).input_is_list


# -- loading ---------------------------------------------------------------------------------------------

def test_folder_loaders_read_images_and_kohya_captions(node_services):
    root = node_services.folders.input / "set"
    first, second, third = _pixels(1, 6, 8), _pixels(2, 10, 4), _pixels(3, 5, 5)
    _write(root / "a.png", first)
    (root / "a.txt").write_text("  a caption \n", encoding="utf-8")
    _write(root / "b.jpg", second)
    (root / "notes.md").write_text("not an image")
    _write(root / "3_cats" / "c.png", third)
    (root / "3_cats" / "c.txt").write_text("cat", encoding="utf-8")
    assert "set" in dn.LoadImageDataSetFromFolder.INPUT_TYPES()["required"]["folder"][0]

    (loaded,) = dn.LoadImageDataSetFromFolder().load("set")
    assert len(loaded) == 2  # the top folder only
    np.testing.assert_array_equal(loaded[0][0].numpy(), first.astype(np.float32) / 255.0)
    jpeg = np.asarray(Image.open(root / "b.jpg").convert("RGB"), dtype=np.float32) / 255.0
    np.testing.assert_array_equal(loaded[1][0].numpy(), jpeg)

    pictures, texts = dn.LoadImageTextDataSetFromFolder().load("set")
    assert texts == ["cat", "cat", "cat", "a caption", ""]  # "3_cats" repeats its images three times
    np.testing.assert_allclose(pictures[0][0].numpy(), third / 255.0)


def test_32_bit_images_are_scaled_by_one_255th(node_services):
    values = np.array([[0, 255 * 100, 255 * 200]], dtype=np.int32)
    Image.fromarray(values, mode="I").save(node_services.folders.input / "deep.tif")
    (loaded,) = dn.LoadImageSetNode().load_images(["deep.tif"], ["None"])
    np.testing.assert_allclose(loaded[0, :, :, 0].numpy(), [[0.0, 100 / 255, 200 / 255]])


def test_image_set_loaders_resize_to_the_first_image(node_services):
    root = node_services.folders.input / "sizes"
    big, small = _pixels(4, 12, 10), _pixels(5, 6, 8)
    _write(root / "1.png", big)
    _write(root / "2.png", small)
    with pytest.raises(ValueError, match="does not match the first image"):
        dn.LoadImageSetFromFolderNode().load_images("sizes", "None")
    (stretched,) = dn.LoadImageSetFromFolderNode().load_images("sizes", "Stretch")
    reference = np.asarray(Image.fromarray(small).resize((10, 12), Image.Resampling.LANCZOS), dtype=np.float32)
    np.testing.assert_allclose(stretched[1].numpy(), reference / 255.0)
    (cropped,) = dn.LoadImageSetFromFolderNode().load_images("sizes", "Crop")
    # PIL pads a crop past the edge with black.
    expected = np.zeros((12, 10, 3), dtype=np.float32)
    expected[:6, :8] = small / 255.0
    np.testing.assert_allclose(cropped[1].numpy(), expected)

    _write(node_services.folders.input / "top.png", big)
    assert "top.png" in dn.LoadImageSetNode.INPUT_TYPES()["required"]["images"][0]
    assert dn.LoadImageSetNode.VALIDATE_INPUTS(["top.png", "missing.png"]) == "Invalid image file: missing.png"
    (batch,) = dn.LoadImageSetNode().load_images(["top.png", "top.png"], ["None"])
    assert batch.shape == (2, 12, 10, 3)
    (batch,) = dn.LoadImageSetNode().load_images([["top.png", "top.png", "top.png"]], ["None"])  # one batch literal
    assert batch.shape == (3, 12, 10, 3)


def test_image_text_set_loader_encodes_one_caption_per_image(node_services):
    state_dict, metadata = tiny_checkpoint("sd1", dtype=torch.float32)
    _, clip, _ = assemble_checkpoint(state_dict, metadata, "tiny")
    root = node_services.folders.input / "captioned"
    _write(root / "a.png", _pixels(6, 8, 8))
    (root / "a.txt").write_text("a red square")
    _write(root / "b.png", _pixels(7, 8, 8))
    batch, conditioning = dn.LoadImageTextSetFromFolderNode().load_images("captioned", clip, "Stretch", 4, 4)
    assert batch.shape == (2, 4, 4, 3) and len(conditioning) == 2
    for entry, text in zip(conditioning, ["a red square", ""]):
        torch.testing.assert_close(entry[0], clip.encode_from_tokens_scheduled(clip.tokenize(text))[0][0])


# -- transforms ------------------------------------------------------------------------------------------

def test_resizes_match_pil_lanczos(images):
    wide = images[0]  # 12 x 20
    (shorter,) = dn.ResizeImagesByShorterEdge().process(wide, shorter_edge=6)
    reference = _reference_8bit(wide).resize((int(20 * 6 / 12), 6), Image.Resampling.LANCZOS)
    np.testing.assert_allclose(shorter[0].numpy(), np.asarray(reference, dtype=np.float32) / 255.0)
    (longer,) = dn.ResizeImagesByLongerEdge().process(images[1], longer_edge=7)  # 20 x 12
    reference = _reference_8bit(images[1]).resize((int(12 * 7 / 20), 7), Image.Resampling.LANCZOS)
    np.testing.assert_allclose(longer[0].numpy(), np.asarray(reference, dtype=np.float32) / 255.0)


def test_crops_match_numpy_slices(images):
    batch = torch.cat([images[2], images[2].flip(1)])  # two frames, 16 x 16
    eight_bit = (batch.numpy() * 255).clip(0, 255).astype(np.uint8).astype(np.float32) / 255.0
    (center,) = dn.CenterCropImages().process(batch, width=6, height=9)
    np.testing.assert_allclose(center.numpy(), eight_bit[:, 3:12, 5:11])
    (whole,) = dn.CenterCropImages().process(images[0], width=100, height=4)
    assert whole.shape == (1, 4, 20, 3)

    (random,) = dn.RandomCropImages().process(batch, width=5, height=7, seed=2**32 + 6)
    np.random.seed((2**32 + 6) % (2**32 - 1))
    left, top = np.random.randint(0, 12), np.random.randint(0, 10)
    np.testing.assert_allclose(random.numpy(), eight_bit[:, top:top + 7, left:left + 5])  # same window per frame


def test_colour_arithmetic(images):
    image = images[2]
    values = image.numpy()
    (normalized,) = dn.NormalizeImages().process(image, mean=0.25, std=0.5)
    np.testing.assert_allclose(normalized.numpy(), (values - 0.25) / 0.5, rtol=1e-6)
    (brighter,) = dn.AdjustBrightness().process(image, factor=1.7)
    np.testing.assert_allclose(brighter.numpy(), np.clip(values * 1.7, 0, 1), rtol=1e-6)
    (contrast,) = dn.AdjustContrast().process(image, factor=1.5)
    np.testing.assert_allclose(contrast.numpy(), np.clip((values - 0.5) * 1.5 + 0.5, 0, 1), rtol=1e-6, atol=1e-7)


def test_shuffles_follow_numpys_seeded_permutation(images):
    batch = torch.cat([images[2], images[2] * 0.5])
    (shuffled,) = dn.ShuffleDataset().shuffle([images[0], batch, images[1]], [7])
    frames = [images[0], batch[:1], batch[1:], images[1]]
    np.random.seed(7)
    order = np.random.permutation(4)
    assert all(torch.equal(a, frames[i]) for a, i in zip(shuffled, order))

    texts = ["zero", "one", "two"]
    pictures, captions = dn.ShuffleImageTextDataset().shuffle(images, texts, [3])
    np.random.seed(3)
    order = np.random.permutation(3)
    assert captions == [texts[i] for i in order]
    assert all(torch.equal(p, images[i]) for p, i in zip(pictures, order))


# -- saving ----------------------------------------------------------------------------------------------

def test_saving_lists_to_folders(node_services, images):
    dn.SaveImageTextDataSetToFolder().save([images[0], torch.cat([images[2], images[2]])], ["out"], ["img"],
                                           ["overwrite"], texts=["first", "second", "third"])
    folder = node_services.folders.output / "out"
    assert sorted(p.name for p in folder.iterdir()) == [
        "img_00000.png", "img_00000.txt", "img_00001.png", "img_00001.txt", "img_00002.png", "img_00002.txt"]
    assert (folder / "img_00002.txt").read_text() == "third"
    saved = np.asarray(Image.open(folder / "img_00000.png"), dtype=np.float32) / 255.0
    np.testing.assert_allclose(saved, np.asarray(_reference_8bit(images[0]), dtype=np.float32) / 255.0)

    for _ in range(2):
        dn.SaveImageDataSetToFolder().save([images[1]], ["out"], ["inc"], ["increment"])
    assert (folder / "inc_00001_00000.png").is_file() and (folder / "inc_00002_00000.png").is_file()
    with pytest.raises(ValueError):
        dn.SaveImageDataSetToFolder().save([images[1]], ["../escape"], ["x"], ["overwrite"])


def test_list_pipeline_through_the_executor(node_services, images):
    root = node_services.folders.input / "pipe"
    for index in range(3):
        _write(root / f"{index}.png", _pixels(10 + index, 6, 6))
    registry = NodeRegistry()
    registry.register_mappings(dn.NODE_CLASS_MAPPINGS, dn.NODE_DISPLAY_NAME_MAPPINGS, core=True)
    prompt = {
        "1": {"class_type": "LoadImageDataSetFromFolder", "inputs": {"folder": "pipe"}},
        "2": {"class_type": "AdjustBrightness", "inputs": {"images": ["1", 0], "factor": 0.5}},
        "3": {"class_type": "ShuffleDataset", "inputs": {"images": ["2", 0], "seed": 1}},
        "4": {"class_type": "SaveImageDataSetToFolder",
              "inputs": {"images": ["3", 0], "folder_name": "piped", "filename_prefix": "p", "mode": "overwrite"}},
    }
    run_prompt(registry, prompt, node_services)
    np.random.seed(1)
    order = np.random.permutation(3)
    for saved_index, source_index in enumerate(order):
        saved = np.asarray(Image.open(node_services.folders.output / "piped" / f"p_{saved_index:05d}.png"))
        expected = (_pixels(10 + source_index, 6, 6).astype(np.float32) / 255.0 * 0.5 * 255).astype(np.uint8)
        np.testing.assert_array_equal(saved, expected)


# -- training sets ---------------------------------------------------------------------------------------

def _cond(value: float) -> list:
    return [[torch.full((1, 2, 3), value), {"pooled_output": torch.full((1, 3), value)}]]


def test_resolution_buckets_group_by_size_in_first_seen_order():
    small = torch.randn(2, 4, 8, 8)
    large = torch.randn(1, 4, 8, 16)
    conds = [_cond(0) + _cond(1), _cond(2)]
    latents, conditioning = dn.ResolutionBucket().bucket(
        [{"samples": small[:1]}, {"samples": large}, {"samples": small[1:]}], [_cond(0), _cond(2), _cond(1)])
    assert [tuple(item["samples"].shape) for item in latents] == [(2, 4, 8, 8), (1, 4, 8, 16)]
    torch.testing.assert_close(latents[0]["samples"], small)
    assert [[float(c[0].flatten()[0]) for c in group] for group in conditioning] == [[0.0, 1.0], [2.0]]
    assert len(conds) == 2
    with pytest.raises(ValueError, match="does not match"):
        dn.ResolutionBucket().bucket([{"samples": small}], [])


def test_training_set_round_trip_through_shards(node_services):
    latents = [{"samples": torch.randn(1, 4, 8, 8)} for _ in range(3)]
    conditioning = [_cond(float(i)) for i in range(3)]
    dn.SaveTrainingDataset().save(latents, conditioning, ["project/run1"], [2])
    folder = node_services.folders.base / "datasets" / "project" / "run1"
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json", "shard_0000.pkl", "shard_0001.pkl"]
    assert json.loads((folder / "metadata.json").read_text()) == {"num_samples": 3, "num_shards": 2, "shard_size": 2}
    (folder.parent / "notes").mkdir()
    assert dn.LoadTrainingDataset.INPUT_TYPES()["required"]["folder_name"][0] == ["project/run1"]
    loaded_latents, loaded_conditioning = dn.LoadTrainingDataset().load("project/run1")
    assert all(torch.equal(a["samples"], b["samples"]) for a, b in zip(loaded_latents, latents))
    assert all(torch.equal(a[0][1]["pooled_output"], b[0][1]["pooled_output"])
               for a, b in zip(loaded_conditioning, conditioning))
    with pytest.raises(ValueError, match="not found"):
        dn.LoadTrainingDataset().load("absent")
    with pytest.raises(ValueError, match="must name a subfolder"):
        dn.SaveTrainingDataset().save(latents, conditioning, ["."], [2])
    with pytest.raises(ValueError):
        dn.SaveTrainingDataset().save(latents, conditioning, ["../outside"], [2])


def test_make_training_dataset_encodes_with_vae_and_clip(node_services, images):
    state_dict, metadata = tiny_checkpoint("sd1", dtype=torch.float32)
    _, clip, vae = assemble_checkpoint(state_dict, metadata, "tiny")
    pictures = [images[2], images[2].flip(2)]
    latents, conditioning = dn.MakeTrainingDataset().make(pictures, [vae], [clip], texts=["a cat"])
    assert len(latents) == len(conditioning) == 2
    torch.testing.assert_close(latents[1]["samples"], vae.encode(pictures[1]))
    expected = clip.encode_from_tokens_scheduled(clip.tokenize("a cat"))[0][0]
    assert all(torch.equal(c[0][0], expected) for c in conditioning)
    _, unconditional = dn.MakeTrainingDataset().make(pictures[:1], [vae], [clip])
    torch.testing.assert_close(unconditional[0][0][0], clip.encode_from_tokens_scheduled(clip.tokenize(""))[0][0])
    with pytest.raises(ValueError, match="does not match number of images"):
        dn.MakeTrainingDataset().make(pictures, [vae], [clip], texts=["a", "b", "c"])
