import numpy as np
import pytest
from PIL import Image

from ldm.data.folder import EmptyDatasetError, ImageFolderDataset


def test_images_with_captions(tmp_path):
    Image.fromarray(np.full((40, 80, 3), (255, 0, 0), dtype=np.uint8)).save(tmp_path / "b.png")
    (tmp_path / "b.txt").write_text("  a red\n  wide image ", encoding="utf-8")
    sub = tmp_path / "more"
    sub.mkdir()
    Image.fromarray(np.full((20, 20, 3), (0, 0, 255), dtype=np.uint8)).save(sub / "a.jpg")
    (tmp_path / "notes.md").write_text("not an image")
    dataset = ImageFolderDataset(tmp_path, size=16)
    assert len(dataset) == 2
    captions = [dataset.caption(i) for i in range(2)]
    assert captions == ["a red wide image", ""]  # b.png, then more/a.jpg (no caption file)
    red = dataset.image(0)
    assert red.shape == (3, 16, 16)
    assert float(red[0].mean()) > 0.95 and float(red[2].mean()) < 0.05
    blue = dataset.image(1)
    assert float(blue[2].mean()) > 0.9


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(EmptyDatasetError):
        ImageFolderDataset(tmp_path)
    with pytest.raises(FileNotFoundError):
        ImageFolderDataset(tmp_path / "nowhere")
