"""Training nodes: train a small latent diffusion model from the canvas.

``ShapesDataset`` / ``ImageFolderDataset`` give a ``TRAINING_DATA`` value (captioned images);
``TrainAutoencoder`` trains stage 1 and returns a ``VAE`` (also saved to ``models/vae``);
``TrainLatentDiffusion`` trains stage 2 on top of any VAE and returns ``MODEL`` and ``CLIP``
(the full model saved to ``models/checkpoints``, where the loaders list it). Both report progress
with preview images and save their state every few hundred steps under
``output/training/<name>/``; queueing the same node again continues a run that was interrupted.
The algorithms live in ``ldm.training``; these classes only wire them to the editor.
"""

from __future__ import annotations

import dataclasses
import shutil

from graph.context import report_progress
from graph.folders import UnsafePathError, check_relative_name, safe_join
from ldm.data.folder import ImageFolderDataset as FolderData
from ldm.data.shapes import ShapesDataset as ShapesData
from ldm.loading.detect import detect_unet
from ldm.model import build_unet
from ldm.text.handle import ClipHandle
from ldm.training.autoencoder import calibrate_latents, latent_statistics, train_autoencoder
from ldm.training.config import ARCHITECTURES, AutoencoderTraining, DiffusionTraining
from ldm.training.diffusion import PreviewSpec, encode_dataset, train_diffusion
from ldm.training.export import model_metadata, write_checkpoint, write_vae
from ldm.training.progress import Progress
from ldm.training.text import clip_handle
from ldm.vae import VaeHandle
from nodes.services import services

CATEGORY = "training"
TRAINING_DATA = "TRAINING_DATA"
PREVIEW_COUNT = 4
#: Coarse-grid training noise, as the starter recipe uses: without it a model takes each
#: picture's background and layout from its noisy input instead of the caption (docs/training.md).
LOW_FREQUENCY_NOISE = 0.4


def _plain_name(name: str) -> str:
    parts = check_relative_name(name)
    if len(parts) != 1:
        raise UnsafePathError(f"a run name is one plain file name, got {name!r}")
    return parts[0]


def _run_folder(name: str):
    """``output/training/<name>``, where a run keeps its state."""
    return safe_join(services().folders.output, "training", _plain_name(name))


def _model_file(kind: str, name: str):
    """``models/<kind>/<name>.safetensors`` in the first folder of that kind."""
    root = services().folders.model_roots(kind)[0]
    root.mkdir(parents=True, exist_ok=True)
    return safe_join(root, f"{_plain_name(name)}.safetensors")


def _save_every(steps: int) -> int:
    """Save the state every 250 steps, or ten times in a shorter run."""
    return max(1, min(250, steps // 10))


def _start(folder, resume: bool) -> None:
    if not resume and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)


def _report(progress: Progress) -> None:
    report_progress(progress.step, progress.total, progress.preview)  # raises when interrupted


def _compute():
    return services().engine.compute


class ShapesDataset:
    DESCRIPTION = ("Procedural 64x64 scenes of one coloured shape with captions such as 'a red circle at "
                   "the top left on a blue background' — the data the starter model learned from.")
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = (TRAINING_DATA,)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "count": ("INT", {"default": 20000, "min": 1, "max": 10_000_000}),
            "size": ("INT", {"default": 64, "min": 16, "max": 512, "step": 8}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFF}),
            "partial_captions": ("FLOAT", {"default": 0.1, "min": 0.0, "max": 1.0, "step": 0.05,
                                           "tooltip": "How often a caption leaves out its position "
                                                      "or background phrase."}),
        }}

    def make(self, count, size, seed, partial_captions):
        return (ShapesData(seed=seed, length=count, size=size, partial_captions=partial_captions),)


class ImageFolderDataset:
    DESCRIPTION = ("The images of a folder under input/, each with an optional caption in a .txt file of "
                   "the same name; cropped to a centred square of the given size.")
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (TRAINING_DATA,)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "folder": ("STRING", {"default": "training", "tooltip": "A folder inside input/."}),
            "size": ("INT", {"default": 64, "min": 16, "max": 512, "step": 8}),
        }}

    def load(self, folder, size):
        return (FolderData(safe_join(services().folders.input, folder), size=size),)


