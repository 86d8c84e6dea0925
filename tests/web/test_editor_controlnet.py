"""A ControlNet workflow built in the editor as a person would: nodes added by search, combos
picked from their lists, links dragged socket to socket, then queued on the real server with the
tiny SD1 ControlNet that ``python -m ldm.tiny`` writes next to the tiny checkpoints."""

import pytest
from PIL import Image

pytestmark = pytest.mark.browser

CONTROLNET = "tiny-sd1-controlnet.safetensors"


def _place(editor, query, at_graph, pick):
    return editor.add_node_via_search(query, editor.graph_to_client(*at_graph), pick=pick)


def _set_widgets(editor, node_id, **values):
    """Set widgets by name in one undo step (what typing into them does)."""
    editor.js("""([id, values]) => weft.history.run(() => {
        const names = weft.doc.defOf(weft.doc.nodes.get(id)).widgets.map((w) => w.name);
        for (const [name, value] of Object.entries(values)) weft.doc.setWidgetValue(id, names.indexOf(name), value);
    })""", [node_id, values])


def _pick(editor, node_id, widget, choice):
    """Open a combo widget's list and click `choice` in it."""
    names = editor.js(f"() => weft.doc.defOf(weft.doc.nodes.get({node_id})).widgets.map((w) => w.name)")
    rect = editor.js(f"() => weft.view.widgetClientRect({node_id}, {names.index(widget)})")
    editor.page.mouse.click(rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2)
    editor.page.click(f".menu.picker .menu-item >> text={choice}")
    editor.settle()
    assert editor.node(node_id)["widgets_values"][names.index(widget)] == choice


def _queue_and_wait(editor):
    """Queue and wait until this job finished (or the server refused it); returns the job's result."""
    before = editor.js("() => weft.execution.lastResult?.promptId ?? null")
    editor.page.click("#queue-button")
    editor.page.wait_for_function(
        """(before) => (weft.execution.lastResult && weft.execution.lastResult.promptId !== before)
                       || weft.execution.nodeErrors.size > 0""", arg=before, timeout=60000)
    editor.settle()
    return editor.js("() => weft.execution.lastResult?.result ?? null")


def _jobs(editor):
    entries = editor.js("() => fetch('/api/history').then((r) => r.json())")
    return sorted(entries.values(), key=lambda e: e["prompt"][0])


def _saved_pixels(web_server, job, save):
    [image] = job["outputs"][str(save)]["images"]
    path = web_server["base"] / "output" / image["subfolder"] / image["filename"]
    with Image.open(path) as picture:
        return picture.convert("RGB")


def test_wire_a_controlnet_workflow_by_hand_and_queue_it(editor, web_server):
    checkpoint = editor.node_ids("CheckpointLoaderSimple")[0]
    positive, negative = sorted(editor.node_ids("CLIPTextEncode"),
                                key=lambda n: editor.node(n)["pos"][1])  # the starter puts the positive prompt on top
    sampler = editor.node_ids("KSampler")[0]
    save = editor.node_ids("SaveImage")[0]
    _set_widgets(editor, editor.node_ids("EmptyLatentImage")[0], width=64, height=64)
    _set_widgets(editor, sampler, steps=3, control_after_generate="fixed", seed=5)
    # A camera that shows the starter graph and the free space under it.
    editor.js("() => { weft.view.viewport.ds = {scale: 0.55, offset: [20, 30]}; weft.view.requestDraw(); }")
    editor.settle()

    image = _place(editor, "load image", (40, 820), pick="LoadImage")
    canny = _place(editor, "canny", (420, 820), pick="Canny")
    loader = _place(editor, "load controlnet", (420, 1060), pick="ControlNetLoader")
    apply = _place(editor, "apply controlnet", (880, 820), pick="ControlNetApplyAdvanced")
    _pick(editor, image, "image", "example.png")
    _pick(editor, loader, "control_net_name", CONTROLNET)
    editor.connect(image, "IMAGE", canny, "image")
    editor.connect(canny, "IMAGE", apply, "image")
    editor.connect(loader, "CONTROL_NET", apply, "control_net")
    editor.connect(positive, "CONDITIONING", apply, "positive")
    editor.connect(negative, "CONDITIONING", apply, "negative")
    # Dropping the Apply node's outputs on the sampler's inputs replaces the prompts' links there.
    editor.connect(apply, "positive", sampler, "positive")
    editor.connect(apply, "negative", sampler, "negative")
    into_sampler = {(l["origin_id"], l["origin_slot"], l["type"]) for l in editor.links_into(sampler)}
    assert {(apply, 0, "CONDITIONING"), (apply, 1, "CONDITIONING")} <= into_sampler
    assert not any(origin in (positive, negative) for origin, _, _ in into_sampler)
    editor.snapshot("controlnet_workflow_wired")

    assert _queue_and_wait(editor) == "success"
    # No node or input carries a validation or execution error, and no error toast showed.
    statuses = editor.js("() => [...weft.doc.nodes.keys()].map((id) => [id, weft.execution.nodeStatus(id)])")
    assert all(status is None for _, status in statuses), statuses
    assert editor.page.locator(".toast.error").count() == 0

    # The job's API prompt is the graph as wired: ids are the canvas node ids.
    job = _jobs(editor)[-1]
    prompt = job["prompt"][2]
    applied = prompt[str(apply)]
    assert applied["class_type"] == "ControlNetApplyAdvanced"
    assert applied["inputs"]["image"] == [str(canny), 0]
    assert applied["inputs"]["control_net"] == [str(loader), 0]
    assert applied["inputs"]["positive"] == [str(positive), 0]
    assert applied["inputs"]["negative"] == [str(negative), 0]
    assert (applied["inputs"]["strength"], applied["inputs"]["start_percent"], applied["inputs"]["end_percent"]) == (1.0, 0.0, 1.0)
    assert prompt[str(canny)]["class_type"] == "Canny" and prompt[str(canny)]["inputs"]["image"] == [str(image), 0]
    assert prompt[str(image)]["inputs"]["image"] == "example.png"
    assert prompt[str(loader)]["class_type"] == "ControlNetLoader"
    assert prompt[str(loader)]["inputs"] == {"control_net_name": CONTROLNET}
    assert prompt[str(sampler)]["inputs"]["positive"] == [str(apply), 0]
    assert prompt[str(sampler)]["inputs"]["negative"] == [str(apply), 1]
    assert prompt[str(sampler)]["inputs"]["model"] == [str(checkpoint), 0]

    # The SaveImage node shows the result.
    images = editor.js(f"() => weft.execution.outputFor('{save}').images")
    assert len(images) == 1 and images[0]["type"] == "output"
    url = editor.js("(img) => weft.api.viewUrl(img)", images[0])
    editor.page.wait_for_function("(u) => weft.view.images.status(u) === 'loaded'", arg=url)
    assert editor.js("(u) => weft.view.images.url(u).naturalWidth", url) == 64
    editor.snapshot("controlnet_workflow_result")

    # The ControlNet steered the sampling: at strength 0 (the Apply node passes the prompts through)
    # the same seed gives a different picture.
    _set_widgets(editor, apply, strength=0.0)
    assert _queue_and_wait(editor) == "success"
    without = _jobs(editor)[-1]
    assert without["prompt"][2][str(apply)]["inputs"]["strength"] == 0.0
    assert without["prompt"][2][str(sampler)]["inputs"]["seed"] == prompt[str(sampler)]["inputs"]["seed"]
    assert _saved_pixels(web_server, job, save).tobytes() != _saved_pixels(web_server, without, save).tobytes()
