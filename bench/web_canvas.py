"""How the browser editor holds up with a 300-node workflow: frame times while panning and zooming.

Starts Weft's server on a free port with a throw-away base directory, opens the editor in Debian's
Chromium (headless, software rendering: `--disable-gpu`, so numbers are pessimistic), loads a
generated workflow of 300 real nodes (chains of image, latent, mask and string nodes, ~400 links,
multi-line text widgets, groups) and measures:

- draw: one full redraw of the canvas, called directly (median / p95 over 40), at the fitted zoom
  and zoomed far out (low-detail drawing);
- pan: a real pointer drag across the canvas, 90 moves, at zoom 0.6 and at the zoom that fits
  all 300 nodes; the gaps between animation frames while it runs (mean, p95, max) and the frames
  per second that gives;
- zoom: 60 wheel steps around the pointer, the same frame gaps.

No peer editor is measured beside it: none is available offline. Nothing here is asserted.

Run: .venv/bin/python bench/web_canvas.py [--nodes 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

# One chain: text nodes feeding a regex, images flowing through filters into a preview.
CHAIN = ["StringConcatenate", "StringReplace", "RegexMatch", "PreviewAny",
         "EmptyImage", "ImageBlur", "ImageInvert", "ImageSharpen", "ImageScaleBy", "PreviewImage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_workflow_js(count: int) -> str:
    """JS that fills the document with `count` nodes in wired chains, through the editor's own API."""
    return f"""() => {{
      const doc = weft.doc;
      const chain = {json.dumps(CHAIN)};
      weft.commands.run('new');
      let made = 0, row = 0;
      while (made < {count}) {{
        let prev = null;
        chain.forEach((type, i) => {{
          if (made >= {count} || !doc.defFor(type)) return;
          const node = doc.addNode(type, [i * 330, row * 360]);
          made += 1;
          if (prev) {{
            const slot = node.inputs.findIndex((_, s) => doc.canConnect(prev.id, 0, node.id, s).ok);
            if (slot >= 0) doc.connect(prev.id, 0, node.id, slot);
            else {{
              const w = doc.defOf(node).widgets.find((w) => doc.canConnectToWidget(prev.id, 0, node.id, w.name).ok);
              if (w) doc.connectToWidget(prev.id, 0, node.id, w.name);
            }}
          }}
          prev = node.outputs.length ? node : null;
        }});
        if (row % 4 === 0) doc.addGroup([-20, row * 360 - 70, 3300, 1400], `Rows ${{row}}-${{row + 3}}`);
        row += 1;
      }}
      weft.history.clear();
      weft.view.fitView(false);
      return {{ nodes: doc.nodes.size, links: doc.links.size, groups: doc.groups.size }};
    }}"""


FRAME_PROBE = """() => {
  window.__frames = [];
  const tick = (t) => { window.__frames.push(t); if (window.__probe) requestAnimationFrame(tick); };
  window.__probe = true;
  requestAnimationFrame(tick);
}"""


def gaps(stamps: list[float]) -> dict:
    d = [b - a for a, b in zip(stamps, stamps[1:])]
    if not d:
        return {}
    d.sort()
    return {"frames": len(d), "mean_ms": round(statistics.mean(d), 2), "p95_ms": round(d[int(0.95 * (len(d) - 1))], 2),
            "max_ms": round(d[-1], 2), "fps": round(1000 / statistics.mean(d), 1)}


