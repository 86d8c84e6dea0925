"""bench: the results table and its place in the README; the timing helpers."""

from __future__ import annotations

from bench.report import table, update_readme
from bench.run import Best, Results, interleaved
from bench.sides import Timed


def _results() -> dict:
    results = Results("cpu", {"date": "2026-01-01 00:00", "cpu": "Test CPU", "torch": "2", "diffusers": "0.4",
                              "threads": 2, "load_average_at_start": (1.0, 1.0, 1.0)}, {})
    results.add("sd15", "UNet CFG step", Best(2.0, 3.0), Best(2.5, 3.5), "s", "256², bf16")
    results.add("sd15", "peak RSS", 4.2, None, "GB", "--normalvram")
    return {"environment": results.environment, "rows": results.rows, "notes": ["machine shared"]}


def test_rows_carry_wall_and_cpu_ratios():
    rows = _results()["rows"]
    assert rows[0]["weft_over_diffusers"] == 0.8
    assert abs(rows[0]["cpu_time"]["weft_over_diffusers"] - 3.0 / 3.5) < 1e-9
    assert rows[1]["weft_over_diffusers"] is None and rows[1]["cpu_time"] is None


def test_table_and_readme_block_are_replaced_in_place(tmp_path):
    text = table(_results())
    assert "| sd15 | UNet CFG step | 256², bf16 | 2.000 s | 2.500 s | 0.80 | 3.00 / 3.50 s = 0.86 |" in text
    assert "| sd15 | peak RSS | --normalvram | 4.2 GB | – | – | – |" in text
    assert "machine shared" in text
    readme = tmp_path / "README.md"
    readme.write_text("# bench\n\n## Results\n")
    update_readme(readme, "cpu", _results())
    update_readme(readme, "cpu", _results())
    content = readme.read_text()
    assert content.count("<!-- results:cpu -->") == 1 and content.startswith("# bench")


def test_interleaved_takes_each_sides_best():
    a = iter([Timed(3.0, None, 1.0), Timed(2.0, None, 4.0)])
    b = iter([Timed(5.0, None, 5.0), Timed(6.0, None, 2.0)])
    best_a, best_b = interleaved(lambda: next(a), lambda: next(b), 2)
    assert (best_a.seconds, best_a.cpu_seconds, best_b.seconds, best_b.cpu_seconds) == (2.0, 1.0, 5.0, 2.0)
