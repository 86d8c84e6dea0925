"""The Templates browser: Weft's templates with their thumbnails, ComfyUI's from the installed
package, search and source filters; one click opens a template as a new workflow that runs on the
starter model; a template this server cannot run says what it lacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.api.conftest import ServerProcess

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
WEFT = ["weft_text_to_image", "weft_image_to_image", "weft_inpainting", "weft_seed_variations"]


@pytest.fixture(scope="module")
def web_server(tmp_path_factory):
    """server.py on a throw-away base folder that sees the repository's checkpoints (the starter
    model the templates use), with a node pack that ships an example workflow."""
    base = tmp_path_factory.mktemp("weft-templates")
    (base / "extra_model_paths.yaml").write_text(
        f"repository:\n  base_path: {json.dumps(str(ROOT / 'models'))}\n  checkpoints: checkpoints\n")
    pack = base / "custom_nodes" / "demo_pack"
    (pack / "example_workflows").mkdir(parents=True)
    (pack / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    shutil.copy(ROOT / "workflow_templates" / "weft_text_to_image.json", pack / "example_workflows" / "pack_demo.json")
    server = ServerProcess(base).start()
    try:
        yield {"url": server.url, "base": base}
    finally:
        server.stop()


def _open_browser(editor):
    editor.page.click("#templates-button")
    editor.page.wait_for_selector('.template-card[data-id="weft/weft_text_to_image"]')


def _visible_ids(editor):
    return editor.js("() => [...document.querySelectorAll('.template-card')].filter((c) => !c.hidden && c.offsetParent).map((c) => c.dataset.id)")


def test_weft_templates_show_with_thumbnails_and_search_filters(editor):
    _open_browser(editor)
    for name in WEFT:
        editor.page.wait_for_function(
            "(id) => document.querySelector(`.template-card[data-id='${id}'] img.template-thumb`)?.naturalWidth > 0",
            arg=f"weft/{name}")
    visible = _visible_ids(editor)
    assert visible[:4] == [f"weft/{name}" for name in WEFT], "Weft's category comes first"
    assert len([v for v in visible if v.startswith("comfyui/")]) > 600 and "pack:demo_pack/pack_demo" in visible
    assert editor.page.locator('.template-card[data-id="weft/weft_text_to_image"] .template-source').inner_text() == "Weft"
    # ComfyUI's thumbnails live in packages not installed here: a placeholder stands in.
    assert editor.page.locator('.template-card[data-id="comfyui/sdxl_simple_example"] .template-thumb.placeholder').count() == 1
    editor.snapshot("templates_browser")

    editor.page.fill(".templates-search", "inpaint")
    editor.settle()
    visible = _visible_ids(editor)
    assert "weft/weft_inpainting" in visible and "weft/weft_text_to_image" not in visible
    titles = editor.js("""() => [...document.querySelectorAll('.template-card')].filter((c) => !c.hidden)
        .map((c) => (c.querySelector('.template-title').textContent + ' ' + c.title).toLowerCase())""")
    assert titles and all("inpaint" in text for text in titles)

    editor.page.fill(".templates-search", "")
    editor.page.select_option(".templates-source", "weft")
    weft_only = _visible_ids(editor)  # the starter model's templates, then those of the paper's models
    assert weft_only[:len(WEFT)] == [f"weft/{name}" for name in WEFT]
    assert all(v.startswith("weft/weft_ldm_") for v in weft_only[len(WEFT):])
    editor.page.select_option(".templates-source", "")
    editor.page.check(".templates-ready")
    ready = _visible_ids(editor)
    assert set(ready) >= {f"weft/{name}" for name in WEFT} and len(ready) < 100
    editor.page.keyboard.press("Escape")
    assert editor.page.locator(".templates-overlay").count() == 0


@pytest.mark.parametrize("name, images", [("weft_text_to_image", 1), ("weft_image_to_image", 1),
                                          ("weft_inpainting", 1), ("weft_seed_variations", 4)])
def test_a_template_opens_in_one_click_and_runs(editor, name, images):
    _open_browser(editor)
    editor.page.click(f'.template-card[data-id="weft/{name}"]')
    editor.page.wait_for_selector(".templates-overlay", state="detached")
    editor.page.wait_for_function("(n) => [...weft.doc.nodes.values()].some((x) => x.type === 'KSampler')", arg=name)
    template = json.loads((ROOT / "workflow_templates" / f"{name}.json").read_text())
    assert sorted(n["type"] for n in editor.js("() => [...weft.doc.nodes.values()]")) == sorted(n["type"] for n in template["nodes"])
    assert editor.js("() => weft.files.currentName") is None, "a template opens unsaved: Save asks for a name"
    for node in template["nodes"]:
        if node["type"] == "LoadImage":  # the template's picture was uploaded into input/
            status = editor.js("(f) => fetch(`/api/view?type=input&filename=${f}`).then((r) => r.status)", node["widgets_values"][0])
            assert status == 200
    editor.page.click("#queue-button")
    editor.page.wait_for_function("() => weft.execution.lastResult?.result === 'success'", timeout=120000)
    editor.settle()
    save = editor.node_ids("SaveImage")[0]
    outputs = editor.js(f"() => weft.execution.outputFor('{save}').images")
    assert len(outputs) == images
    url = editor.js("(img) => weft.api.viewUrl(img)", outputs[0])
    editor.page.wait_for_function("(u) => weft.view.images.status(u) === 'loaded'", arg=url)
    assert editor.js("(u) => weft.view.images.url(u).naturalWidth", url) == 64
    editor.snapshot(f"template_{name}_ran")


@pytest.mark.parametrize("expected_console_errors", [[r"status of 404"]])  # its LoadImage's picture is not in input/
def test_a_comfyui_template_lacking_nodes_names_them(editor, expected_console_errors):
    _open_browser(editor)
    card = '.template-card[data-id="comfyui/video_wan2_2_14B_i2v"]'
    missing = editor.page.locator(f"{card} .template-missing").inner_text()
    assert "WanImageToVideo" in missing and "SaveVideo" in missing and "wan_2.1_vae.safetensors (vae)" in missing
    editor.page.click(card)
    editor.page.wait_for_selector(".templates-overlay", state="detached")
    editor.page.wait_for_function("() => [...document.querySelectorAll('.toast')].some((t) => t.textContent.includes('WanImageToVideo'))")
    toasts = " ".join(editor.js("() => [...document.querySelectorAll('.toast')].map((t) => t.textContent)"))
    for name in ("WanImageToVideo", "SaveVideo", "CreateVideo", "wan_2.1_vae.safetensors"):
        assert name in toasts
    assert editor.js("() => [...weft.doc.nodes.values()].some((n) => n.type === 'SaveVideo')"), "the workflow opened anyway"
    editor.snapshot("template_missing_nodes")
