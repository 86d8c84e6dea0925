"""A shared ComfyUI template as a user sees it: ComfyUI's own `sdxl_simple_example.json` (nine
notes, a markdown note, four primitives driving CLIPTextEncode texts through links). Text boxes
exist only for text widgets that are shown, sit inside their node at every zoom, and node titles
stay readable at the zoom that fits a whole large workflow in the window."""

import importlib.resources
import json

import pytest

pytestmark = pytest.mark.browser

TEMPLATE = "sdxl_simple_example.json"
MIN_TITLE_SCREEN_PX = 9  # smallest on-screen title size still read without effort
EPS = 0.75  # client pixels of rounding allowed between a CSS box and the canvas geometry


def _template() -> dict:
    package = importlib.resources.files("comfyui_workflow_templates_json")
    return json.loads(package.joinpath("templates", TEMPLATE).read_text(encoding="utf-8"))


def _load_template(editor) -> None:
    assert editor.load_workflow(_template())
    editor.settle()


def _text_boxes(editor) -> list[dict]:
    """Every node textarea in the document, with its client rectangle and whether it shows."""
    return editor.js("""() => [...document.querySelectorAll('textarea.node-textarea')].map((el) => {
        const r = el.getBoundingClientRect();
        return { nodeId: Number(el.dataset.nodeId), widget: el.dataset.widget, value: el.value,
                 displayed: getComputedStyle(el).display !== 'none' && el.isConnected,
                 rect: { x: r.left, y: r.top, w: r.width, h: r.height } };
    })""")


def _node_rects(editor) -> dict[int, dict]:
    """Each node's on-screen rectangle (title bar included), from the editor's own geometry."""
    rects = editor.js("() => [...weft.doc.nodes.keys()].map((id) => [id, weft.view.nodeClientRect(id)])")
    return {node_id: rect for node_id, rect in rects}


def _canvas_rect(editor) -> dict:
    r = editor.js("() => { const r = weft.view.canvas.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; }")
    return r


def _inside(inner: dict, outer: dict, eps: float = EPS) -> bool:
    return (inner["x"] >= outer["x"] - eps and inner["y"] >= outer["y"] - eps
            and inner["x"] + inner["w"] <= outer["x"] + outer["w"] + eps
            and inner["y"] + inner["h"] <= outer["y"] + outer["h"] + eps)


def _overlap(a: dict, b: dict, eps: float = EPS) -> bool:
    return (a["x"] + eps < b["x"] + b["w"] and b["x"] + eps < a["x"] + a["w"]
            and a["y"] + eps < b["y"] + b["h"] and b["y"] + eps < a["y"] + a["h"])


def _note_ids(editor) -> list[int]:
    return editor.js("() => [...weft.doc.nodes.values()].filter((n) => n.type === 'Note' || n.type === 'MarkdownNote').map((n) => n.id)")


def _boxes_of(boxes: list[dict], node_id: int) -> list[dict]:
    return [b for b in boxes if b["nodeId"] == node_id]


def _assert_boxes_inside_their_nodes(editor) -> list[dict]:
    """Every textarea present shows, lies inside its own node and overlaps no other node."""
    boxes = _text_boxes(editor)
    nodes = _node_rects(editor)
    for box in boxes:
        assert box["displayed"], f"a hidden textarea is kept for node {box['nodeId']}"
        own = nodes[box["nodeId"]]
        assert _inside(box["rect"], own), f"textarea of node {box['nodeId']} {box['rect']} leaves its node {own}"
        for other_id, other in nodes.items():
            if other_id != box["nodeId"]:
                assert not _overlap(box["rect"], other), f"textarea of node {box['nodeId']} lies over node {other_id}"
    return boxes


def _fit_large_window(editor) -> float:
    """Fit the whole template into a window large enough for the boxes to show (scale >= 0.5)."""
    editor.page.set_viewport_size({"width": 1920, "height": 1080})
    editor.page.wait_for_function("() => weft.view.width > 1800")
    editor.js("() => weft.view.fitView(false)")
    editor.settle()
    return editor.js("() => weft.view.viewport.scale")


