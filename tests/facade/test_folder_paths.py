"""``folder_paths`` is a view onto the server's FolderPaths: same lists as the built-in loaders,
what packs add lands in Weft, hostile names never leave their folder."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graph.context import services_context
from graph.folders import UnsafePathError
from graph.validation import validate_prompt


@pytest.fixture
def fp(pack_studio):
    import folder_paths

    return folder_paths


def test_checkpoint_list_is_what_the_builtin_loader_lists(pack_studio, fp):
    folders = pack_studio.services.folders
    sub = folders.model_roots("checkpoints")[0] / "sub"
    sub.mkdir()
    (sub / "B.safetensors").write_bytes(b"x")
    (sub / "notes.txt").write_text("not a model")
    with services_context(pack_studio.services):
        combo = pack_studio.registry.get("CheckpointLoaderSimple").inputs()["ckpt_name"].type
    assert fp.get_filename_list("checkpoints") == combo == ["sub/B.safetensors", "tiny_sd1.safetensors"]


def test_module_attributes_follow_the_bound_folders(pack_studio, fp):
    folders = pack_studio.services.folders
    assert fp.models_dir == str(folders.models_root)
    assert fp.base_path == str(folders.base)
    assert fp.get_output_directory() == fp.output_directory == str(folders.output)
    assert fp.get_input_directory() == fp.input_directory == str(folders.input)
    assert fp.get_temp_directory() == str(folders.temp)
    assert fp.get_user_directory() == str(folders.user)
    assert fp.get_directory_by_type("output") == str(folders.output)
    assert fp.get_directory_by_type("models") is None
    fp.set_temp_directory(str(pack_studio.base / "elsewhere"))
    assert folders.temp == (pack_studio.base / "elsewhere").resolve()
    fp.output_directory = str(pack_studio.base / "out2")  # as scripts assign the module global
    assert folders.output == (pack_studio.base / "out2").resolve() and fp.get_output_directory() == str(folders.output)


def test_added_folder_shows_in_weft(pack_studio, fp, tmp_path):
    folders = pack_studio.services.folders
    extra = tmp_path / "more-loras"
    extra.mkdir()
    (extra / "style.safetensors").write_bytes(b"x")
    fp.add_model_folder_path("loras", str(extra))
    assert extra.resolve() in folders.models["loras"]
    assert folders.list_models("loras") == ["style.safetensors"]
    fp.add_model_folder_path("loras", str(extra), is_default=True)
    assert folders.models["loras"][0] == extra.resolve() and len(folders.models["loras"]) == 2
    assert fp.get_folder_paths("loras")[0] == str(extra.resolve())
    # legacy names map to Weft's kinds
    fp.add_model_folder_path("unet", str(extra))
    assert extra.resolve() in folders.models["diffusion_models"]


def test_folder_table_is_live_both_ways(pack_studio, fp, tmp_path):
    folders = pack_studio.services.folders
    table = fp.folder_names_and_paths
    paths, extensions = table["checkpoints"]
    assert extensions is folders.extensions_of("checkpoints")
    paths.append(str(tmp_path))
    assert folders.models["checkpoints"][-1] == tmp_path.resolve()
    (tmp_path / "weights.gguf").write_bytes(b"x")
    extensions.add(".gguf")
    assert "weights.gguf" in fp.get_filename_list("checkpoints")
    assert "weights.gguf" not in folders.list_models("loras")

    table["detectors"] = ([str(tmp_path)], {".onnx"})
    (tmp_path / "face.onnx").write_bytes(b"x")
    assert folders.list_models("detectors") == ["face.onnx"]
    assert "detectors" in table and "detectors" in list(table)
    folders.add_model_root("detectors", tmp_path / "again")
    assert table["detectors"][0][-1] == str((tmp_path / "again").resolve())
    # ComfyUI's other standard kinds exist; an unknown kind is a KeyError as there
    assert fp.get_filename_list("style_models") == []
    with pytest.raises(KeyError):
        fp.get_filename_list("no_such_kind")


def test_full_path_refuses_hostile_names(pack_studio, fp, tmp_path):
    root = pack_studio.services.folders.model_roots("checkpoints")[0]
    (root.parent / "secret.safetensors").write_bytes(b"x")
    assert fp.get_full_path("checkpoints", "tiny_sd1.safetensors") == str(root / "tiny_sd1.safetensors")
    for name in ("../secret.safetensors", "/etc/passwd", "..\\secret.safetensors", "sub/../../secret.safetensors"):
        assert fp.get_full_path("checkpoints", name) is None
    os.symlink(root.parent / "secret.safetensors", root / "link.safetensors")
    assert fp.get_full_path("checkpoints", "link.safetensors") is None
    assert fp.get_full_path("no_such_kind", "x") is None
    with pytest.raises(FileNotFoundError):
        fp.get_full_path_or_raise("checkpoints", "../secret.safetensors")


def test_annotated_names_stay_in_their_folder(pack_studio, fp):
    folders = pack_studio.services.folders
    (folders.output / "done.png").write_bytes(b"x")
    (folders.input / "in.png").write_bytes(b"x")
    assert fp.annotated_filepath("done.png [output]") == ("done.png", str(folders.output))
    assert fp.annotated_filepath("in.png") == ("in.png", None)
    assert fp.get_annotated_filepath("done.png [output]") == str(folders.output / "done.png")
    assert fp.get_annotated_filepath("in.png") == str(folders.input / "in.png")
    assert fp.exists_annotated_filepath("done.png [output]") and fp.exists_annotated_filepath("in.png")
    for name in ("../output/done.png", "../../etc/passwd [input]", "/etc/passwd"):
        assert not fp.exists_annotated_filepath(name)
        with pytest.raises(UnsafePathError):
            fp.get_annotated_filepath(name)


def test_save_image_path_numbers_and_refuses_escapes(pack_studio, fp):
    out = fp.get_output_directory()
    folder, filename, counter, subfolder, prefix = fp.get_save_image_path("runs/%width%x%height%", out, 64, 32)
    assert (folder, filename, counter, subfolder) == (os.path.join(out, "runs"), "64x32", 1, "runs")
    Path(folder, "64x32_00007_.png").write_bytes(b"x")
    assert fp.get_save_image_path("runs/%width%x%height%", out, 64, 32)[2] == 8
    with pytest.raises(UnsafePathError):
        fp.get_save_image_path("../outside", out)


def test_helpers(pack_studio, fp, tmp_path):
    assert fp.filter_files_extensions(["b.PT", "a.txt", "c.safetensors"], {".pt", ".safetensors"}) == \
        ["b.PT", "c.safetensors"]
    assert fp.filter_files_extensions(["b", "a"], set()) == ["a", "b"]
    assert fp.filter_files_content_types(["a.png", "b.mp4", "c.webp", "d.txt", "e.wav"], ["image", "audio"]) == \
        ["a.png", "c.webp", "e.wav"]
    searched = tmp_path / "searched"
    (searched / "x" / ".git").mkdir(parents=True)
    (searched / "x" / "f.bin").write_bytes(b"")
    (searched / "x" / ".git" / "HEAD").write_bytes(b"")
    files, dirs = fp.recursive_search(str(searched), excluded_dir_names=[".git"])
    assert files == [os.path.join("x", "f.bin")] and str(searched / "x") in dirs
    (Path(fp.get_input_directory()) / "a" / "b").mkdir(parents=True)
    assert fp.get_input_subfolders() == ["a", "a/b"]
    assert fp.get_system_user_directory("cache") == os.path.join(fp.get_user_directory(), "__cache")
    with pytest.raises(ValueError):
        fp.get_system_user_directory("_hidden")
    assert fp.get_public_user_directory("__system") is None
    assert fp.get_public_user_directory("../x") is None
    assert fp.map_legacy("clip") == "text_encoders"
    with fp.cache_helper:
        assert fp.cached_filename_list_("checkpoints") is None
    fp.filename_list_cache["checkpoints"] = ([], {}, 0.0)
    assert len(fp.filename_list_cache) == 0


def test_paths_pack_registers_folders_and_runs(pack_studio, fp):
    folders = pack_studio.services.folders
    ipadapter = folders.models_root / "ipadapter"
    ipadapter.mkdir()
    (ipadapter / "ip.bin").write_bytes(b"x")
    (reports,) = pack_studio.load("paths_pack.py")
    assert reports.loaded, reports.error
    assert folders.models["ipadapter"] == [ipadapter.resolve()]
    assert folders.models["facedetect"] == [(folders.models_root / "facedetect").resolve()]
    assert folders.extensions_of("facedetect") == {".onnx"}

    image = np.zeros((6, 8, 3), dtype=np.uint8)
    image[..., 0] = 255
    Image.fromarray(image).save(folders.input / "red.png")
    prompt = {"1": {"class_type": "PathsModelInfo", "inputs": {"ckpt_name": "tiny_sd1.safetensors",
                                                                "ipadapter_file": "ip.bin"}},
              "2": {"class_type": "PathsLoadImage", "inputs": {"image": "red.png"}},
              "3": {"class_type": "PathsSaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "paths/%width%"}}}
    with services_context(pack_studio.services):
        checked = validate_prompt(prompt, pack_studio.registry)
        assert checked.ok, checked.node_errors
        bad = dict(prompt, **{"2": {"class_type": "PathsLoadImage", "inputs": {"image": "../red.png"}}})
        assert not validate_prompt(bad, pack_studio.registry).ok
    outcome = pack_studio.run(prompt)
    saved = outcome.outputs["3"]["images"]
    assert saved == [{"filename": "8_00001_.png", "subfolder": "paths", "type": "output"}]
    assert (folders.output / "paths" / "8_00001_.png").is_file()
