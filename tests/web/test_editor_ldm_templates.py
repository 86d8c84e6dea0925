"""The templates for the paper's own models (``workflow_templates/weft_ldm_*``) open from the
Templates browser and run: a server whose ``models/checkpoints`` holds tiny random CompVis
``.ckpt`` files (``ldm.loading.tiny_ldm``) under the release file names the templates use, and
the templates' input pictures in ``input/``. Each template is opened with one click, queued, and
must finish without error with one image of the expected size in its SaveImage node.

To stay fast on a CPU the test lowers each KSampler's steps to 3 before queuing (the templates
carry the CompVis settings, 20 to 100 steps); sizes stay as the templates have them (256 x 256).
The 512 x 1024 semantic template is queued with a 64 x 128 label map instead of its own (the tiny
VQ first stage decodes 512 x 1024 in about 30 s here); sampling beyond the training size is
tested through the nodes in tests/nodes/test_ldm_high_resolution.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ldm.loading.tiny_ldm import write_tiny_ldm_checkpoint
from tests.api.conftest import ServerProcess

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "workflow_templates"
#: The checkpoint file each template names, and the tiny layout written under that name.
CHECKPOINTS = {
    "ldm-txt2img-f8-large.ckpt": "txt2img",
    "ldm-celeba256.ckpt": "uncond",
    "ldm-cin256-v2.ckpt": "cin",
    "ldm-bsr-sr.ckpt": "sr",
    "ldm-inpainting-big.ckpt": "inpaint",
    "ldm-semantic-synthesis256.ckpt": "semantic",
    "ldm-layout2img-openimages256.ckpt": "layout",
}
SMALL_LABEL_MAP = "ldm_test_labels_64x128.png"
STEPS = 3
#: template -> (width of the image it makes, widget changes besides the steps: {node type: {widget: value}})
EXPECTED = {
    "weft_ldm_text_to_image": (256, {}),
    "weft_ldm_unconditional": (256, {}),
    "weft_ldm_class_conditional": (256, {}),
    "weft_ldm_super_resolution": (256, {}),  # 64 x 64 in, 4x out
    "weft_ldm_inpainting": (256, {}),
    "weft_ldm_semantic_synthesis": (256, {}),
    "weft_ldm_semantic_synthesis_512x1024": (128, {"LoadImage": {"image": SMALL_LABEL_MAP}}),
    "weft_ldm_layout_to_image": (256, {}),
}


def _ldm_template_names() -> list[str]:
    [category] = json.loads((TEMPLATES / "index.json").read_text())
    return [t["name"] for t in category["templates"] if t["name"].startswith("weft_ldm_")]


@pytest.fixture(scope="module")
def web_server(tmp_path_factory):
    """server.py on a throw-away base folder holding the tiny LDM checkpoints under the templates'
    file names and the templates' input pictures."""
    base = tmp_path_factory.mktemp("weft-ldm-templates")
    for name, layout in CHECKPOINTS.items():
        write_tiny_ldm_checkpoint(base / "models" / "checkpoints" / name, layout)
    (base / "input").mkdir()
    for picture in TEMPLATES.glob("weft_input_ldm_*.png"):
        shutil.copy(picture, base / "input" / picture.name)
    labels = np.full((64, 128), 156, np.uint8)  # COCO-Stuff sky-other over sea
    labels[40:] = 154
    Image.fromarray(labels, "L").save(base / "input" / SMALL_LABEL_MAP)
    server = ServerProcess(base).start()
    try:
        yield {"url": server.url, "base": base}
    finally:
        server.stop()


def _open_browser(editor):
    editor.page.click("#templates-button")
    editor.page.wait_for_selector('.template-card[data-id="weft/weft_ldm_text_to_image"]')


def _set_widgets(editor, node_type: str, values: dict) -> None:
    """Set widgets by name on every node of ``node_type`` in one undo step (as typing does)."""
    editor.js("""([type, values]) => weft.history.run(() => {
        for (const node of [...weft.doc.nodes.values()].filter((n) => n.type === type)) {
            const names = weft.doc.defOf(node).widgets.map((w) => w.name);
            for (const [name, value] of Object.entries(values)) {
                weft.doc.setWidgetValue(node.id, names.indexOf(name), value);
            }
        }
    })""", [node_type, values])


def test_every_ldm_template_is_tested_and_listed_ready_with_its_thumbnail(editor):
    assert _ldm_template_names() == list(EXPECTED)
    _open_browser(editor)
    for name in EXPECTED:
        card = f'.template-card[data-id="weft/{name}"]'
        editor.page.wait_for_function("(c) => document.querySelector(`${c} img.template-thumb`)?.naturalWidth > 0",
                                      arg=card)
        assert editor.page.locator(f"{card} .template-missing").count() == 0, f"{name}: this server has its model"
    editor.page.check(".templates-ready")
    ready = editor.js("() => [...document.querySelectorAll('.template-card')]"
                      ".filter((c) => !c.hidden && c.offsetParent).map((c) => c.dataset.id)")
    assert {f"weft/{name}" for name in EXPECTED} <= set(ready)
    editor.snapshot("ldm_templates_browser")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_an_ldm_template_opens_and_runs(editor, name):
    width, changes = EXPECTED[name]
    template = json.loads((TEMPLATES / f"{name}.json").read_text())
    _open_browser(editor)
    editor.page.click(f'.template-card[data-id="weft/{name}"]')
    editor.page.wait_for_selector(".templates-overlay", state="detached")
    editor.page.wait_for_function("() => [...weft.doc.nodes.values()].some((x) => x.type === 'KSampler')")
    opened = editor.js("() => [...weft.doc.nodes.values()]")
    assert sorted(n["type"] for n in opened) == sorted(n["type"] for n in template["nodes"])
    for node in template["nodes"]:
        if node["type"] == "LoadImage":  # the template's picture is in input/
            status = editor.js("(f) => fetch(`/api/view?type=input&filename=${f}`).then((r) => r.status)",
                               node["widgets_values"][0])
            assert status == 200
    _set_widgets(editor, "KSampler", {"steps": STEPS})
    for node_type, values in changes.items():
        _set_widgets(editor, node_type, values)
    editor.page.click("#queue-button")
    editor.page.wait_for_function("() => weft.execution.lastResult?.result === 'success'", timeout=120000)
    editor.settle()
    save = editor.node_ids("SaveImage")[0]
    outputs = editor.js(f"() => weft.execution.outputFor('{save}').images")
    assert len(outputs) == 1
    url = editor.js("(img) => weft.api.viewUrl(img)", outputs[0])
    editor.page.wait_for_function("(u) => weft.view.images.status(u) === 'loaded'", arg=url)
    assert editor.js("(u) => weft.view.images.url(u).naturalWidth", url) == width
    editor.snapshot(f"ldm_template_{name}_ran")