def draw_times(page, samples: int = 40) -> dict:
    times = page.evaluate(f"""() => {{
      const out = [];
      for (let i = 0; i < {samples}; i++) {{ const t = performance.now(); weft.view.draw(); out.push(performance.now() - t); }}
      return out;
    }}""")
    times.sort()
    return {"median_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2)}


def measure(url: str, count: int) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(url)
        page.wait_for_function("document.body.dataset.ready === 'true'", timeout=30000)
        t0 = time.perf_counter()
        built = page.evaluate(build_workflow_js(count))
        page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        build_s = time.perf_counter() - t0
        built["textareas"] = page.evaluate("document.querySelectorAll('textarea.node-textarea').length")
        result = {"graph": built, "build_and_first_frame_s": round(build_s, 3), "chromium": browser.version}
        result["draw_fitted"] = draw_times(page) | {"scale": round(page.evaluate("weft.view.viewport.scale"), 3)}
        page.evaluate("() => { weft.view.viewport.ds = {scale: 1, offset: [0, 0]}; }")
        result["draw_scale_1"] = draw_times(page)
        page.evaluate("() => weft.view.fitView(false)")
        # Pan: drag the empty canvas with real pointer events, at a working zoom (0.6: a screenful
        # of nodes with their widgets and textareas) and at the fitted zoom (all 300 drawn).
        for label, ds in (("pan", "{scale: 0.6, offset: [60, 120]}"), ("pan_all_visible", None)):
            page.evaluate(f"() => {{ {'weft.view.viewport.ds = ' + ds if ds else 'weft.view.fitView(false)'}; weft.view.requestDraw(); }}")
            page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
            start = page.evaluate("""() => {
              const r = weft.view.canvas.getBoundingClientRect();
              for (let y = r.top + 30; y < r.bottom; y += 23) for (let x = r.left + 30; x < r.right; x += 29) {
                const [gx, gy] = weft.view.graphPoint({clientX: x, clientY: y});
                if (weft.view.hitAt(gx, gy).kind === 'none') return [x, y];
              }
              return [r.left + 5, r.top + 5];
            }""")
            page.evaluate(FRAME_PROBE)
            page.mouse.move(*start)
            page.mouse.down()
            page.mouse.move(start[0] + 300, start[1] + 150, steps=90)
            page.mouse.up()
            page.evaluate("new Promise((r) => requestAnimationFrame(r))")
            result[label] = gaps(page.evaluate("() => { window.__probe = false; return window.__frames; }"))
        page.evaluate("() => { weft.view.viewport.ds = {scale: 0.6, offset: [60, 120]}; weft.view.requestDraw(); }")
        # Zoom: wheel steps around the pointer, in and out.
        page.evaluate(FRAME_PROBE)
        for i in range(60):
            page.mouse.wheel(0, -60 if i < 30 else 60)
        page.evaluate("new Promise((r) => requestAnimationFrame(r))")
        result["zoom"] = gaps(page.evaluate("() => { window.__probe = false; return window.__frames; }"))
        result["last_frame_ms"] = round(page.evaluate("weft.view.lastFrameMs"), 2)
        browser.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        port = free_port()
        log = open(Path(base) / "server.log", "w")
        server = subprocess.Popen([sys.executable, "server.py", "--port", str(port), "--base-directory", base],
                                  cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(url + "api/object_info", timeout=2)
                    break
                except OSError:
                    time.sleep(0.2)
            result = measure(url, args.nodes)
        finally:
            server.terminate()
            server.wait(timeout=20)
            log.close()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    g = result["graph"]
    print(f"graph: {g['nodes']} nodes, {g['links']} links, {g['groups']} groups, {g['textareas']} textareas "
          f"(built + first frame {result['build_and_first_frame_s']} s), {result['chromium']}, software rendering")
    for key in ("draw_fitted", "draw_scale_1"):
        d = result[key]
        print(f"{key:13} median {d['median_ms']:7.2f} ms   p95 {d['p95_ms']:7.2f} ms" + (f"   (scale {d['scale']})" if "scale" in d else ""))
    for key in ("pan", "pan_all_visible", "zoom"):
        d = result[key]
        print(f"{key:15} {d['frames']:4d} frames   mean gap {d['mean_ms']:6.2f} ms   p95 {d['p95_ms']:6.2f} ms   "
              f"max {d['max_ms']:6.2f} ms   ~{d['fps']} fps")


if __name__ == "__main__":
    main()
