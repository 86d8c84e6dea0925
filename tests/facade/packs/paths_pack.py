"""A test pack that uses ``folder_paths`` the way real packs do: folders registered at import,
combos from ``get_filename_list``, files found with ``get_full_path`` / annotated names, images
saved under ``get_save_image_path``'s numbered names."""

import json
import os

import numpy as np
import torch
from PIL import Image

import folder_paths
import node_helpers
from comfy.cli_args import args

# As IPAdapter-style packs do at import: a folder of their own under models/, and one with its
# own extensions set up through folder_names_and_paths.
folder_paths.add_model_folder_path("ipadapter", os.path.join(folder_paths.models_dir, "ipadapter"))
if "facedetect" in folder_paths.folder_names_and_paths:
    folder_paths.folder_names_and_paths["facedetect"][1].add(".onnx")
else:
    folder_paths.folder_names_and_paths["facedetect"] = (
        [os.path.join(folder_paths.models_dir, "facedetect")], {".onnx"})
IMPORT_TIME_MODELS_DIR = folder_paths.models_dir


class PathsModelInfo:
    CATEGORY = "tests/paths"
    FUNCTION = "info"
    RETURN_TYPES = ("STRING", "STRING")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (folder_paths.get_filename_list("checkpoints"),),
                             "ipadapter_file": (folder_paths.get_filename_list("ipadapter"),)}}

    def info(self, ckpt_name, ipadapter_file):
        return (folder_paths.get_full_path_or_raise("checkpoints", ckpt_name),
                folder_paths.get_full_path_or_raise("ipadapter", ipadapter_file))


class PathsLoadImage:
    CATEGORY = "tests/paths"
    FUNCTION = "load"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        files = [f for f in os.listdir(folder_paths.get_input_directory())
                 if os.path.isfile(os.path.join(folder_paths.get_input_directory(), f))]
        return {"required": {"image": (sorted(files),)}}

    @classmethod
    def VALIDATE_INPUTS(cls, image):
        if not folder_paths.exists_annotated_filepath(image):
            return f"Invalid image file: {image}"
        return True

    def load(self, image):
        path = folder_paths.get_annotated_filepath(image)
        opened = node_helpers.pillow(Image.open, path)
        pixels = np.asarray(opened.convert("RGB"), dtype=np.float32) / 255.0
        return (torch.from_numpy(pixels)[None],)


class PathsSaveImage:
    CATEGORY = "tests/paths"
    FUNCTION = "save"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "paths/%width%"})},
                "hidden": {"prompt": "PROMPT"}}

    def save(self, images, filename_prefix, prompt=None):
        folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory(), images.shape[2], images.shape[1])
        results = []
        for image in images:
            name = f"{filename}_{counter:05}_.png"
            pixels = np.clip(image.cpu().numpy() * 255.0, 0, 255).astype(np.uint8)
            info = None
            if not args.disable_metadata and prompt is not None:
                from PIL.PngImagePlugin import PngInfo
                info = PngInfo()
                info.add_text("prompt", json.dumps(prompt))
            Image.fromarray(pixels).save(os.path.join(folder, name), pnginfo=info)
            results.append({"filename": name, "subfolder": subfolder, "type": "output"})
            counter += 1
        return {"ui": {"images": results}}


NODE_CLASS_MAPPINGS = {"PathsModelInfo": PathsModelInfo, "PathsLoadImage": PathsLoadImage,
                       "PathsSaveImage": PathsSaveImage}
