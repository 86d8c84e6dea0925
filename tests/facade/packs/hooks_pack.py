"""A test pack that hooks a LoRA onto conditioning the way scheduling LoRA loaders do: the file read
with ``comfy.utils.load_torch_file``, a hook from ``comfy.hooks.create_hook_lora``, keyframes built
with ``HookKeyframeGroup`` / ``HookKeyframe`` and set with ``set_keyframes_on_hooks``, then
``comfy.hooks.set_hooks_for_conditioning`` on both prompts."""

import comfy.hooks
import comfy.utils
import folder_paths


class PackHookedLora:
    CATEGORY = "test/pack"
    FUNCTION = "hook"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "positive": ("CONDITIONING",),
            "negative": ("CONDITIONING",),
            "lora_name": (folder_paths.get_filename_list("loras"),),
            "strength_model": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0}),
            "off_at": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0,
                                 "tooltip": "the hook's strength drops to 0 from this percent on (1: never)"}),
        }}

    def hook(self, positive, negative, lora_name, strength_model, off_at):
        lora = comfy.utils.load_torch_file(folder_paths.get_full_path_or_raise("loras", lora_name), safe_load=True)
        hooks = comfy.hooks.create_hook_lora(lora, strength_model, 0.0)
        if off_at < 1.0:
            keyframes = comfy.hooks.HookKeyframeGroup()
            keyframes.add(comfy.hooks.HookKeyframe(strength=0.0, start_percent=off_at))
            keyframes.add(comfy.hooks.HookKeyframe(strength=1.0, start_percent=0.0))
            hooks.set_keyframes_on_hooks(keyframes)
        return (comfy.hooks.set_hooks_for_conditioning(positive, hooks),
                comfy.hooks.set_hooks_for_conditioning(negative, hooks))


NODE_CLASS_MAPPINGS = {"PackHookedLora": PackHookedLora}
