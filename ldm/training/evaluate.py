"""How well a shapes model follows its prompts, and how faithfully its autoencoder reconstructs.

Generation: a fixed, balanced set of prompts (every shape at every grid position equally often,
colours and backgrounds drawn from a fixed seed), one image per prompt (start noise: draw ``i``
of seed 0 for prompt ``i``; empty negative prompt), read back by pixel analysis
(:mod:`ldm.data.shape_reading`); accuracy of colour, shape and position (and background) at each
CFG scale. Reconstruction: PSNR of the autoencoder on held-out
scenes (posterior mean, decoded, clamped to 0..1). The model is loaded through
``ldm.model.load_checkpoint`` and run in the engine's compute dtype, as the nodes run it.

    python -m ldm.training.evaluate models/checkpoints/weft-starter.safetensors
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ldm.data.shape_reading import read_scene
from ldm.data.shapes import (CENTROID_OFFSET, COLOUR_NAMES, HALF_SIZE, POSITION_NAMES, SHAPE_NAMES, Scene,
                             ShapesDataset, grid_centre)
from ldm.devices import detect_compute
from ldm.engine import Engine
from ldm.model import ModelHandle, load_checkpoint
from ldm.text.handle import ClipHandle
from ldm.sampling.from_handle import guided_model
from ldm.training.generate import text_to_latents
from ldm.vae import VaeHandle

#: Held-out seed: training scenes come from seed 0, evaluation scenes and prompts from this.
EVAL_SEED = 1
PROMPT_COUNT = 216  # 4 shapes x 9 positions x 6
ASPECTS = ("colour", "shape", "position", "background")
BATCH = 36  # prompts sampled together


def evaluation_scenes(count: int = PROMPT_COUNT, seed: int = EVAL_SEED) -> list[Scene]:
    """Scene ``i`` has shape ``i mod 4`` and position ``(i div 4) mod 9``; colours drawn from
    ``default_rng([seed, i])``, the background never the shape's colour."""
    scenes = []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        colour = int(rng.integers(len(COLOUR_NAMES)))
        background = int(rng.integers(len(COLOUR_NAMES) - 1))
        background += background >= colour
        position = POSITION_NAMES[(index // len(SHAPE_NAMES)) % len(POSITION_NAMES)]
        shape = SHAPE_NAMES[index % len(SHAPE_NAMES)]
        cx, cy = grid_centre(position)
        half = sum(HALF_SIZE) / 2
        scenes.append(Scene(shape=shape, colour=COLOUR_NAMES[colour], position=position,
                            background=COLOUR_NAMES[background], half_size=half,
                            centre=(cx, cy - CENTROID_OFFSET[shape] * half)))
    return scenes


@dataclass(frozen=True)
class GenerationScores:
    cfg: float
    count: int
    colour: float
    shape: float
    position: float
    background: float
    all_three: float  # colour, shape and position all right
    seconds: float


def score_images(scenes: list[Scene], images: np.ndarray) -> dict[str, float]:
    """Fractions of ``images`` ``[N, H, W, 3]`` whose reading matches each aspect of their scene."""
    hits = {aspect: 0 for aspect in ASPECTS}
    all_three = 0
    for scene, image in zip(scenes, images):
        reading = read_scene(image)
        right = {aspect: getattr(reading, aspect) == getattr(scene, aspect) for aspect in ASPECTS}
        for aspect in ASPECTS:
            hits[aspect] += right[aspect]
        all_three += right["colour"] and right["shape"] and right["position"]
    n = max(1, len(scenes))
    return {**{aspect: hits[aspect] / n for aspect in ASPECTS}, "all_three": all_three / n}


def generate_for_scenes(model: ModelHandle, clip: ClipHandle, vae: VaeHandle, scenes: list[Scene], cfg: float,
                        steps: int = 20, sampler: str = "euler", scheduler: str = "normal",
                        size: int = 64, seed: int = 0, batch_size: int = BATCH,
                        engine: Engine | None = None) -> np.ndarray:
    """``[N, size, size, 3]`` images, prompt = each scene's caption, empty negative prompt; scene
    ``i`` starts from draw ``i`` of ``seed``'s noise whatever the batching."""
    engine = engine or Engine()
    ratio = vae.downscale_ratio
    latent_shape = (vae.latent_channels, size // ratio, size // ratio)
    images = []
    with engine.use_unet(model, latent_shape=(2 * batch_size, *latent_shape)) as unet:
        guided = guided_model(model, unet)
        for start in range(0, len(scenes), batch_size):
            prompts = [scene.caption() for scene in scenes[start:start + batch_size]]
            latents = text_to_latents(guided, clip, prompts, seed=seed, first_index=start, steps=steps,
                                      cfg=cfg, sampler=sampler, scheduler=scheduler,
                                      latent_shape=latent_shape)
            with engine.use_vae(vae):
                images.append(vae.decode(latents).numpy())
    return np.concatenate(images)


def evaluate_generation(model: ModelHandle, clip: ClipHandle, vae: VaeHandle, scenes: list[Scene], cfg: float,
                        steps: int = 20, size: int = 64, engine: Engine | None = None) -> GenerationScores:
    started = time.monotonic()
    images = generate_for_scenes(model, clip, vae, scenes, cfg, steps=steps, size=size, engine=engine)
    scores = score_images(scenes, images)
    return GenerationScores(cfg=cfg, count=len(scenes), seconds=time.monotonic() - started, **scores)


def reconstruction_psnr(vae: VaeHandle, count: int = 256, seed: int = EVAL_SEED, size: int = 64,
                        engine: Engine | None = None) -> dict[str, float]:
    """PSNR (dB, peak 1) of encode -> decode on ``count`` held-out scenes: over all pixels
    together, and the mean of per-image values."""
    dataset = ShapesDataset(seed=seed, length=count, size=size)
    pixels = torch.stack([dataset.image(i) for i in range(count)]).permute(0, 2, 3, 1)  # [N, H, W, 3]
    with (engine or Engine()).use_vae(vae):
        decoded = torch.cat([vae.decode(vae.encode(batch)) for batch in pixels.split(32)])
    mse = (decoded - pixels).pow(2).flatten(1).mean(1).clamp(min=1e-12)
    return {"psnr": -10.0 * math.log10(float(mse.mean())),
            "psnr_mean_per_image": float((-10.0 * torch.log10(mse)).mean()), "count": count}


def evaluate_checkpoint(path, cfgs=(1.0, 5.0), prompts: int = PROMPT_COUNT, steps: int = 20,
                        size: int = 64, psnr_scenes: int = 256, log=print) -> dict:
    compute = detect_compute()
    model, clip, vae = load_checkpoint(path, compute=compute)
    log(f"loaded {path}: family {model.family}, compute {compute.dtype} (vae {compute.vae_dtype})")
    engine = Engine(compute)
    scenes = evaluation_scenes(prompts)
    results = {"checkpoint": str(path), "prompts": prompts, "steps": steps, "sampler": "euler",
               "scheduler": "normal", "negative": "", "seed": 0, "compute_dtype": str(compute.dtype),
               "generation": []}
    results["reconstruction"] = reconstruction_psnr(vae, count=psnr_scenes, size=size, engine=engine)
    log(f"autoencoder PSNR {results['reconstruction']['psnr']:.2f} dB on "
        f"{results['reconstruction']['count']} held-out scenes")
    for cfg in cfgs:
        scores = evaluate_generation(model, clip, vae, scenes, cfg, steps=steps, size=size, engine=engine)
        results["generation"].append(asdict(scores))
        log(f"cfg {cfg:g}: colour {scores.colour:.1%}  shape {scores.shape:.1%}  position "
            f"{scores.position:.1%}  background {scores.background:.1%}  all three {scores.all_three:.1%}  "
            f"({scores.seconds:.0f} s)")
    return results


def markdown_table(results: dict) -> str:
    lines = ["| CFG | colour | shape | position | background | colour+shape+position |",
             "|---|---|---|---|---|---|"]
    for row in results["generation"]:
        lines.append(f"| {row['cfg']:g} | {row['colour']:.1%} | {row['shape']:.1%} | {row['position']:.1%} "
                     f"| {row['background']:.1%} | {row['all_three']:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ldm.training.evaluate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--cfg", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--prompts", type=int, default=PROMPT_COUNT)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: on a shared machine one thread per process is fastest)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = evaluate_checkpoint(args.checkpoint, cfgs=tuple(args.cfg), prompts=args.prompts,
                                  steps=args.steps)
    print(markdown_table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
