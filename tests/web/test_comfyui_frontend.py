"""ComfyUI's own frontend (the pinned comfyui-frontend-package, installed by `make test` from
requirements-dev.txt: nothing is installed at run time) served by Weft with --front-end comfyui,
driven in Chromium as a user drives it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from editor_driver import Editor
from tests.api.conftest import ServerProcess
from tests.clients.conftest import starter_base

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
GRAPH_READY = "() => window.app?.graph?._nodes?.length > 0"


@pytest.fixture(scope="module")
def comfyui_server(tmp_path_factory):
    """Weft serving ComfyUI's frontend to a user who has used that frontend before: its settings
    say the first-run tour is done, so it opens on its default graph, not on its templates."""
    base = starter_base(tmp_path_factory.mktemp("comfyui-frontend"))
    (base / "user" / "default").mkdir(parents=True)
    (base / "user" / "default" / "comfy.settings.json").write_text(json.dumps({"Comfy.TutorialCompleted": True}))
    proc = ServerProcess(base, ["--front-end", "comfyui"])
    proc.start()
    yield proc
    proc.stop()


class Watched:
    """A page with what went wrong on it: page errors, and answers of 400 or more from Weft."""

    def __init__(self, context, server_url: str):
        self.page = context.new_page()
        self.errors: list[str] = []
        self.bad: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", lambda r: self.bad.append(f"{r.status} {r.request.method} {r.url}")
                     if r.status >= 400 and r.url.startswith(server_url) else None)

    def snapshot(self, name: str):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def assert_clean(self):
        assert not self.errors, "page errors:\n" + "\n".join(self.errors)
        assert not self.bad, "error answers:\n" + "\n".join(self.bad)


@pytest.fixture
def frontend(context, comfyui_server):
    watched = Watched(context, comfyui_server.url)
    watched.page.goto(comfyui_server.url + "/")
    watched.page.wait_for_function(GRAPH_READY, timeout=60000)
    return watched


def _open_template(page, name: str):
    """As a user does: the Templates sidebar button, the Weft category, the card."""
    page.get_by_role("button", name="Templates").click()
    page.locator("[role=dialog] nav").get_by_text("Weft", exact=True).last.click()
    page.locator(f'[data-testid="template-workflow-{name}"]').click()
    page.wait_for_function(f"() => window.app.graph._nodes.some((n) => n.widgets?.some((w) => w.value === "
                           f"'{name}'))", timeout=15000)


def test_a_first_visit_opens_the_templates_with_weft_first(context, tmp_path):
    """A user new to that frontend gets its first-run templates browser: Weft's category is listed,
    and the thumbnails of templates whose (large, optional) media packages are not installed answer
    a stand-in picture, not a 404."""
    server = ServerProcess(starter_base(tmp_path), ["--front-end", "comfyui"]).start()
    try:
        watched = Watched(context, server.url)
        watched.page.goto(server.url + "/")
        card = watched.page.locator('[data-testid="template-workflow-weft_text_to_image"]')
        watched.page.locator("[role=dialog] nav").get_by_text("Weft", exact=True).last.click()
        card.wait_for(timeout=60000)
        thumb = card.locator("img").first
        thumb.wait_for()
        watched.page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
        watched.snapshot("comfyui_frontend_first_visit")
        watched.assert_clean()
    finally:
        server.stop()


def test_loads_renders_and_runs_the_starter_workflow(frontend, comfyui_server):
    page = frontend.page
    default_types = page.evaluate("() => window.app.graph._nodes.map((n) => n.type)")
    assert "KSampler" in default_types and "SaveImage" in default_types
    drawn = page.evaluate("() => { const c = document.querySelector('canvas'); return [c.width, c.height]; }")
    assert min(drawn) > 100
    frontend.snapshot("comfyui_frontend_default_graph")
    # Packs' WEB_DIRECTORY scripts load in it as in ComfyUI (the repository's example pack), and so
    # does Weft's bridge extension with its command.
    names = page.evaluate("() => window.app.extensions.map((e) => e.name)")
    assert "weft.example.colour" in names and "Weft.Bridge" in names
    assert page.evaluate("() => window.app.extensionManager.command.commands.some((c) => c.id === 'Weft.OpenEditor')")

    _open_template(page, "weft_text_to_image")
    page.get_by_role("button", name="Run", exact=True).click()
    # The finished job appears in the frontend's media assets (read from Weft's /jobs history).
    page.get_by_role("button", name="Assets (a)").click()
    picture = page.locator('img[src*="/api/view?filename=weft_text_to_image_"]').first
    picture.wait_for(timeout=60000)
    assert page.evaluate("(img) => img.complete && img.naturalWidth", picture.element_handle()) == 64
    jobs = comfyui_server.get("/api/jobs?status=completed")[1]["jobs"]
    assert jobs and jobs[0]["preview_output"]["filename"].startswith("weft_text_to_image_")
    frontend.snapshot("comfyui_frontend_ran_starter")
    frontend.assert_clean()


def test_workflows_go_both_ways_with_weft_editor(frontend, context, comfyui_server):
    page = frontend.page
    _open_template(page, "weft_seed_variations")
    page.evaluate("() => { window.app.extensionManager.command.execute('Comfy.SaveWorkflow'); }")
    name_box = page.locator("[role=dialog] input[type=text]")
    name_box.fill("from comfyui")
    name_box.press("Enter")
    page.wait_for_function("async () => (await (await fetch('api/userdata?dir=workflows')).json())"
                           ".includes('from comfyui.json')", timeout=15000)
    listed = comfyui_server.get("/api/userdata?dir=workflows")[1]
    assert "from comfyui.json" in listed

    # Weft's editor, at /weft/ beside ComfyUI's frontend, opens it from its workflow list.
    editor = Editor(context.new_page(), comfyui_server.url)
    editor_errors: list[str] = []
    editor.page.on("pageerror", lambda e: editor_errors.append(str(e)))
    editor.open("/weft/")
    editor.page.click("#workflows-toggle")
    editor.page.click('.workflow-item[data-name="from comfyui"] .workflow-open')
    editor.settle()
    types = editor.js("() => [...weft.doc.nodes.values()].map((n) => n.type)")
    assert "KSampler" in types and "SaveImage" in types

    # The reverse: saved in Weft's editor, listed and opened in ComfyUI's frontend.
    editor.js("() => { weft.commands.run('save-as'); }")
    editor.page.fill(".dialog-input", "from weft")
    editor.page.keyboard.press("Enter")
    editor.page.wait_for_selector(".toast >> text=Saved")
    saved = json.loads((comfyui_server.base / "user" / "default" / "workflows" / "from weft.json").read_text())
    assert not editor_errors, editor_errors

    page.reload()  # as a user does to see files another window wrote
    page.wait_for_function(GRAPH_READY, timeout=60000)
    page.get_by_role("button", name=re.compile(r"^Workflows")).click()
    page.get_by_text("from weft", exact=True).first.click()
    page.wait_for_function(f"() => window.app.graph._nodes.length === {len(saved['nodes'])}", timeout=15000)
    opened = page.evaluate("() => window.app.graph._nodes.map((n) => n.type).sort()")
    assert opened == sorted(node["type"] for node in saved["nodes"])
    frontend.snapshot("comfyui_frontend_opened_weft_workflow")
    frontend.assert_clean()
