"""Benchmarks that run Weft and diffusers in the same process on identical random weights.

``python -m bench.run`` (or ``make bench``) measures whatever device is present and writes
``bench/results/<device>.json`` and the table in ``bench/README.md``. diffusers is a measuring
stick here, as in the tests: Weft's own code never imports it.
"""