class TrainAutoencoder:
    DESCRIPTION = ("Stage 1 of latent diffusion: a KL-regularised autoencoder trained on the data, with a "
                   "patch discriminator after the warm-up (starter architecture: 4x downsampling, 4 latent "
                   "channels). Saved to models/vae/<name>.")
    CATEGORY = CATEGORY
    FUNCTION = "train"
    RETURN_TYPES = ("VAE",)
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        defaults = AutoencoderTraining()
        return {"required": {
            "data": (TRAINING_DATA,),
            "name": ("STRING", {"default": "my-autoencoder",
                                "tooltip": "File name in models/vae/ and name of the run (for resuming)."}),
            "architecture": (list(ARCHITECTURES), {"default": "starter",
                                                   "tooltip": "starter: the shipped model's networks; "
                                                              "tiny: a few MB, for quick experiments."}),
            "steps": ("INT", {"default": defaults.steps, "min": 1, "max": 1_000_000}),
            "batch_size": ("INT", {"default": defaults.batch_size, "min": 1, "max": 256}),
            "learning_rate": ("FLOAT", {"default": defaults.learning_rate, "min": 1e-7, "max": 1e-1,
                                        "step": 1e-5}),
            "discriminator_start": ("INT", {"default": defaults.discriminator_start, "min": 0,
                                            "max": 1_000_000,
                                            "tooltip": "Steps of reconstruction-only training before the "
                                                       "patch discriminator joins in."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFF}),
            "resume": ("BOOLEAN", {"default": True,
                                   "tooltip": "Continue the saved run of this name if there is one."}),
        }}

    def train(self, data, name, architecture, steps, batch_size, learning_rate, discriminator_start, seed,
              resume):
        folder = _run_folder(name)
        _start(folder, resume)
        config = dataclasses.replace(AutoencoderTraining(), steps=steps, batch_size=batch_size,
                                     learning_rate=learning_rate, discriminator_start=discriminator_start,
                                     seed=seed, save_every=_save_every(steps), preview_every=min(250, steps))
        arch = ARCHITECTURES[architecture]
        model = train_autoencoder(data, arch.vae, config, state_path=folder / "autoencoder.pt",
                                  progress=_report)
        mean, std = latent_statistics(model, data)
        calibrate_latents(model, mean, std)
        write_vae(_model_file("vae", name), model)
        compute = _compute()
        return (VaeHandle(model, device=compute.device, dtype=compute.vae_dtype),)


class TrainLatentDiffusion:
    DESCRIPTION = ("Stage 2 of latent diffusion: a UNet in the VAE's latent space with cross-attention to a "
                   "CLIP-architecture text encoder trained with it. Saved to models/checkpoints/<name>.")
    CATEGORY = CATEGORY
    FUNCTION = "train"
    RETURN_TYPES = ("MODEL", "CLIP")
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        defaults = DiffusionTraining()
        return {"required": {
            "data": (TRAINING_DATA,),
            "vae": ("VAE",),
            "name": ("STRING", {"default": "my-model",
                                "tooltip": "File name in models/checkpoints/ and name of the run "
                                           "(for resuming)."}),
            "architecture": (list(ARCHITECTURES), {
                "default": "starter",
                "tooltip": "starter: the shipped model's UNet and text encoder; tiny: a few MB, for quick "
                           "experiments."}),
            "steps": ("INT", {"default": defaults.steps, "min": 1, "max": 1_000_000}),
            "batch_size": ("INT", {"default": defaults.batch_size, "min": 1, "max": 1024}),
            "learning_rate": ("FLOAT", {"default": defaults.learning_rate, "min": 1e-7, "max": 1e-1,
                                        "step": 1e-5}),
            "caption_dropout": ("FLOAT", {"default": defaults.caption_dropout, "min": 0.0, "max": 1.0,
                                          "step": 0.01,
                                          "tooltip": "How often a caption is replaced by the empty one, so "
                                                     "classifier-free guidance works."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFF}),
            "resume": ("BOOLEAN", {"default": True,
                                   "tooltip": "Continue the saved run of this name if there is one."}),
        }}

    def train(self, data, vae, name, architecture, steps, batch_size, learning_rate, caption_dropout, seed,
              resume):
        folder = _run_folder(name)
        _start(folder, resume)
        arch = dataclasses.replace(ARCHITECTURES[architecture], vae=vae.config, image_size=data.size)
        config = dataclasses.replace(DiffusionTraining(), steps=steps, batch_size=batch_size,
                                     learning_rate=learning_rate, final_learning_rate=learning_rate / 10,
                                     caption_dropout=caption_dropout, seed=seed,
                                     low_frequency_noise=LOW_FREQUENCY_NOISE,
                                     warmup_steps=min(DiffusionTraining.warmup_steps, steps // 5),
                                     save_every=_save_every(steps), preview_every=min(250, steps),
                                     preview_steps=10)
        latents = encode_dataset(vae.model, data, arch.text.width, progress=_report)
        captions = [data.caption(i) for i in range(min(PREVIEW_COUNT, len(data)))]
        preview = PreviewSpec(tuple(captions), lambda z: vae.decode(z).movedim(-1, 1))
        result = train_diffusion(latents, arch, config, state_path=folder / "diffusion.pt", progress=_report,
                                 preview=preview)
        description = f"Trained in Weft ({result.steps} steps, architecture {architecture})."
        metadata = model_metadata(result.unet, title=name, resolution=data.size, description=description)
        path = _model_file("checkpoints", name)
        write_checkpoint(path, result.unet, result.text, vae.model, metadata)
        return self._handles(result, metadata)

    @staticmethod
    def _handles(result, metadata) -> tuple:
        """MODEL and CLIP over the trained (EMA) networks, as the loader would give them."""
        compute = _compute()
        weights = {k: v.detach() for k, v in result.unet.state_dict().items()}
        model = build_unet(weights, detect_unet(weights, metadata), compute=compute)
        clip: ClipHandle = clip_handle(result.text)
        return model, clip


NODE_CLASS_MAPPINGS = {
    "ShapesDataset": ShapesDataset,
    "ImageFolderDataset": ImageFolderDataset,
    "TrainAutoencoder": TrainAutoencoder,
    "TrainLatentDiffusion": TrainLatentDiffusion,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "ShapesDataset": "Shape Scenes Dataset",
    "ImageFolderDataset": "Image Folder Dataset",
    "TrainAutoencoder": "Train Autoencoder",
    "TrainLatentDiffusion": "Train Latent Diffusion",
}
