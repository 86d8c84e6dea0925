"""A test pack that reports progress, previews and checks interrupts the way real packs do, through
``comfy.utils.ProgressBar``, ``comfy.model_management`` and ``latent_preview``."""

import comfy.model_management
import comfy.utils
import latent_preview


class ProgressLoop:
    """Counts to ``steps``; with ``interrupt_at`` >= 0 it interrupts itself there, as a pack's
    cancel button wired to ``interrupt_current_processing`` would."""

    CATEGORY = "tests/progress"
    FUNCTION = "loop"
    RETURN_TYPES = ("INT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": ("INT", {"default": 5, "min": 1, "max": 100000}),
                             "interrupt_at": ("INT", {"default": -1, "min": -1, "max": 100000})}}

    def loop(self, steps, interrupt_at):
        bar = comfy.utils.ProgressBar(steps)
        done = 0
        for i in range(steps):
            if i == interrupt_at:
                comfy.model_management.interrupt_current_processing()
            comfy.model_management.throw_exception_if_processing_interrupted()
            done += 1
            bar.update(1)
        return (done,)


class PreviewSteps:
    """Walks a latent through ``steps`` fake sampler steps with ``latent_preview.prepare_callback``."""

    CATEGORY = "tests/progress"
    FUNCTION = "run"
    RETURN_TYPES = ("LATENT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "samples": ("LATENT",),
                             "steps": ("INT", {"default": 3, "min": 1, "max": 100})}}

    def run(self, model, samples, steps):
        comfy.model_management.load_models_gpu([model])
        kept = {}
        callback = latent_preview.prepare_callback(model, steps, kept)
        x = samples["samples"].to(comfy.model_management.get_torch_device())
        for step in range(steps):
            x = x * 0.5
            callback(step, x, x, steps)
        return ({"samples": kept["x0"].to(comfy.model_management.intermediate_device())},)


NODE_CLASS_MAPPINGS = {"ProgressLoop": ProgressLoop, "PreviewSteps": PreviewSteps}
