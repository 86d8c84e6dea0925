"""Extensions, against the real server: a node pack's WEB_DIRECTORY module is listed by
/extensions, imported at start, and its hooks run: the test pack's (tests/web/fixtures/test_pack)
traces every hook; the shipped example pack's (custom_nodes/example_pack) gives COLOR inputs a
widget, which drives real nodes of both packs."""

import io
import json
import urllib.request

import pytest
from PIL import Image

pytestmark = pytest.mark.browser


def test_a_pack_extension_adds_a_widget_and_its_node_runs(editor, web_server):
    assert sorted(editor.js("() => weft.extensions.names")) == ["weft.example.colour", "weft.test.colour"]
    assert editor.js("() => window.__colourExtension.setup") is True
    assert editor.js("() => weft.catalog.get('WeftTestColourFill').description") == "Filled by the test extension"
    editor.new_workflow()
    fill = editor.add_node_via_search("colour fill", editor.graph_to_client(0, 0))
    save = editor.add_node_via_search("save image", editor.graph_to_client(400, 0), pick="SaveImage")
    tint = editor.add_node_via_search("colour tint", editor.graph_to_client(0, 300))
    editor.connect(fill, "IMAGE", tint, "image")
    editor.connect(tint, "IMAGE", save, "images")
    assert editor.js("() => window.__colourExtension.created") == 1
    assert editor.node(fill)["widgets_values"][0] == "#ff8800"
    # Click the custom widget: it steps to the next colour of its palette.
    rect = editor.js(f"() => weft.view.widgetClientRect({fill}, 0)")
    editor.page.mouse.click(rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2)
    assert editor.node(fill)["widgets_values"][0] == "#2266ff"
    # The example pack's tint, at full strength and stepped to its palette's third colour.
    editor.js(f"() => weft.history.run(() => weft.doc.setWidgetValue({tint}, 1, 1.0))")
    rect = editor.js(f"() => weft.view.widgetClientRect({tint}, 0)")
    for _ in range(2):
        editor.page.mouse.click(rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2)
    assert editor.node(tint)["widgets_values"] == ["#22aa44", 1.0]
    editor.js("() => { weft.execution.lastResult = null; }")
    editor.page.click("#queue-button")
    editor.page.wait_for_function("() => weft.execution.lastResult != null", timeout=30000)
    assert editor.js("() => weft.execution.lastResult.result") == "success"
    image = editor.js(f"() => weft.execution.outputFor('{save}').images[0]")
    url = web_server["url"] + editor.js("(img) => weft.api.viewUrl(img)", image)
    with urllib.request.urlopen(url) as response:
        pixel = Image.open(io.BytesIO(response.read())).convert("RGB").getpixel((0, 0))
    assert pixel == (0x22, 0xAA, 0x44)
    editor.settle()
