#!/usr/bin/env bash
# The GPU benchmark as one command for a lent GPU machine (see bench/README.md, "On a GPU").
# Run from the repository root there; writes $OUT/<gpu>.json, $OUT/bench.log and $OUT/README-table.md.
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       -d .whl diffusers==0.42.1 importlib_metadata==8.7.0      # here, once (diffusers is not there)
#   device run: carry [".whl"], command "bash bench/gpu.sh", timeout 600
set -o pipefail
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} || exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)" || exit 1
PYTHONUNBUFFERED=1 timeout 560 python3 -m bench.run --out "$OUT" --no-readme "$@" 2>&1 | grep -v "kept in float32" | tee "$OUT/bench.log"
python3 - "$OUT" <<'PY'
import json, sys, pathlib
from bench.report import table
out = pathlib.Path(sys.argv[1])
for path in out.glob("*.json"):
    (out / "README-table.md").write_text(f"### {path.stem}\n\n" + table(json.loads(path.read_text())) + "\n")
PY
