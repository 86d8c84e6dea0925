"""Wiring a graph by dragging sockets, refusing incompatible links, undo/redo of adds and links."""

import pytest

pytestmark = pytest.mark.browser


def _place(editor, query, at_graph, pick=None):
    return editor.add_node_via_search(query, editor.graph_to_client(*at_graph), pick=pick)


def test_wire_a_text_to_image_graph_by_dragging_sockets(editor):
    editor.new_workflow(scale=0.7, offset=(40, 60))
    loader = _place(editor, "load checkpoint", (0, 200))
    pos = _place(editor, "clip text encode", (380, 0))
    neg = _place(editor, "clip text encode", (380, 300))
    latent = _place(editor, "empty latent", (380, 620))
    sampler = _place(editor, "ksampler", (860, 0), pick="KSampler")
    decode = _place(editor, "vae decode", (1220, 0))
    save = _place(editor, "save image", (1220, 200))
    editor.connect(loader, "CLIP", pos, "clip")
    editor.connect(loader, "CLIP", neg, "clip")
    editor.connect(loader, "MODEL", sampler, "model")
    editor.connect(pos, "CONDITIONING", sampler, "positive")
    editor.connect(neg, "CONDITIONING", sampler, "negative")
    editor.connect(latent, "LATENT", sampler, "latent_image")
    editor.connect(sampler, "LATENT", decode, "samples")
    editor.connect(loader, "VAE", decode, "vae")
    editor.connect(decode, "IMAGE", save, "images")
    got = {(l["origin_id"], l["type"], l["target_id"]) for l in editor.links()}
    assert got == {(loader, "CLIP", pos), (loader, "CLIP", neg), (loader, "MODEL", sampler), (pos, "CONDITIONING", sampler),
                   (neg, "CONDITIONING", sampler), (latent, "LATENT", sampler), (sampler, "LATENT", decode),
                   (loader, "VAE", decode), (decode, "IMAGE", save)}


def test_an_incompatible_link_is_refused_visibly(editor):
    loader = editor.node_ids("CheckpointLoaderSimple")[0]
    sampler = editor.node_ids("KSampler")[0]
    before = editor.links()
    start = editor.socket_point(loader, "output", editor.slot(loader, "output", "CLIP"))
    end = editor.socket_point(sampler, "input", editor.slot(sampler, "input", "latent_image"))
    mouse = editor.page.mouse
    mouse.move(*start)
    mouse.down()
    mouse.move(*end, steps=10)
    editor.settle()
    # While hovering, the dragged link says why it cannot go there.
    pending = editor.js("() => weft.view.pending")
    assert pending["verdict"] == {"ok": False, "reason": "CLIP cannot go into LATENT"}
    editor.snapshot("refused_link_while_dragging")
    mouse.up()
    editor.settle()
    assert editor.links() == before
    toast = editor.page.locator(".toast.error")
    assert "CLIP cannot go into LATENT" in toast.first.inner_text()


def test_dropping_a_link_on_empty_canvas_opens_a_filtered_search(editor):
    decode = editor.node_ids("VAEDecode")[0]
    start = editor.socket_point(decode, "output", 0)
    end = editor.empty_point()
    editor.drag(start, end)
    editor.page.wait_for_selector(".search")
    shown = editor.page.locator(".search-item").evaluate_all("(els) => els.map((e) => e.dataset.type)")
    assert "SaveImage" in shown and "ImageInvert" in shown
    assert "KSampler" not in shown and "CLIPTextEncode" not in shown
    editor.page.keyboard.type("invert")
    editor.page.keyboard.press("Enter")
    editor.settle()
    new = editor.node_ids("ImageInvert")
    assert len(new) == 1
    assert any(l["origin_id"] == decode and l["target_id"] == new[0] for l in editor.links())


def test_undo_and_redo_an_add_and_a_link(editor):
    editor.new_workflow()
    a = _place(editor, "invert image", (0, 0))
    b = _place(editor, "invert image", (400, 0))
    editor.connect(a, "IMAGE", b, "image")
    assert len(editor.links()) == 1
    editor.page.keyboard.press("Control+z")
    editor.settle()
    assert editor.links() == [] and sorted(editor.node_ids()) == [a, b]
    editor.page.keyboard.press("Control+z")
    editor.settle()
    assert editor.node_ids() == [a]
    editor.page.keyboard.press("Control+y")
    editor.page.keyboard.press("Control+Shift+z")
    editor.settle()
    assert sorted(editor.node_ids()) == [a, b] and len(editor.links()) == 1


def test_dragging_a_link_off_an_input_moves_it(editor):
    sampler = editor.node_ids("KSampler")[0]
    decode = editor.node_ids("VAEDecode")[0]
    save = editor.node_ids("SaveImage")[0]
    invert = _place(editor, "invert image", (1300, 500))
    # Pull the IMAGE link off SaveImage and drop it on the new node's input.
    editor.drag(editor.socket_point(save, "input", 0), editor.socket_point(invert, "input", 0))
    assert editor.links_into(save) == []
    assert [l["origin_id"] for l in editor.links_into(invert)] == [decode]
    editor.page.keyboard.press("Control+z")
    editor.settle()
    assert [l["origin_id"] for l in editor.links_into(save)] == [decode]
    assert sampler
