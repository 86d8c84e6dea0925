"""A test pack with its own LoRA loader, written the way Inspire's block-weight loader and KJNodes
write theirs: read the file with ``comfy.utils.load_torch_file``, map names with
``comfy.lora.model_lora_keys_unet``, parse with ``comfy.lora.load_lora``, patch a clone with
``add_patches`` (optionally dropping or scaling input/middle/output blocks)."""

import comfy.lora
import comfy.utils
import folder_paths


class PackLoraLoader:
    CATEGORY = "test/pack"
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL",),
            "lora_name": (folder_paths.get_filename_list("loras"),),
            "strength_model": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0}),
            "block_weights": ("STRING", {"default": ""}),
        }}

    def load(self, model, lora_name, strength_model, block_weights):
        lora = comfy.utils.load_torch_file(folder_paths.get_full_path_or_raise("loras", lora_name), safe_load=True)
        key_map = comfy.lora.model_lora_keys_unet(model.model, {})
        loaded = comfy.lora.load_lora(lora, key_map)
        ratios = {}
        for item in filter(None, block_weights.split(",")):  # "input_blocks:0.5,output_blocks:0"
            block, ratio = item.split(":")
            ratios[block.strip()] = float(ratio)
        patched = model.clone()
        added = []
        for key, patch in loaded.items():
            block = key[len("diffusion_model."):].split(".")[0]
            ratio = ratios.get(block, 1.0)
            if ratio != 0:
                added += patched.add_patches({key: patch}, strength_model * ratio)
        assert sorted(added) == sorted(k for k in loaded if ratios.get(k.split(".")[1], 1.0) != 0), "not all patched"
        return (patched,)


NODE_CLASS_MAPPINGS = {"PackLoraLoader": PackLoraLoader}
