import os
import time

import pytest

from graph import output_files as of
from graph.folders import UnsafePathError

NOON = time.struct_time((2025, 3, 4, 5, 6, 7, 0, 63, -1))


def test_expand_prefix_substitutes_size_and_time():
    prefix = "%year%-%month%-%day%/%hour%%minute%%second%_%width%x%height%_%batch_num%"
    assert of.expand_prefix(prefix, 640, 480, NOON) == "2025-03-04/050607_640x480_%batch_num%"
    assert of.expand_prefix("plain", 1, 2, NOON) == "plain"


def test_next_counter_continues_after_the_highest_matching_file(tmp_path):
    for name in ["ComfyUI_00003_.png", "ComfyUI_00011_.png", "ComfyUI_00012.png",  # no `_` after digits
                 "ComfyUI_extra_00099_.png", "ComfyUIx_00050_.png", "comfyui_00070_.png",
                 "ComfyUI_00009_.latent"]:
        (tmp_path / name).write_bytes(b"")
    assert of.next_counter(tmp_path, "ComfyUI") == 12
    assert of.next_counter(tmp_path, "ComfyUI_extra") == 100
    assert of.next_counter(tmp_path, "other") == 1
    assert of.next_counter(tmp_path / "missing", "ComfyUI") == 1


def test_next_counter_counts_every_batch_number(tmp_path):
    for name in ["shot_0_00004_.png", "shot_1_00005_.png"]:
        (tmp_path / name).write_bytes(b"")
    assert of.next_counter(tmp_path, "shot_%batch_num%") == 6


def test_resolve_save_target_makes_subfolders(tmp_path):
    target = of.resolve_save_target(tmp_path, "a/b/pic", 8, 8)
    assert target.folder == (tmp_path / "a" / "b").resolve()
    assert target.folder.is_dir()
    assert (target.filename, target.subfolder, target.counter) == ("pic", "a/b", 1)
    assert target.file_name(7, 2, "png") == "pic_00007_.png"
    root_target = of.resolve_save_target(tmp_path, "pic/", 8, 8)  # a trailing slash names the file
    assert (root_target.subfolder, root_target.filename) == ("", "pic")


@pytest.mark.parametrize("prefix", ["../x", "a/../../x", "/abs/x", "a\\b", "x\x00y", "", "/", "C:/x", "./"])
def test_hostile_prefixes_are_refused(tmp_path, prefix):
    root = tmp_path / "output"
    root.mkdir()
    with pytest.raises(UnsafePathError):
        of.resolve_save_target(root, prefix)
    assert list(tmp_path.iterdir()) == [root]
    assert list(root.iterdir()) == []


def test_symlink_out_of_the_folder_is_refused(tmp_path):
    root, outside = tmp_path / "output", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        of.resolve_save_target(root, "link/x")
    with pytest.raises(UnsafePathError):
        of.resolve_save_target(root, "link/deeper/x")
    assert list(outside.iterdir()) == []


def test_write_atomic_publishes_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.bin"
    of.write_atomic(path, b"one")
    assert path.read_bytes() == b"one"
    with pytest.raises(FileExistsError):
        of.write_atomic(path, b"two")
    assert path.read_bytes() == b"one"
    of.write_atomic(path, b"three", overwrite=True)
    assert path.read_bytes() == b"three"
    assert sorted(os.listdir(tmp_path)) == ["a.bin"]


def test_write_atomic_failure_leaves_nothing(tmp_path, monkeypatch):
    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(of.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        of.write_atomic(tmp_path / "a.png", b"data")
    assert os.listdir(tmp_path) == []


def test_write_atomic_without_hard_links_still_refuses_existing_names(tmp_path, monkeypatch):
    def no_links(source, destination):
        raise PermissionError("links unsupported")

    monkeypatch.setattr(of.os, "link", no_links)
    of.write_atomic(tmp_path / "a", b"1")
    with pytest.raises(FileExistsError):
        of.write_atomic(tmp_path / "a", b"2")
    assert (tmp_path / "a").read_bytes() == b"1"
    assert os.listdir(tmp_path) == ["a"]


def test_write_numbered_skips_taken_names(tmp_path):
    target = of.resolve_save_target(tmp_path, "img_%batch_num%")
    (tmp_path / "img_0_00001_.png").write_bytes(b"taken")  # appeared after the counter was read
    name, counter = of.write_numbered(target, target.counter, 0, "png", b"new")
    assert (name, counter) == ("img_0_00002_.png", 2)
    assert (tmp_path / "img_0_00001_.png").read_bytes() == b"taken"
    assert (tmp_path / name).read_bytes() == b"new"


def test_written_files_get_the_usual_mode_not_mkstemps_0600(tmp_path):
    from graph.atomic import atomic_write_bytes
    path = tmp_path / "image.png"
    atomic_write_bytes(path, b"data")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
