"""The layout-boxes widget (a STRING input with `weft_widget: "layout_boxes"`), against the real
server through the test pack's LayoutEcho node: boxes drawn, labelled, moved, resized and deleted
with real pointer drags and keys at two zoom levels, the JSON value checked after each step, queued
(the server gets exactly that JSON), saved, reloaded and opened again."""

import json

import pytest

pytestmark = pytest.mark.browser

LAYOUT = 0  # the widget's index on LayoutEcho: layout, width, height
TOLERANCE = 0.01  # a pixel of a ~170 px area is 0.006


def _area(editor, node):
    """Client rectangle of the widget's drawing area (the picture's 0..1 square)."""
    return editor.js("(id) => weft.widgetKinds.get('STRING').editors.layout_boxes.areaClientRect(weft.view, id, 0)",
                     node)


def _at(editor, node, u, v):
    area = _area(editor, node)
    return area["x"] + u * area["w"], area["y"] + v * area["h"]


def _value(editor, node) -> str:
    return editor.node(node)["widgets_values"][LAYOUT]


def _assert_boxes(editor, node, expected):
    actual = json.loads(_value(editor, node))
    assert [b["label"] for b in actual] == [e[0] for e in expected], actual
    for box, (_, *xywh) in zip(actual, expected, strict=True):
        assert list(box) == ["label", "x", "y", "w", "h"]
        got = [box[k] for k in "xywh"]
        assert all(abs(g - e) <= TOLERANCE for g, e in zip(got, xywh, strict=True)), (got, xywh)


def _pick_label(editor, node, label, typed=None):
    """Open the header's label picker and choose `label` (or "other…" and type `typed`)."""
    row = editor.js("(id) => weft.view.widgetClientRect(id, 0)", node)
    editor.page.mouse.click(row["x"] + 40, row["y"] + 8)
    editor.page.wait_for_selector(".menu.picker")
    editor.page.click(f'.menu.picker .menu-item:text-is("{label}")')
    if typed is not None:
        editor.page.wait_for_selector(".inline-editor")
        editor.page.fill(".inline-editor", typed)
        editor.page.keyboard.press("Enter")
    editor.settle()


