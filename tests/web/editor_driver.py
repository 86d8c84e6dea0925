"""Drives the editor the way a person does — pointer drags on sockets, typing in the search — and
reads positions and state from `window.weft` (the running editor) to know where to point."""

from __future__ import annotations

import json
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


class Editor:
    def __init__(self, page, url: str):
        self.page = page
        self.url = url
        # A standing listener keeps file-chooser interception on for the whole page, so no click
        # can race the interception being switched on.
        self._choosers = []
        page.on("filechooser", lambda chooser: self._choosers.append(chooser))

    # -- page ------------------------------------------------------------------------------
    def open(self, path: str = "/"):
        self.page.goto(self.url + path)
        self.wait_ready()

    def reload(self):
        self.page.reload()
        self.wait_ready()

    def wait_ready(self):
        self.page.wait_for_function("document.body.dataset.ready === 'true'", timeout=15000)
        self.settle()

    def snapshot(self, name: str):
        """Save a screenshot of the page now as test-artifacts/web/<name>.png."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.settle()
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def settle(self):
        """Wait for the next two frames, so what changed is drawn."""
        self.page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def new_workflow(self, scale: float = 0.8, offset=(40, 80)):
        """An empty canvas with a known camera, so graph points map to known screen points."""
        self.js("([s, o]) => { weft.commands.run('new'); weft.view.viewport.ds = {scale: s, offset: o}; weft.view.requestDraw(); }",
                [scale, list(offset)])
        self.settle()

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    # -- reading the document ---------------------------------------------------------------
    def node_ids(self, type_: str | None = None) -> list[int]:
        return self.js("(t) => [...weft.doc.nodes.values()].filter((n) => !t || n.type === t).map((n) => n.id)", type_)

    def node(self, node_id: int) -> dict:
        return self.js("(id) => JSON.parse(JSON.stringify(weft.doc.nodes.get(id)))", node_id)

    def links(self) -> list[dict]:
        return self.js("() => [...weft.doc.links.values()]")

    def links_into(self, node_id: int) -> list[dict]:
        return [link for link in self.links() if link["target_id"] == node_id]

    def slot(self, node_id: int, kind: str, name: str) -> int:
        node = self.node(node_id)
        names = [s["name"] for s in node["inputs" if kind == "input" else "outputs"]]
        return names.index(name)

    # -- pointing ---------------------------------------------------------------------------
    def socket_point(self, node_id: int, kind: str, slot: int) -> tuple[float, float]:
        p = self.js("([id, kind, slot]) => weft.view.socketClientPos(id, kind, slot)", [node_id, kind, slot])
        assert p, f"no {kind} socket {slot} on node {node_id}"
        return p["x"], p["y"]

    def graph_to_client(self, gx: float, gy: float) -> tuple[float, float]:
        p = self.js("([x, y]) => weft.view.clientPoint(x, y)", [gx, gy])
        return p["x"], p["y"]

    def node_title_point(self, node_id: int) -> tuple[float, float]:
        r = self.js("(id) => weft.view.nodeClientRect(id)", node_id)
        return r["x"] + min(r["w"] * 0.6, 120), r["y"] + 12

    def drag(self, start, end, steps: int = 12):
        mouse = self.page.mouse
        mouse.move(*start)
        mouse.down()
        mouse.move(*end, steps=steps)
        mouse.up()
        self.settle()

    def connect(self, origin: int, output: str, target: int, input_: str):
        """Drag from an output socket to an input socket."""
        start = self.socket_point(origin, "output", self.slot(origin, "output", output))
        end = self.socket_point(target, "input", self.slot(target, "input", input_))
        self.drag(start, end)

    def empty_point(self) -> tuple[float, float]:
        """A client point on the canvas with nothing under it."""
        return self.js("""() => {
            const r = weft.view.canvas.getBoundingClientRect();
            for (let y = r.top + 60; y < r.bottom - 20; y += 37) for (let x = r.left + 40; x < r.right - 20; x += 41) {
              const [gx, gy] = weft.view.graphPoint({clientX: x, clientY: y});
              if (weft.view.hitAt(gx, gy).kind === 'none') return [x, y];
            }
            return null;
        }""")

    # -- search -----------------------------------------------------------------------------
    def add_node_via_search(self, query: str, at: tuple[float, float], pick: str | None = None) -> int:
        """Double-click the canvas at `at`, type `query`, pick the result named `pick` (or the first)."""
        before = set(self.node_ids())
        self.page.mouse.dblclick(*at)
        self.page.wait_for_selector(".search .search-input")
        self.page.keyboard.type(query)
        if pick:
            self.page.click(f'.search-item[data-type="{pick}"]')
        else:
            self.page.keyboard.press("Enter")
        self.settle()
        added = sorted(set(self.node_ids()) - before)
        assert len(added) == 1, f"expected one new node, got {added}"
        return added[0]

    # -- files ------------------------------------------------------------------------------
    def upload_with_button(self, node_id: int, widget_index: int, name: str, data: bytes, mime: str = "image/png"):
        """Click a node's upload button and choose `data` as file `name` in the file chooser."""
        rect = self.js(f"() => weft.view.widgetClientRect({node_id}, {widget_index})")
        x, y = rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2
        hit = self.js(f"() => weft.view.hitAt(...weft.view.graphPoint({{clientX: {x}, clientY: {y}}}))")
        assert hit.get("kind") == "widget" and hit.get("index") == widget_index, hit
        self._choosers.clear()
        self.page.mouse.click(x, y)
        for _ in range(100):
            if self._choosers:
                break
            self.page.wait_for_timeout(100)
        else:
            under = self.js(f"() => document.elementFromPoint({x}, {y})?.outerHTML.slice(0, 120)")
            busy = self.js("() => weft.interaction.busy")
            raise AssertionError(f"no file chooser: element under the pointer {under!r}, gesture active {busy}")
        self._choosers.pop().set_files(files=[{"name": name, "mimeType": mime, "buffer": data}])
        self.page.wait_for_function(f"() => weft.doc.nodes.get({node_id}).widgets_values[0] === {name!r}")

    def drop_file(self, data: bytes, name: str, mime: str, at: tuple[float, float] | None = None):
        """Drop a file on the canvas as a drag-and-drop from the desktop would."""
        x, y = at or self.empty_point()
        self.js("""async ([bytes, name, mime, x, y]) => {
            const file = new File([new Uint8Array(bytes)], name, { type: mime });
            const dt = new DataTransfer();
            dt.items.add(file);
            const target = document.elementFromPoint(x, y);
            for (const type of ['dragenter', 'dragover', 'drop']) {
              target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, clientX: x, clientY: y, bubbles: true, cancelable: true }));
            }
        }""", [list(data), name, mime, x, y])

    def load_workflow(self, workflow: dict) -> bool:
        return self.js("(w) => weft.files.loadWorkflowJson(w)", json.loads(json.dumps(workflow)))
