"""The recipe of the shipped starter model: ``make starter-model`` runs this.

    python -m ldm.training.starter [--out models/checkpoints/weft-starter.safetensors]

Stage 1 trains the autoencoder on fresh procedural scenes (seed 0), calibrates its latent scale
and writes it as a VAE file; the first ``DIFFUSION_SCENES`` scenes of the same stream are encoded
once; stage 2 trains the UNet and text encoder on them, then a second phase goes on from its EMA
networks with half of each batch at the noisiest timesteps and the clean-image error weighted
there (so the caption, not the noise, decides where the shape goes); the EMA networks and the
autoencoder are written as one SD1-layout checkpoint. Every stage saves its state in the work
folder and a second run continues where the first stopped (a finished stage is skipped).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ldm.data.shapes import ShapesDataset
from ldm.training.autoencoder import calibrate_latents, latent_statistics, train_autoencoder
from ldm.training.config import (STARTER, Architecture, AutoencoderTraining, DiffusionTraining,
                                 to_json)
from ldm.training.diffusion import PreviewSpec, TrainingLatents, encode_dataset, train_diffusion
from ldm.training.export import model_metadata, write_checkpoint, write_vae
from ldm.training.progress import PrintProgress, Progress

DEFAULT_OUT = Path("models/checkpoints/weft-starter.safetensors")
#: Measured on the 2-core build machine (see docs/starter-model.md); printed before a run starts.
EXPECTED_MINUTES = 170
PREVIEW_PROMPTS = ("a red circle at the top left on a blue background",
                   "a yellow triangle in the center on a black background",
                   "a white square at the bottom right on a green background",
                   "a purple cross on the left on an orange background")


@dataclass(frozen=True)
class Recipe:
    architecture: Architecture
    autoencoder: AutoencoderTraining
    diffusion: DiffusionTraining
    diffusion_scenes: int  # scenes encoded once for stage 2
    partial_captions: float  # chance of a caption without its position / background phrase
    calibration_scenes: int = 1024
    # An optional second phase of stage 2, on from the first phase's EMA networks.
    refine: DiffusionTraining | None = None


_FIRST_PHASE = DiffusionTraining(steps=4000, batch_size=32, low_frequency_noise=0.4)

STARTER_RECIPE = Recipe(
    architecture=STARTER,
    autoencoder=AutoencoderTraining(steps=3000, batch_size=4, learning_rate=4e-4, final_learning_rate=4e-5,
                                    discriminator_start=2000),
    diffusion=_FIRST_PHASE,
    diffusion_scenes=30_000,
    partial_captions=0.1,
    # The layout phase (docs/starter-model.md: position 13 % -> 100 %, shape 51 % -> 88 % at CFG 5);
    # a new seed, so its batches are not the first phase's again.
    refine=replace(_FIRST_PHASE, steps=5000, learning_rate=2e-4, final_learning_rate=1e-5, warmup_steps=100,
                   min_x0_weight=1.0, high_noise_fraction=0.5, high_noise_from=900, seed=1),
)


def _saving_previews(folder: Path, printer: PrintProgress):
    def report(progress: Progress) -> None:
        printer(progress)
        if progress.preview is not None:
            progress.preview.save(folder / f"{progress.stage}-{progress.step:06d}.png")
    return report


def _latents(recipe: Recipe, vae, work: Path, report) -> TrainingLatents:
    """Stage 2's encoded scenes, cached in ``work`` for the same autoencoder run."""
    key = (to_json(recipe.architecture.vae, recipe.autoencoder)
           + f"|{recipe.diffusion_scenes}|{recipe.partial_captions}")
    cache = work / "latents.pt"
    if cache.is_file():
        saved = torch.load(cache, map_location="cpu", weights_only=True)
        if saved.get("key") == key:
            return TrainingLatents(saved["latents"], saved["ids"])
    scenes = ShapesDataset(seed=0, length=recipe.diffusion_scenes, size=recipe.architecture.image_size,
                           partial_captions=recipe.partial_captions)
    data = encode_dataset(vae, scenes, recipe.architecture.text.width, precision=recipe.diffusion.precision,
                          progress=report)
    torch.save({"key": key, "latents": data.latents, "ids": data.ids}, cache)
    return data