def test_text_boxes_exist_only_for_shown_text_widgets(editor):
    _load_template(editor)
    linked = editor.js("""() => [...weft.doc.nodes.values()].filter((n) => weft.doc.defOf(n).widgets
        .some((w) => w.multiline && weft.doc.isWidgetLinked(n, w.name))).map((n) => n.id).sort((a, b) => a - b)""")
    assert linked == [6, 7, 15, 16], "the template's CLIPTextEncode texts are driven by PrimitiveNodes"
    boxes = _assert_boxes_inside_their_nodes(editor)
    for node_id in linked:
        assert not _boxes_of(boxes, node_id), f"a link-driven text widget (node {node_id}) has a textarea"
    # As loaded (the file's camera) some notes lie outside the view: they have no textarea; the
    # ones fully in view do.
    canvas = _canvas_rect(editor)
    nodes = _node_rects(editor)
    notes = _note_ids(editor)
    outside = [n for n in notes if not _overlap(nodes[n], canvas, eps=0)]
    inside = [n for n in notes if _inside(nodes[n], canvas, eps=0)]
    assert outside and inside, (outside, inside)
    for node_id in outside:
        assert not _boxes_of(boxes, node_id), f"note {node_id} is outside the view but has a textarea"
    for node_id in inside:
        assert len(_boxes_of(boxes, node_id)) == 1, f"note {node_id} is in view but has no textarea"
    # The PrimitiveNodes that hold the prompts edit them in their own boxes.
    assert _boxes_of(boxes, 51) and _boxes_of(boxes, 50)
    assert len(boxes) == len({(b["nodeId"], b["widget"]) for b in boxes})

    # Zoomed out past the hide threshold (the template fitted into this window) no box is kept.
    editor.js("() => weft.view.fitView(false)")
    editor.settle()
    assert editor.js("() => weft.view.viewport.scale") < 0.5
    assert _text_boxes(editor) == []
    editor.snapshot("template_view_fitted_no_boxes")

    # In a window where the fitted template shows its boxes, each lies inside its node.
    assert _fit_large_window(editor) >= 0.5
    fitted = _assert_boxes_inside_their_nodes(editor)
    assert len(fitted) >= 10, f"expected the notes' and prompts' boxes at this zoom, got {len(fitted)}"
    editor.snapshot("template_view_fitted_large_window")


def test_collapsed_and_panned_away_notes_have_no_text_box(editor):
    _load_template(editor)
    canvas = _canvas_rect(editor)
    nodes = _node_rects(editor)
    note = next(n for n in _note_ids(editor) if _inside(nodes[n], canvas, eps=0))  # in view as loaded
    box = editor.page.locator(f'textarea.node-textarea[data-node-id="{note}"]')
    assert box.count() == 1
    box.click()
    editor.page.keyboard.press("Control+a")
    editor.page.keyboard.type("Width and height of the picture.")
    editor.page.mouse.click(*editor.empty_point())
    assert editor.node(note)["widgets_values"][0] == "Width and height of the picture."

    # Collapse it (Alt+C on the selected note): the box goes; expand: it comes back.
    editor.page.mouse.click(*editor.node_title_point(note))
    editor.page.keyboard.press("Alt+c")
    editor.settle()
    assert editor.node(note)["flags"].get("collapsed")
    assert box.count() == 0
    editor.page.keyboard.press("Alt+c")
    editor.settle()
    assert box.count() == 1

    # Pan it out of view: gone; pan back: back, with its text.
    editor.js("() => { weft.view.viewport.panBy(-1500, 0); weft.view.requestDraw(); }")
    editor.settle()
    assert not _overlap(_node_rects(editor)[note], _canvas_rect(editor), eps=0)
    assert box.count() == 0
    editor.js("() => { weft.view.viewport.panBy(1500, 0); weft.view.requestDraw(); }")
    editor.settle()
    assert box.count() == 1
    assert box.input_value() == "Width and height of the picture."
    _assert_boxes_inside_their_nodes(editor)


