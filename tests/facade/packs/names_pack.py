"""A test pack that reaches for ComfyUI's names in `nodes`, `comfy_extras` and `comfy.sd`."""

import comfy.sd
import folder_paths
import nodes
from comfy_extras.nodes_custom_sampler import KSamplerSelect
from nodes import MAX_RESOLUTION


class LoadThroughComfySd:
    CATEGORY = "test/pack"
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE", "INT")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (folder_paths.get_filename_list("checkpoints"),),
                             "width": ("INT", {"default": 64, "min": 16, "max": MAX_RESOLUTION})}}

    def load(self, ckpt_name, width):
        path = folder_paths.get_full_path("checkpoints", ckpt_name)
        model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(path, output_vae=True, output_clip=True)
        assert isinstance(vae, comfy.sd.VAE) and isinstance(clip, comfy.sd.CLIP)
        # Core nodes used the ComfyUI way: classes looked up by name and called directly.
        lora_loader = nodes.LoraLoader
        assert nodes.NODE_CLASS_MAPPINGS["LoraLoader"] is lora_loader
        assert KSamplerSelect is nodes.NODE_CLASS_MAPPINGS["KSamplerSelect"]
        return (model, clip, vae, width)


NODE_CLASS_MAPPINGS = {"LoadThroughComfySd": LoadThroughComfySd}
