"""Results JSON -> the markdown table of one device in bench/README.md (between its markers)."""

from __future__ import annotations

import re
from pathlib import Path


def _value(value, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return f"{value} {unit}"


def table(results: dict) -> str:
    env = results["environment"]
    lines = [f"Measured {env['date']} on {env.get('gpu') or env['cpu']}; torch {env['torch']}, diffusers "
             f"{env['diffusers']}, {env['threads']} threads; whole run {env.get('seconds', '?')} s; load "
             f"average at start {', '.join(f'{x:.1f}' for x in env['load_average_at_start'])}, at end "
             f"{', '.join(f'{x:.1f}' for x in env.get('load_average_at_end', ()))}.",
             "",
             "| model | metric | setting | Weft | diffusers | Weft / diffusers | CPU time: Weft / diffusers |",
             "|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        ratio = row["weft_over_diffusers"]
        cpu = row.get("cpu_time") or {}
        cpu_ratio = cpu.get("weft_over_diffusers")
        cpu_text = "–" if cpu_ratio is None else f"{cpu['weft']:.2f} / {cpu['diffusers']:.2f} s = {cpu_ratio:.2f}"
        lines.append(f"| {row['family']} | {row['metric']} | {row['setting']} | {_value(row['weft'], row['unit'])} | "
                     f"{_value(row['diffusers'], row['unit'])} | {'–' if ratio is None else f'{ratio:.2f}'} | "
                     f"{cpu_text} |")
    for note in results.get("notes", []):
        lines.append(f"\nNote: {note}")
    return "\n".join(lines)


def replace_block(readme: Path, marker: str, body: str, heading: str) -> None:
    """Put ``body`` between ``<!-- marker -->`` and ``<!-- /marker -->`` in ``readme``; where the markers
    are missing, append them under ``heading``."""
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    block = f"{start}\n{body}\n{end}"
    text = readme.read_text() if readme.exists() else ""
    if start in text and end in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + f"\n\n{heading}\n\n{block}\n"
    readme.write_text(text)


def update_readme(readme: Path, label: str, results: dict) -> None:
    replace_block(readme, f"results:{label}", table(results), heading=f"### {label}")