def test_markdown_note_stays_inside_its_node(editor):
    _load_template(editor)
    markdown = editor.js("() => [...weft.doc.nodes.values()].find((n) => n.type === 'MarkdownNote').id")

    def markdown_box():
        boxes = _boxes_of(_text_boxes(editor), markdown)
        assert len(boxes) == 1, f"the markdown note shows {len(boxes)} boxes"
        own = _node_rects(editor)[markdown]
        assert _inside(boxes[0]["rect"], own), f"markdown box {boxes[0]['rect']} leaves its node {own}"
        return boxes[0]

    # As loaded, the file's camera leaves the markdown note above the view: no box. Panned into
    # view at the loaded zoom, its box lies inside it.
    assert not _overlap(_node_rects(editor)[markdown], _canvas_rect(editor), eps=0)
    assert not _boxes_of(_text_boxes(editor), markdown)
    editor.js("(id) => { const [, y] = weft.doc.bounds(weft.doc.nodes.get(id)); weft.view.viewport.offset[1] = 40 - y; weft.view.requestDraw(); }", markdown)
    editor.settle()
    assert editor.js("() => weft.view.viewport.scale") == pytest.approx(_template()["extra"]["ds"]["scale"])
    markdown_box()
    _assert_boxes_inside_their_nodes(editor)
    assert _fit_large_window(editor) >= 0.5
    markdown_box()  # after fit-to-view
    # At every zoom where it shows, centred on the note.
    for scale in (0.5, 0.9, 1.7, 3.0):
        editor.js("""([id, s]) => {
            const v = weft.view;
            const [x, y, w, h] = weft.doc.bounds(weft.doc.nodes.get(id));
            v.viewport.scale = s;
            v.viewport.offset = [v.width / (2 * s) - (x + w / 2), v.height / (2 * s) - (y + h / 2)];
            v.requestDraw();
        }""", [markdown, scale])
        editor.settle()
        markdown_box()
    editor.snapshot("template_view_markdown_note_zoomed")


def _drawn_texts(editor) -> list[dict]:
    """The strings one full redraw paints on the canvas, each with its on-screen font size."""
    return editor.js("""() => {
        const proto = CanvasRenderingContext2D.prototype;
        const original = proto.fillText;
        const drawn = [];
        proto.fillText = function (text, x, y, ...rest) {
            const m = this.getTransform();
            const px = parseFloat(/([\\d.]+)px/.exec(this.font)[1]);
            drawn.push({ text: String(text), screenPx: px * Math.hypot(m.a, m.b) / (window.devicePixelRatio || 1) });
            return original.call(this, text, x, y, ...rest);
        };
        try { weft.view.draw(); } finally { proto.fillText = original; }
        return drawn;
    }""")


def _readable(drawn: list[dict], title: str) -> bool:
    """The title is painted, large enough to read, whole or cut with an ellipsis after 4+ characters."""
    for d in drawn:
        if d["screenPx"] < MIN_TITLE_SCREEN_PX:
            continue
        if d["text"] == title:
            return True
        if d["text"].endswith("…") and len(d["text"]) - 1 >= min(4, len(title)) and title.startswith(d["text"][:-1]):
            return True
    return False


def test_titles_stay_readable_with_150_nodes_fitted_in_view(editor):
    editor.page.set_viewport_size({"width": 1400, "height": 900})
    editor.page.wait_for_function("() => weft.view.width === 1400")
    titles = editor.js("""() => {
        weft.commands.run('new');
        weft.history.run(() => {
            for (let i = 0; i < 150; i++) {
                weft.doc.addNode('EmptyLatentImage', [(i % 15) * 340, Math.floor(i / 15) * 190], { title: `Grid ${i + 1}` });
            }
        });
        weft.view.fitView(false);
        return [...weft.doc.nodes.values()].map((n) => weft.doc.titleOf(n));
    }""")
    editor.settle()
    assert len(titles) == 150
    scale = editor.js("() => weft.view.viewport.scale")
    assert scale < 0.35, f"the grid should need a low zoom to fit, got {scale}"
    drawn = _drawn_texts(editor)
    missing = [t for t in titles if not _readable(drawn, t)]
    assert not missing, f"{len(missing)} of 150 titles not readable at scale {scale:.2f}: {missing[:5]}"
    editor.snapshot("template_view_150_nodes_titles")


def test_titles_stay_readable_with_the_template_fitted_in_view(editor):
    editor.page.set_viewport_size({"width": 1400, "height": 900})
    editor.page.wait_for_function("() => weft.view.width === 1400")
    _load_template(editor)
    editor.js("() => weft.view.fitView(false)")
    editor.settle()
    scale = editor.js("() => weft.view.viewport.scale")
    assert scale < 0.5
    titles = editor.js("() => [...weft.doc.nodes.values()].map((n) => weft.doc.titleOf(n))")
    drawn = _drawn_texts(editor)
    missing = [t for t in titles if not _readable(drawn, t)]
    assert not missing, f"titles not readable at scale {scale:.2f}: {missing}"
    editor.snapshot("template_view_fitted_titles")
