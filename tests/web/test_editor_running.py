"""Queueing: progress, live preview, the result on the SaveImage node, the viewer, batch counts and
seed control, validation errors shown on the offending node and input, the queue panel."""

import pytest

# The starter workflow and text-to-image nodes (loaders, KSampler) are not on the real server yet.
pytestmark = [pytest.mark.browser, pytest.mark.fake_server]


def _wait_done(editor, timeout=15000):
    editor.page.wait_for_function("() => weft.execution.lastResult?.result === 'success'", timeout=timeout)
    editor.settle()


def test_queue_shows_progress_preview_and_the_image_on_save_image(editor):
    save = editor.node_ids("SaveImage")[0]
    sampler = editor.node_ids("KSampler")[0]
    seed_before = editor.node(sampler)["widgets_values"][0]
    seen = editor.js("""() => {
        window.__seen = { running: new Set(), previews: new Set(), progress: false };
        weft.execution.on('change', () => {
          const s = weft.execution;
          if (s.executingNode) window.__seen.running.add(s.executingNode);
          for (const id of s.previews.keys()) window.__seen.previews.add(id);
          if (s.overallProgress() > 0) window.__seen.progress = true;
        });
        return true;
    }""")
    assert seen
    editor.page.click("#queue-button")
    _wait_done(editor)
    observed = editor.js("() => ({ running: [...__seen.running], previews: [...__seen.previews], progress: __seen.progress })")
    assert str(sampler) in observed["running"]
    assert str(sampler) in observed["previews"], "the sampler showed live previews"
    assert observed["progress"]
    images = editor.js(f"() => weft.execution.outputFor('{save}').images")
    assert len(images) == 1 and images[0]["type"] == "output"
    url = editor.js("(img) => weft.api.viewUrl(img)", images[0])
    editor.page.wait_for_function("(u) => weft.view.images.status(u) === 'loaded'", arg=url)
    # The seed moved on after queueing (its control says randomize).
    assert editor.node(sampler)["widgets_values"][1] == "randomize"
    assert editor.node(sampler)["widgets_values"][0] != seed_before
    # The queued request carried the UI workflow for the server to convert and to embed in the PNG.
    posted = editor.js("() => fetch('/api/control', {method: 'POST', body: JSON.stringify({})}).then((r) => r.json())")["posted"][-1]
    assert posted["workflow"]["version"] == 0.4
    assert posted["extra_data"]["extra_pnginfo"]["workflow"]["nodes"]
    assert "prompt" not in posted
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
    editor.js(f"() => weft.history.run(() => weft.doc.setWidgetValue({sampler}, 1, 'increment'))")
    editor.js(f"() => weft.history.run(() => weft.doc.setWidgetValue({sampler}, 0, 10))")
    editor.js("() => fetch('/api/control', {method: 'POST', body: JSON.stringify({paused: true})})")
    editor.page.fill("#batch-count", "3")
    editor.page.click("#queue-button")
    editor.page.wait_for_function(f"() => weft.doc.nodes.get({sampler}).widgets_values[0] === 13")
    posted = editor.js("() => fetch('/api/control', {method: 'POST', body: JSON.stringify({paused: false})}).then((r) => r.json())")["posted"][-3:]
    seeds = [next(n for n in p["workflow"]["nodes"] if n["type"] == "KSampler")["widgets_values"][0] for p in posted]
    assert seeds == [10, 11, 12]
    editor.page.wait_for_function("() => weft.execution.queueRemaining === 0 && weft.execution.lastResult?.result === 'success'", timeout=20000)


@pytest.mark.parametrize("expected_console_errors", [[r"status of 400"]])
def test_a_missing_required_input_is_highlighted_after_queueing(editor, expected_console_errors):
    sampler = editor.node_ids("KSampler")[0]
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


def test_queue_panel_lists_history_and_loads_a_past_workflow(editor):
    editor.page.click("#queue-button")
    _wait_done(editor)
    editor.page.click("#queue-toggle")
    item = editor.page.locator(".job.success").first
    item.wait_for()
    assert item.locator("img.job-thumb").count() == 1
    # Change the canvas, then load the past job's workflow back.
    editor.js("() => weft.commands.run('new')")
    assert editor.node_ids() == []
    item.locator("button.load").click()
    editor.settle()
    assert len(editor.node_ids()) == 7
    before = editor.js("() => Object.keys(weft.execution.outputs).length")
    item.locator("button.requeue").click()
    editor.page.wait_for_function("() => document.querySelectorAll('.job.success').length >= 2", timeout=15000)
    assert before == 0


def test_model_lists_refresh_from_the_server(editor):
    loader = editor.node_ids("CheckpointLoaderSimple")[0]
    editor.js("""() => fetch('/api/control', {method: 'POST', body: JSON.stringify({set_inputs: {CheckpointLoaderSimple:
        {ckpt_name: [["tiny-sd1.safetensors", "weft-starter.safetensors", "zz-new.safetensors"], {}]}}})})""")
    editor.page.mouse.click(*editor.empty_point())
    editor.page.keyboard.press("r")
    editor.page.wait_for_function("() => weft.catalog.get('CheckpointLoaderSimple').widgets[0].values.includes('zz-new.safetensors')")
    rect = editor.js(f"() => weft.view.widgetClientRect({loader}, 0)")
    editor.page.mouse.click(rect["x"] + rect["w"] / 2, rect["y"] + rect["h"] / 2)
    editor.page.click(".menu.picker .menu-item >> text=zz-new.safetensors")
    assert editor.node(loader)["widgets_values"] == ["zz-new.safetensors"]
