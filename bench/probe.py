"""One side, one memory mode, in a process of its own: peak RSS and peak device memory.

    python -m bench.probe --family sd15 --side weft --mode lowvram --size 512 --steps 4

Prints one JSON line: ``{"side", "mode", "seconds", "peak_rss", "peak_vram", "load_seconds"}``.
Peak RSS is the process's ``VmHWM``; peak VRAM is ``torch.cuda.max_memory_allocated`` (what
the tensors held at most, the same measure for both sides; the CUDA context is not in it).
A fresh process per measurement, since both numbers are high-water marks.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys

import torch

from bench.models import FAMILIES, checkpoint_file
from bench.sides import DiffusersSide, WeftSide, weft_memory_options
from ldm.devices import detect_compute

#: diffusers' counterparts of Weft's memory modes (its documented offloading switches).
DIFFUSERS_MODES = {"normalvram": None, "lowvram": "enable_model_cpu_offload",
                   "novram": "enable_sequential_cpu_offload"}


def peak_rss() -> int:
    """This process's resident-set high-water mark (``VmHWM``). ``ru_maxrss`` would not do: it
    keeps the parent's peak across fork and exec."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def tokenizer_of(family):
    """A CLIP handle that only tokenizes: the family's chunking and pad tokens with tiny weights,
    so the diffusers process holds none of Weft's model weights."""
    from ldm.text import build_clip, tiny_text_state_dict

    name = "sdxl" if family.xl else "sd1"
    return build_clip(tiny_text_state_dict(name), name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--family", default="sd15", choices=sorted(FAMILIES))
    parser.add_argument("--side", choices=["weft", "diffusers"], required=True)
    parser.add_argument("--mode", default="normalvram", choices=sorted(DIFFUSERS_MODES))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    family = FAMILIES[args.family]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    compute = detect_compute(device)
    path = checkpoint_file(family, log=lambda message: print(message, file=sys.stderr))
    result = {"side": args.side, "mode": args.mode, "family": family.name, "size": args.size, "steps": args.steps}
    if args.side == "weft":
        side = WeftSide(family, path, compute, weft_memory_options(args.mode, device))
        result["load_seconds"] = side.load()
        if device.type == "cuda":
            side.release()  # the run starts from the mode's own residency, not from the warm-up load
            torch.cuda.reset_peak_memory_stats(device)
        result["seconds"] = side.text_to_image(args.size, args.steps).seconds
    else:
        offload = DIFFUSERS_MODES[args.mode] if device.type == "cuda" else None
        side = DiffusersSide(family, path, torch.device("cpu") if offload else device, compute.dtype)
        result["load_seconds"] = side.load()
        clip = tokenizer_of(family)
        if offload:
            pipe_hook = side._pipeline()
            try:
                getattr(pipe_hook, offload)()
            except Exception as error:  # noqa: BLE001 - accelerate may be missing
                result["error"] = f"{offload}: {error}"
                print(json.dumps(result))
                return
            side._pipeline = lambda: pipe_hook  # the offloaded pipeline serves the run
            side.device = device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        result["seconds"] = side.text_to_image(args.size, args.steps, clip.tokenize).seconds
    result["peak_rss"] = peak_rss()
    result["peak_vram"] = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