def build_starter(out: Path, work: Path, recipe: Recipe = STARTER_RECIPE, log=print) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    previews = work / "previews"
    previews.mkdir(exist_ok=True)
    report = _saving_previews(previews, PrintProgress(every=50))
    started = time.monotonic()
    size = recipe.architecture.image_size

    log(f"stage 1: autoencoder, {recipe.autoencoder.steps} steps (state in {work})")
    scenes = ShapesDataset(seed=0, length=10_000_000, size=size)
    vae = train_autoencoder(scenes, recipe.architecture.vae, recipe.autoencoder,
                            state_path=work / "autoencoder.pt", progress=report)
    mean, std = latent_statistics(vae, scenes, count=recipe.calibration_scenes)
    calibrate_latents(vae, mean, std)
    log(f"latent calibration: channel means {[round(v, 3) for v in mean.tolist()]}, "
        f"stds {[round(v, 3) for v in std.tolist()]}")
    write_vae(work / "weft-starter-vae.safetensors", vae)

    log(f"encoding {recipe.diffusion_scenes} scenes for stage 2")
    data = _latents(recipe, vae, work, report)

    log(f"stage 2: UNet + text encoder, {recipe.diffusion.steps} steps")

    def decode(latents: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return vae.decode(latents).float().add(1.0).div(2.0).clamp(0.0, 1.0)

    previews_spec = PreviewSpec(PREVIEW_PROMPTS, decode)
    result = train_diffusion(data, recipe.architecture, recipe.diffusion, state_path=work / "diffusion.pt",
                             progress=report, preview=previews_spec)
    if recipe.refine is not None:
        log(f"stage 2, second phase: {recipe.refine.steps} steps")
        result = train_diffusion(data, recipe.architecture, recipe.refine, state_path=work / "refine.pt",
                                 progress=report, preview=previews_spec, start_from=result, stage="refine")
    minutes = (time.monotonic() - started) / 60
    metadata = model_metadata(
        result.unet, title="Weft starter",
        description=("A small latent diffusion model trained by Weft from scratch on procedural "
                     "64x64 scenes of one coloured shape (circle, square, triangle, cross) on a "
                     "plain background; prompts like 'a red circle at the top left on a blue "
                     "background'. SD1 key layout; not Stable Diffusion weights."),
        resolution=size, prediction=recipe.diffusion.prediction,
        training={"recipe": to_json(recipe.architecture, recipe.autoencoder, recipe.diffusion,
                                    *([recipe.refine] if recipe.refine else [])),
                  "diffusion_scenes": recipe.diffusion_scenes, "partial_captions": recipe.partial_captions,
                  "data": "ldm.data.shapes.ShapesDataset(seed=0)"})
    write_checkpoint(out, result.unet, result.text, vae, metadata)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) after {minutes:.1f} min in this run")
    return out


def quick_recipe(recipe: Recipe) -> Recipe:
    """The same pipeline with a handful of steps: checks that everything runs, in minutes."""
    return replace(recipe, autoencoder=replace(recipe.autoencoder, steps=20, discriminator_start=10),
                   diffusion=replace(recipe.diffusion, steps=20, preview_every=20, preview_steps=4),
                   refine=recipe.refine and replace(recipe.refine, steps=10, preview_every=10, preview_steps=4),
                   diffusion_scenes=256, calibration_scenes=64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ldm.training.starter",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "weft-starter-training",
                        help="where training states, cached latents and previews go (resumable)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: measured fastest on a busy 2-core machine)")
    parser.add_argument("--quick", action="store_true",
                        help="a few steps of each stage, to check the pipeline")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = quick_recipe(STARTER_RECIPE) if args.quick else STARTER_RECIPE
    if not args.quick:
        print(f"Training the starter model takes about {EXPECTED_MINUTES} minutes on 2 CPU cores "
              f"(bf16 where the CPU has it); progress lines follow. Interrupt and rerun to resume.")
    build_starter(args.out, args.work / ("quick" if args.quick else "full"), recipe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
