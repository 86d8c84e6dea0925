"""Regenerate Weft's template media: the input pictures the templates load, and each template's
thumbnail ``<name>-1.webp`` — the image the workflow itself makes on the shipped starter model.

    python workflow_templates/make_thumbnails.py

Starts ``server.py`` on a free port with a throw-away base directory (the repository's
``models/checkpoints`` as an extra model folder, the input pictures in its ``input/``), queues each
template of ``index.json`` as the editor does (``POST /prompt`` with the UI workflow), and saves
what its SaveImage node wrote: one image as it is, a batch side by side on a grid. Pictures are
enlarged 4x with nearest-neighbour sampling (the model paints 64 x 64 pixels) and stored as
lossless WebP. The seeds are the ones in the workflow files, so a rerun gives the same pictures.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from ldm.data.shapes import Scene, grid_centre, render_scene  # noqa: E402

SCALE = 4
LDM_TEMPLATE_PREFIX = "weft_ldm_"
#: The pictures the templates load (LoadImage), drawn by the starter model's own scene renderer.
#: A ``hole`` (x0, y0, x1, y1) is made transparent: LoadImage's MASK output is that area.
INPUT_PICTURES = {
    "weft_input_green_square.png": (Scene("square", "green", "center", "white", grid_centre("center"), 11.0), None),
    "weft_input_red_circle_masked.png": (Scene("circle", "red", "center", "blue", grid_centre("center"), 11.0),
                                         (16, 16, 48, 48)),
}


def draw_inputs(folder: Path) -> None:
    for name, (scene, hole) in INPUT_PICTURES.items():
        picture = Image.fromarray((render_scene(scene) * 255 + 0.5).clip(0, 255).astype(np.uint8), "RGB")
        if hole is not None:
            alpha = np.full(picture.size[::-1], 255, np.uint8)
            x0, y0, x1, y1 = hole
            alpha[y0:y1, x0:x1] = 0
            picture.putalpha(Image.fromarray(alpha))
        picture.save(folder / name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """server.py on a throw-away base directory that sees the repository's checkpoints."""

    def __init__(self, base: Path) -> None:
        (base / "extra_model_paths.yaml").write_text(
            f"weft_repository:\n  base_path: {json.dumps(str(REPO / 'models'))}\n  checkpoints: checkpoints\n")
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = open(base / "server.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "server.py"), "--port", self.url.rsplit(":", 1)[1], "--base-directory",
             str(base), "--disable-all-custom-nodes"], cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server.py exited; see {base / 'server.log'}")
            try:
                self.get("/prompt")
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("server.py did not start")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            return response.read()

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def run(self, workflow: dict) -> list[Image.Image]:
        """Queue a UI workflow; the images its output nodes saved."""
        prompt_id = self.post("/prompt", {"workflow": workflow, "extra_data": {"extra_pnginfo": {"workflow": workflow}}})["prompt_id"]
        deadline = time.monotonic() + 600
        while (entry := json.loads(self.get(f"/history/{prompt_id}")).get(prompt_id)) is None:
            if time.monotonic() > deadline:
                raise SystemExit(f"{prompt_id} did not finish")
            time.sleep(0.2)
        if entry["status"]["status_str"] != "success":
            raise SystemExit(f"the workflow failed: {json.dumps(entry['status'])[:2000]}")
        images = [image for output in entry["outputs"].values() for image in output.get("images", [])]
        return [Image.open(io.BytesIO(self.get("/view?" + urllib.parse.urlencode(image)))).convert("RGB")
                for image in images]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


def thumbnail(images: list[Image.Image]) -> Image.Image:
    """One image as it is; several on a square-ish grid with a 2-pixel gap."""
    columns = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    w, h = images[0].size
    sheet = Image.new("RGB", (columns * w + (columns - 1) * 2, rows * h + (rows - 1) * 2), (24, 24, 27))
    for i, image in enumerate(images):
        sheet.paste(image, ((i % columns) * (w + 2), (i // columns) * (h + 2)))
    return sheet.resize((sheet.width * SCALE, sheet.height * SCALE), Image.NEAREST)


def main() -> None:
    draw_inputs(HERE)
    # The templates of the paper's models need checkpoints that are not shipped: make_ldm_media.py
    # draws their thumbnails.
    names = [t["name"] for category in json.loads((HERE / "index.json").read_text()) for t in category["templates"]
             if not t["name"].startswith(LDM_TEMPLATE_PREFIX)]
    with tempfile.TemporaryDirectory(prefix="weft-thumbnails-") as folder:
        base = Path(folder)
        (base / "input").mkdir()
        for name in INPUT_PICTURES:
            shutil.copy(HERE / name, base / "input" / name)
        server = Server(base)
        try:
            for name in names:
                started = time.monotonic()
                images = server.run(json.loads((HERE / f"{name}.json").read_text()))
                thumbnail(images).save(HERE / f"{name}-1.webp", lossless=True)
                print(f"{name}-1.webp: {len(images)} image(s), {time.monotonic() - started:.1f} s")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
