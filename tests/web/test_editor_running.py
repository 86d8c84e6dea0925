"""Queueing: progress, live preview, the result on the SaveImage node, the viewer, batch counts and
seed control, validation errors shown on the offending node and input, the queue panel."""

import pytest

pytestmark = pytest.mark.browser


def _wait_done(editor, timeout=60000):
    editor.page.wait_for_function("() => weft.execution.lastResult?.result === 'success'", timeout=timeout)
    editor.settle()


def _small(editor, steps=3):
    """The starter workflow, cut to tiny-model size: a 64x64 image in a few steps."""
    editor.js(f"""() => weft.history.run(() => {{
        const doc = weft.doc;
        for (const node of doc.nodes.values()) {{
          const names = doc.defOf(node).widgets.map((w) => w.name);
          if (node.type === 'EmptyLatentImage') {{ doc.setWidgetValue(node.id, names.indexOf('width'), 64); doc.setWidgetValue(node.id, names.indexOf('height'), 64); }}
          if (node.type === 'KSampler') doc.setWidgetValue(node.id, names.indexOf('steps'), {steps});
        }}
    }})""")


def _history(editor, count):
    """The last `count` jobs of the server's history, oldest first."""
    entries = editor.js(f"() => fetch('/api/history?max_items={count}').then((r) => r.json())")
    return sorted(entries.values(), key=lambda e: e["prompt"][0])


def test_queue_shows_progress_preview_and_the_image_on_save_image(editor):
    save = editor.node_ids("SaveImage")[0]
    sampler = editor.node_ids("KSampler")[0]
    _small(editor)
    seed_before = editor.node(sampler)["widgets_values"][0]
    editor.js("""() => {
        window.__seen = { running: new Set(), previews: new Set(), progress: false, steps: 0 };
        weft.execution.on('change', () => {
          const s = weft.execution;
          if (s.executingNode) window.__seen.running.add(s.executingNode);
          for (const id of s.previews.keys()) window.__seen.previews.add(id);
          if (s.overallProgress() > 0) window.__seen.progress = true;
          const p = s.progressFor(s.executingNode ?? '');
          if (p) window.__seen.steps = Math.max(window.__seen.steps, p.value);
        });
    }""")
    editor.page.click("#queue-button")
    _wait_done(editor)
    observed = editor.js("() => ({ running: [...__seen.running], previews: [...__seen.previews], progress: __seen.progress, steps: __seen.steps })")
    assert str(sampler) in observed["running"]
    assert str(sampler) in observed["previews"], "the sampler showed live previews"
    assert observed["progress"] and observed["steps"] == 3
    images = editor.js(f"() => weft.execution.outputFor('{save}').images")
    assert len(images) == 1 and images[0]["type"] == "output"
    url = editor.js("(img) => weft.api.viewUrl(img)", images[0])
    editor.page.wait_for_function("(u) => weft.view.images.status(u) === 'loaded'", arg=url)
    assert editor.js("(u) => weft.view.images.url(u).naturalWidth", url) == 64
    # The seed moved on after queueing (its control says randomize).
    assert editor.node(sampler)["widgets_values"][1] == "randomize"
    assert editor.node(sampler)["widgets_values"][0] != seed_before
    # The job carried the UI workflow (converted by the server, embedded in the PNG).
    [job] = _history(editor, 1)
    assert job["prompt"][3]["extra_pnginfo"]["workflow"]["version"] == 0.4
    assert job["prompt"][2][str(sampler)]["inputs"]["seed"] == seed_before
    assert editor.js("() => document.querySelector('#progress').textContent").startswith("Done")
    editor.snapshot("result_image_on_save_image")
    # Click the image on the node: the viewer opens it full size.
    cell = editor.js(f"() => weft.view.mediaCells.get({save})[0]")
    node = editor.node(save)
    x, y = editor.graph_to_client(node["pos"][0] + cell["x"] + cell["w"] / 2, node["pos"][1] + cell["y"] + cell["h"] / 2)
    editor.page.mouse.click(x, y)
    editor.page.wait_for_selector(".viewer img")
    editor.page.wait_for_function("() => document.querySelector('.viewer img').naturalWidth > 0")
    assert editor.page.locator(".viewer-counter").inner_text() == "1 / 1"


def test_batch_count_queues_several_with_fresh_seeds(editor):
    sampler = editor.node_ids("KSampler")[0]
    _small(editor, steps=1)
    editor.js(f"() => weft.history.run(() => weft.doc.setWidgetValue({sampler}, 1, 'increment'))")
    editor.js(f"() => weft.history.run(() => weft.doc.setWidgetValue({sampler}, 0, 10))")
    editor.page.fill("#batch-count", "3")
    editor.page.click("#queue-button")
    editor.page.wait_for_function(f"() => weft.doc.nodes.get({sampler}).widgets_values[0] === 13")
    editor.page.wait_for_function("() => weft.execution.queueRemaining === 0 && weft.execution.lastResult?.result === 'success'", timeout=60000)
    seeds = [job["prompt"][2][str(sampler)]["inputs"]["seed"] for job in _history(editor, 3)]
    assert seeds == [10, 11, 12]


@pytest.mark.parametrize("expected_console_errors", [[r"status of 400"]])
def test_a_missing_required_input_is_highlighted_after_queueing(editor, expected_console_errors):
    sampler = editor.node_ids("KSampler")[0]
    _small(editor, steps=1)
    slot = editor.slot(sampler, "input", "model")
    # Pull the MODEL link off the sampler and let it go on empty canvas: the link is gone.
    editor.drag(editor.socket_point(sampler, "input", slot), editor.empty_point())
    assert editor.node(sampler)["inputs"][slot]["link"] is None
    editor.page.click("#queue-button")
    editor.page.wait_for_function(f"() => weft.execution.nodeStatus({sampler}) === 'error'")
    editor.settle()
    errors = editor.js(f"() => [...weft.execution.inputErrors({sampler})]")
    assert errors == [["model", ["Required input is missing"]]]
    assert "1 node needs attention" in editor.page.locator(".toast.error").first.inner_text()
    editor.snapshot("missing_required_input_highlighted")
    # Reconnecting and queueing again clears the marks.
    loader = editor.node_ids("CheckpointLoaderSimple")[0]
    editor.connect(loader, "MODEL", sampler, "model")
    editor.page.click("#queue-button")
    _wait_done(editor)
    assert editor.js(f"() => weft.execution.nodeStatus({sampler})") is None


def test_model_lists_refresh_from_the_server(editor, web_server):
    loader = editor.node_ids("CheckpointLoaderSimple")[0]
    folder = web_server["base"] / "models" / "checkpoints"
    (folder / "zz-new.safetensors").write_bytes((folder / "tiny_sd1.safetensors").read_bytes())
    editor.page.mouse.click(*editor.empty_point())
    editor.page.keyboard.press("r")
    editor.page.wait_for_function("() => weft.catalog.get('CheckpointLoaderSimple').widgets[0].values.includes('zz-new.safetensors')")
    rect = editor.js(f"() => weft.view.widgetClientRect({loader}, 0)")
    editor.page.mouse.click(rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2)
    editor.page.click(".menu.picker .menu-item >> text=zz-new.safetensors")
    assert editor.node(loader)["widgets_values"] == ["zz-new.safetensors"]
