"""Jobs per minute through the whole server, with 1 and 2 worker processes, and the queue's own
cost per job (``python -m bench.throughput``; results in bench/README.md, "Throughput").

A real server.py on a throw-away base folder with the tiny random checkpoints of ``ldm.tiny``:
- throughput: ``JOBS`` text-to-image jobs (256 × 256, 10 Euler steps, alternating two tiny
  checkpoints) queued at once; the time from the first POST to the last history entry;
- overhead: ``TRIVIAL`` jobs that do nothing (a string shown by PreviewAny) queued at once; the same
  clock, per job: HTTP, validation, the durable queue, dispatch, the worker's round trip and the
  history write. ``--workers 0`` (jobs in a thread of the server) is measured beside it.
``--ray`` measures 1 and 2 workers as Ray actors instead (``--ray auto``; bench/results/throughput-ray.json).
Timings are wall clock on whatever machine runs it, so only the ratios within one run mean much.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.api.conftest import ServerProcess
from tests.e2e.prompts import default_txt2img

REPO = Path(__file__).resolve().parents[1]
CHECKPOINTS = ("tiny_sd1.safetensors", "tiny_sd2.safetensors")


def _queue(server: ServerProcess, prompts: list[dict]) -> float:
    started = time.monotonic()
    ids = []
    for prompt in prompts:
        status, body = server.post("/prompt", {"prompt": prompt})
        if status != 200:
            raise RuntimeError(body)
        ids.append(body["prompt_id"])
    for prompt_id in ids:
        entry = server.wait_for_history(prompt_id, 600)
        if entry["status"]["status_str"] != "success":
            raise RuntimeError(entry["status"])
    return time.monotonic() - started


def _txt2img(count: int, offset: int = 0) -> list[dict]:
    return [default_txt2img(CHECKPOINTS[n % 2], seed=offset + n, steps=10, size=256) for n in range(count)]


def _trivial(count: int, offset: int = 0) -> list[dict]:
    return [{"1": {"class_type": "PrimitiveString", "inputs": {"value": f"job {offset + n}"}},
             "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}} for n in range(count)]


def measure(base: Path, workers: int, jobs: int, trivial: int, ray: bool = False) -> dict:
    server = ServerProcess(base, ["--workers", str(workers)] + (["--ray", "auto"] if ray else [])).start(timeout=300)
    try:
        _queue(server, _txt2img(2, 10_000))  # warm: models loaded, first-call costs paid
        _queue(server, _trivial(5, 10_000))
        txt2img = _queue(server, _txt2img(jobs))
        overhead = _queue(server, _trivial(trivial))
    finally:
        server.stop()
    return {"workers": workers, "ray": ray, "jobs": jobs, "seconds": round(txt2img, 2),
            "jobs_per_minute": round(60 * jobs / txt2img, 1),
            "trivial_jobs": trivial, "overhead_ms_per_job": round(1000 * overhead / trivial, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--trivial", type=int, default=100)
    parser.add_argument("--ray", action="store_true",
                        help="workers as Ray actors (--ray auto), 1 and 2 of them; writes throughput-ray.json")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = args.out or str(REPO / "bench" / "results" / ("throughput-ray.json" if args.ray else "throughput.json"))
    base = Path(tempfile.mkdtemp(prefix="weft-throughput-"))
    subprocess.run([sys.executable, "-m", "ldm.tiny", str(base / "models")], cwd=REPO, check=True,
                   capture_output=True)
    counts = (1, 2) if args.ray else (0, 1, 2)
    rows = [measure(base, workers, args.jobs, args.trivial, args.ray) for workers in counts]
    result = {"cpu_count": os.cpu_count(), "rows": rows, "when": time.strftime("%Y-%m-%d %H:%M")}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
