"""Weft against diffusers, same process, same random weights, on whatever device is present.

    python -m bench.run                 # the plan for this device (CPU: SD1.5 at 256²; GPU: SD1.5 + SDXL)
    python -m bench.run --quick         # a fast pass of the same code (tiny sizes; checks the script)
    python -m bench.run --no-roofline   # without the per-op-class roofline that follows the plan

Writes ``bench/results/<device>.json`` and the table for that device in ``bench/README.md``; then
``bench.roofline`` writes ``bench/results/roofline-<device>.json`` and its table.
Timings are the minimum over repeats after a warm-up, Weft and diffusers interleaved so load from
other processes falls on both; memory comes from fresh processes (``bench.probe``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from bench.models import FAMILIES, checkpoint_file
from bench.report import update_readme
from bench.sides import DiffusersSide, WeftSide, weft_memory_options
from ldm.devices import detect_compute

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Plan:
    families: tuple[str, ...]
    size: dict  # family -> image side in pixels
    steps: int  # Euler steps of the text-to-image run
    repeats: int  # timed UNet calls per side (after one warm-up)
    t2i_repeats: int  # timed text-to-image runs per side
    fp32_repeats: int  # CPU only: timed fp32 calls per side
    probe_steps: int
    probe_modes: tuple[str, ...]
    compile_modes: tuple[str, ...] = ()
    diffusers_channels_last: bool = False


CPU_PLAN = Plan(families=("sd15",), size={"sd15": 256}, steps=4, repeats=5, t2i_repeats=2, fp32_repeats=1,
                probe_steps=1, probe_modes=("normalvram",), diffusers_channels_last=True)
GPU_PLAN = Plan(families=("sd15", "sdxl"), size={"sd15": 512, "sdxl": 1024}, steps=20, repeats=10, t2i_repeats=2,
                fp32_repeats=0, probe_steps=8, probe_modes=("normalvram", "lowvram", "novram"),
                compile_modes=("reduce-overhead",))
QUICK_PLAN = Plan(families=("sd15",), size={"sd15": 64, "sdxl": 64}, steps=2, repeats=1, t2i_repeats=1,
                  fp32_repeats=1, probe_steps=1, probe_modes=("normalvram",), diffusers_channels_last=True)


@dataclass
class Results:
    device: str
    environment: dict
    plan: dict
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def add(self, family: str, metric: str, weft, diffusers, unit: str, setting: str = "") -> None:
        cpu = None
        if isinstance(weft, Best) and isinstance(diffusers, Best):
            cpu = {"weft": round(weft.cpu_seconds, 3), "diffusers": round(diffusers.cpu_seconds, 3),
                   "weft_over_diffusers": weft.cpu_seconds / diffusers.cpu_seconds if diffusers.cpu_seconds else None}
            weft, diffusers = round(weft.seconds, 4), round(diffusers.seconds, 4)
        ratio = weft / diffusers if isinstance(weft, (int, float)) and isinstance(diffusers, (int, float)) \
            and diffusers else None
        self.rows.append({"family": family, "metric": metric, "setting": setting, "weft": weft,
                          "diffusers": diffusers, "unit": unit, "weft_over_diffusers": ratio, "cpu_time": cpu})
        shown = "" if ratio is None else f"  ratio {ratio:.2f}"
        if cpu is not None and cpu["weft_over_diffusers"] is not None:
            shown += f" (CPU time {cpu['weft']} / {cpu['diffusers']} s, ratio {cpu['weft_over_diffusers']:.2f})"
        print(f"[{family}] {metric} {setting}: weft {weft} diffusers {diffusers} {unit}{shown}", flush=True)


def environment(device: torch.device) -> dict:
    import diffusers

    env = {"torch": torch.__version__, "diffusers": diffusers.__version__, "python": platform.python_version(),
           "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M"),
           "load_average_at_start": os.getloadavg()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    env["cpu"] = f"{cpu} ({os.cpu_count()} logical CPUs)"
    return env


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device).lower().replace(" ", "-")
    return "cpu"


@dataclass(frozen=True)
class Best:
    """The fastest of several timed calls: wall clock, and process CPU time (the work)."""

    seconds: float
    cpu_seconds: float

    @staticmethod
    def of(samples) -> "Best":
        return Best(min(t.seconds for t in samples), min(t.cpu_seconds for t in samples))


def best(fn, repeats: int) -> Best:
    return Best.of([fn() for _ in range(max(1, repeats))])


def interleaved(a, b, repeats: int) -> tuple[Best, Best]:
    """The best of ``a()`` and of ``b()`` over ``repeats`` rounds, one call of each per round."""
    times_a, times_b = [], []
    for _ in range(max(1, repeats)):
        times_a.append(a())
        times_b.append(b())
    return Best.of(times_a), Best.of(times_b)


def warm_file(path: Path) -> None:
    """Read the checkpoint once so both loaders find it in the page cache."""
    with open(path, "rb") as handle:
        while handle.read(64 << 20):
            pass


def probe(family: str, side: str, mode: str, size: int, steps: int) -> dict:
    command = [sys.executable, "-m", "bench.probe", "--family", family, "--side", side, "--mode", mode,
               "--size", str(size), "--steps", str(steps), "--threads", str(torch.get_num_threads())]
    done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": (done.stderr or done.stdout)[-600:]}
    return json.loads(lines[-1])


def bench_family(name: str, plan: Plan, device: torch.device, results: Results, quick: bool) -> None:
    family = FAMILIES[name]
    size = plan.size[name]
    latent = size // 8
    path = checkpoint_file(family)
    warm_file(path)
    compute = detect_compute(device)
    weft = WeftSide(family, path, compute, weft_memory_options("normalvram", device))
    theirs = DiffusersSide(family, path, device, compute.dtype)
    results.add(name, "checkpoint load", round(weft.load(), 2), round(theirs.load(), 2), "s",
                f"file → ready in {compute.dtype}")
    dtype = str(compute.dtype).removeprefix("torch.")

    weft.unet_step(latent), theirs.unet_step(latent)  # warm-up (allocator, oneDNN/cuDNN plans)
    ours, base = interleaved(lambda: weft.unet_step(latent), lambda: theirs.unet_step(latent), plan.repeats)
    results.add(name, "UNet CFG step", ours, base, "s", f"{size}², batch 2, {dtype}")
    theirs_best = base
    if plan.diffusers_channels_last:
        theirs.set_channels_last(True)
        theirs.unet_step(latent)
        ours_again, cl = interleaved(lambda: weft.unet_step(latent), lambda: theirs.unet_step(latent),
                                     plan.repeats)
        theirs.set_channels_last(False)
        results.add(name, "UNet CFG step", ours_again, cl, "s",
                    f"{size}², batch 2, {dtype}, diffusers channels-last")
        # Each side's fastest of all its calls (2 × repeats); diffusers' from either layout.
        label = "channels-last" if cl.seconds < base.seconds else "default layout"
        ours, theirs_best = Best.of([ours, ours_again]), Best.of([base, cl])
        results.add(name, "UNet CFG step", ours, theirs_best, "s",
                    f"{size}², batch 2, {dtype}, diffusers' best configuration (fastest: {label})")
    if device.type == "cpu":
        packing_lever(weft, latent, plan, results, name, f"{size}², batch 2, {dtype}", theirs_best)

    weft.vae_decode(latent), theirs.vae_decode(latent)
    ours_vae, base_vae = interleaved(lambda: weft.vae_decode(latent), lambda: theirs.vae_decode(latent),
                                     plan.repeats)
    results.add(name, "VAE decode", ours_vae, base_vae, "s", f"{size}², {dtype}")

    ours_t2i, base_t2i = interleaved(lambda: weft.text_to_image(size, plan.steps),
                                     lambda: theirs.text_to_image(size, plan.steps, weft.clip.tokenize),
                                     plan.t2i_repeats)
    images = weft.last_image
    results.add(name, "text-to-image", ours_t2i, base_t2i, "s",
                f"{size}², {plan.steps} Euler steps, CFG 7.5, {dtype}")
    if not torch.isfinite(images).all():
        results.notes.append(f"{name}: Weft's image had non-finite values")

    if plan.fp32_repeats and compute.dtype != torch.float32:
        weft.set_dtype(torch.float32)
        theirs.set_dtype(torch.float32)
        weft.unet_step(latent), theirs.unet_step(latent)
        ours32, base32 = interleaved(lambda: weft.unet_step(latent), lambda: theirs.unet_step(latent),
                                     plan.fp32_repeats)
        results.add(name, "UNet CFG step", ours32, base32, "s", f"{size}², batch 2, float32")
        packing_lever(weft, latent, plan, results, name, f"{size}², batch 2, float32", base32,
                      repeats=plan.fp32_repeats)
        results.add(name, f"{dtype} speed-up over float32 (wall)", round(ours32.seconds / ours.seconds, 2),
                    round(base32.seconds / base.seconds, 2), "×", "UNet CFG step time fp32 / default")
        results.add(name, f"{dtype} speed-up over float32 (CPU time)",
                    round(ours32.cpu_seconds / ours.cpu_seconds, 2), round(base32.cpu_seconds / base.cpu_seconds, 2),
                    "×", "UNet CFG step CPU time fp32 / default")
        weft.set_dtype(compute.dtype)
        theirs.set_dtype(compute.dtype)

    for mode in plan.compile_modes:
        weft.engine.set_compile(mode)
        started = time.perf_counter()
        weft.unet_step(latent), weft.unet_step(latent), weft.unet_step(latent)
        warmup = time.perf_counter() - started
        fast = best(lambda: weft.unet_step(latent), plan.repeats)
        results.add(name, "UNet CFG step", fast, base, "s",
                    f"{size}², batch 2, {dtype}, Weft --compile {mode} (warm-up {warmup:.0f} s), diffusers eager")
        results.add(name, "steps per second", round(1 / fast.seconds, 1), round(1 / base.seconds, 1), "it/s",
                    f"Weft --compile {mode}")
    weft.engine.set_compile(None)
    results.add(name, "steps per second", round(1 / ours.seconds, 2), round(1 / theirs_best.seconds, 2), "it/s",
                "eager, each side's best configuration")
    weft.release()
    theirs.release()
    del weft, theirs
    gc.collect()  # the probes below load the model again in processes of their own
    if device.type == "cuda":
        torch.cuda.empty_cache()

    for mode in plan.probe_modes:
        ours_probe = probe(name, "weft", mode, size, plan.probe_steps)
        base_probe = probe(name, "diffusers", mode, size, plan.probe_steps)
        counterpart = {"normalvram": "", "lowvram": " (diffusers: model CPU offload)",
                       "novram": " (diffusers: sequential CPU offload)"}[mode]
        for key, metric, unit in (("peak_rss", "peak RSS", "GB"), ("peak_vram", "peak VRAM", "GB"),
                                  ("seconds", "text-to-image in the probe", "s")):
            ours_value, base_value = ours_probe.get(key), base_probe.get(key)
            if ours_value is None and base_value is None:
                continue
            if unit == "GB":
                ours_value = None if ours_value is None else round(ours_value / 1e9, 3)
                base_value = None if base_value is None else round(base_value / 1e9, 3)
            else:
                ours_value = None if ours_value is None else round(ours_value, 2)
                base_value = None if base_value is None else round(base_value, 2)
            results.add(name, metric, ours_value, base_value, unit,
                        f"--{mode}{counterpart}, {size}², {plan.probe_steps} steps + decode")
        for side, found in (("weft", ours_probe), ("diffusers", base_probe)):
            if "error" in found:
                results.notes.append(f"{name} {side} {mode} probe failed: {found['error']}")


def packing_lever(weft: WeftSide, latent: int, plan: Plan, results: Results, name: str, setting: str,
                  theirs: Best, repeats: int | None = None) -> None:
    """Weft's step with plain weights (``F.conv2d`` / ``F.linear``, the path before packing) beside
    the packed default, and how far apart their outputs are (relative L2 norm of the difference)."""
    packed_out = weft.unet_step(latent).value.float()
    weft.set_packing(False)
    plain_out = weft.unet_step(latent).value.float()  # also the warm-up of the plain path
    plain = best(lambda: weft.unet_step(latent), repeats or plan.repeats)
    weft.set_packing(True)
    weft.unet_step(latent)
    results.add(name, "UNet CFG step", plain, theirs, "s", f"{setting}, Weft with plain weights (packing off)")
    difference = float(f"{((packed_out - plain_out).norm() / plain_out.norm()).item():.3g}")
    results.add(name, "relative difference, packed vs plain weights", difference, None, "",
                f"{setting}: ‖packed − plain‖ / ‖plain‖ of the UNet output")


def roofline(quick: bool, out: str, readme: bool) -> None:
    """The per-op-class roofline of one UNet step (``bench.roofline``), in a fresh process so the
    plan's loaded models and allocator state do not weigh on it."""
    command = [sys.executable, "-m", "bench.roofline", "--out", out] + (["--quick"] if quick else []) \
        + ([] if readme else ["--no-readme"])
    done = subprocess.run(command, cwd=HERE.parent)
    if done.returncode:
        print(f"roofline failed with exit status {done.returncode}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, numbers meaningless")
    parser.add_argument("--families", nargs="*", default=None, choices=sorted(FAMILIES))
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite bench/README.md")
    parser.add_argument("--no-roofline", action="store_true", help="skip the per-op-class roofline after the plan")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    plan = QUICK_PLAN if args.quick else (GPU_PLAN if device.type == "cuda" else CPU_PLAN)
    families = tuple(args.families) if args.families else plan.families
    label = device_label(device) + ("-quick" if args.quick else "")
    results = Results(label, environment(device), asdict(plan))
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in families:
        bench_family(name, plan, device, results, args.quick)
        results.environment["seconds"] = round(time.perf_counter() - started)
        results.environment["load_average_at_end"] = os.getloadavg()
        (out / f"{label}.json").write_text(json.dumps(asdict(results), indent=1))
    print(f"done in {time.perf_counter() - started:.0f} s → {out / (label + '.json')}")
    if not args.no_readme and not args.quick:
        update_readme(HERE / "README.md", label, asdict(results))
    if not args.no_roofline:
        roofline(args.quick, args.out, readme=not args.no_readme and not args.quick)


if __name__ == "__main__":
    main()