def test_draw_move_resize_delete_queue_save_and_reload_layout_boxes(editor, web_server):
    editor.new_workflow()
    node = editor.add_node_via_search("layout echo", editor.graph_to_client(0, 0), pick="LayoutEcho")
    assert _value(editor, node) == "[]"
    area = _area(editor, node)
    assert abs(area["w"] - area["h"]) < 1, "512×512: a square area"

    # Draw a box: it takes the first offered label; "other…" types a new one into the selected box.
    editor.drag(_at(editor, node, 0.1, 0.1), _at(editor, node, 0.4, 0.5))
    _assert_boxes(editor, node, [("person", 0.1, 0.1, 0.3, 0.4)])
    _pick_label(editor, node, "other…", typed="kite")
    _assert_boxes(editor, node, [("kite", 0.1, 0.1, 0.3, 0.4)])

    # A second box, drawn from bottom-right to top-left, then labelled from the list.
    editor.drag(_at(editor, node, 0.9, 0.85), _at(editor, node, 0.55, 0.55))
    _assert_boxes(editor, node, [("kite", 0.1, 0.1, 0.3, 0.4), ("kite", 0.55, 0.55, 0.35, 0.3)])
    _pick_label(editor, node, "dog")
    _assert_boxes(editor, node, [("kite", 0.1, 0.1, 0.3, 0.4), ("dog", 0.55, 0.55, 0.35, 0.3)])
    editor.snapshot("layout_widget_two_boxes")

    # Move the first box; move the second past the right edge, where it stops.
    editor.drag(_at(editor, node, 0.25, 0.3), _at(editor, node, 0.45, 0.4))
    _assert_boxes(editor, node, [("kite", 0.3, 0.2, 0.3, 0.4), ("dog", 0.55, 0.55, 0.35, 0.3)])
    editor.drag(_at(editor, node, 0.725, 0.7), _at(editor, node, 1.3, 0.7))
    _assert_boxes(editor, node, [("kite", 0.3, 0.2, 0.3, 0.4), ("dog", 0.65, 0.55, 0.35, 0.3)])

    # Zoomed in, and the node moved on screen: resize the first box by its bottom-right corner.
    editor.js("() => { weft.view.viewport.ds = {scale: 1.5, offset: [60, 40]}; weft.view.requestDraw(); }")
    editor.settle()
    editor.drag(_at(editor, node, 0.6, 0.6), _at(editor, node, 0.8, 0.9))
    _assert_boxes(editor, node, [("kite", 0.3, 0.2, 0.5, 0.7), ("dog", 0.65, 0.55, 0.35, 0.3)])

    # Select the second box and delete it with the key; the node stays.
    editor.page.mouse.click(*_at(editor, node, 0.9, 0.7))
    editor.page.keyboard.press("Delete")
    editor.settle()
    assert node in editor.node_ids()
    _assert_boxes(editor, node, [("kite", 0.3, 0.2, 0.5, 0.7)])
    value = _value(editor, node)

    # Queued: the server receives and returns exactly the widget's JSON.
    editor.js("() => weft.view.fitView(false)")
    editor.js("() => { weft.execution.lastResult = null; }")
    editor.page.click("#queue-button")
    editor.page.wait_for_function("() => weft.execution.lastResult != null", timeout=30000)
    assert editor.js("() => weft.execution.lastResult.result") == "success"
    assert editor.js(f"() => weft.execution.outputFor('{node}').text") == [value]
    jobs = editor.js("() => fetch('/api/history').then((r) => r.json())")
    [job] = [j for j in jobs.values() if j["prompt"][2].get(str(node), {}).get("class_type") == "LayoutEcho"]
    assert job["prompt"][2][str(node)]["inputs"]["layout"] == value
    assert job["outputs"][str(node)]["text"] == [value]

    # Saved as a workflow file (widgets_values like any STRING), reloaded and opened: the box is back.
    editor.page.keyboard.press("Control+s")
    editor.page.fill(".dialog-input", "layout boxes")
    editor.page.keyboard.press("Enter")
    editor.page.wait_for_selector(".toast >> text=Saved")
    saved = json.loads((web_server["base"] / "user" / "default" / "workflows" / "layout boxes.json").read_text())
    [saved_node] = [n for n in saved["nodes"] if n["type"] == "LayoutEcho"]
    assert saved_node["widgets_values"] == [value, 512, 512]
    editor.reload()
    editor.js("() => weft.commands.run('new')")
    editor.page.click("#workflows-toggle")
    editor.page.click('.workflow-item[data-name="layout boxes"] .workflow-open')
    editor.settle()
    [node] = editor.node_ids("LayoutEcho")
    assert _value(editor, node) == value

    # The picture's aspect follows the node's width and height; "clear" empties, undo brings it back.
    editor.js(f"() => weft.history.run(() => weft.doc.setWidgetValue({node}, 1, 1024))")
    editor.settle()
    area = _area(editor, node)
    assert abs(area["w"] / area["h"] - 2) < 0.02
    row = editor.js("(id) => weft.view.widgetClientRect(id, 0)", node)
    editor.page.mouse.click(row["x"] + row["w"] - 10, row["y"] + 6)
    assert _value(editor, node) == "[]"
    editor.page.keyboard.press("Control+z")
    assert _value(editor, node) == value

    # Text that is not a list of boxes (typed in ComfyUI's text field, say) is kept, not edited.
    editor.js(f"() => weft.history.run(() => weft.doc.setWidgetValue({node}, 0, 'not json'))")
    editor.settle()
    editor.drag(_at(editor, node, 0.1, 0.1), _at(editor, node, 0.5, 0.5))
    assert _value(editor, node) == "not json"
    editor.page.wait_for_selector(".toast.error >> text=not a list of boxes")

    # With no box selected, Delete is the editor's again: it removes the node.
    editor.page.mouse.click(*editor.node_title_point(node))
    editor.page.keyboard.press("Delete")
    assert editor.node_ids("LayoutEcho") == []
