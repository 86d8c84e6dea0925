"""Benchmarks that run Weft and diffusers in the same process on identical random weights.

``python -m bench.run`` (or ``make bench``) measures whatever device is present and writes
``bench/results/<device>.json`` and the table in ``bench/README.md``. diffusers is a measuring
stick here, as in the tests: Weft's own code never imports it.
"""

import os

# Idle OpenMP threads sleep instead of spinning: on a shared machine spinning steals cores from
# the other side of the comparison and inflates CPU-time measurements. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
