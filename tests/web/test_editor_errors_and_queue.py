"""Execution errors shown on their node; text outputs shown on PreviewAny; the queue panel:
cancelling pending jobs, Interrupt, loading and re-queueing a past job."""

import pytest

pytestmark = pytest.mark.browser


def _build(editor, pattern):
    return editor.js("""(pattern) => weft.history.run(() => {
        const doc = weft.doc;
        const text = doc.addNode('PrimitiveString', [0, 0]);
        const match = doc.addNode('RegexMatch', [300, 0]);
        const show = doc.addNode('PreviewAny', [700, 0]);
        doc.setWidgetValue(text.id, 0, 'Weft weaves');
        const names = doc.defOf(match).widgets.map((w) => w.name);
        doc.setWidgetValue(match.id, names.indexOf('regex_pattern'), pattern);
        doc.connectToWidget(text.id, 0, match.id, 'string');
        doc.connect(match.id, 0, show.id, 0);
        return [text.id, match.id, show.id];
    })""", pattern)


def _run(editor):
    editor.js("() => { weft.execution.lastResult = null; }")
    editor.page.click("#queue-button")
    editor.page.wait_for_function("() => weft.execution.lastResult != null", timeout=30000)
    editor.settle()
    return editor.js("() => weft.execution.lastResult.result")


def test_an_execution_error_is_shown_on_its_node(editor):
    """zz-broken.safetensors (in the test server's checkpoints folder) passes validation and fails to load."""
    editor.new_workflow(scale=1.0, offset=(60, 120))
    loader = editor.js("""() => weft.history.run(() => {
        const loader = weft.doc.addNode('CheckpointLoaderSimple', [0, 0]);
        const decode = weft.doc.addNode('VAEDecode', [400, 0]);
        const empty = weft.doc.addNode('EmptyLatentImage', [0, 300]);
        const show = weft.doc.addNode('PreviewImage', [700, 0]);
        weft.doc.setWidgetValue(loader.id, 0, 'zz-broken.safetensors');
        weft.doc.connect(empty.id, 0, decode.id, 0);
        weft.doc.connect(loader.id, 2, decode.id, 1);
        weft.doc.connect(decode.id, 0, show.id, 0);
        return loader.id;
    })""")
    assert _run(editor) == "error"
    assert editor.js(f"() => weft.execution.nodeStatus({loader})") == "error"
    error = editor.js("() => weft.execution.executionError")
    assert error["node_type"] == "CheckpointLoaderSimple" and error["exception_message"]
    assert "CheckpointLoaderSimple failed" in editor.page.locator(".toast.error").first.inner_text()
    assert editor.js("() => document.querySelector('#progress').textContent") == "Failed"


def test_text_outputs_show_on_the_node(editor):
    editor.new_workflow(scale=1.0, offset=(60, 120))
    text, match, show = _build(editor, "w.ave")
    assert _run(editor) == "success"
    assert editor.js(f"() => weft.execution.outputFor('{show}').text") == ["True"]


def test_cancel_pending_jobs_and_interrupt_the_running_one(editor):
    """Three long jobs (many steps on the tiny model): cancel the two waiting, interrupt the one running."""
    editor.js("""() => weft.history.run(() => {
        for (const node of weft.doc.nodes.values()) {
          const names = weft.doc.defOf(node).widgets.map((w) => w.name);
          if (node.type === 'EmptyLatentImage') { weft.doc.setWidgetValue(node.id, names.indexOf('width'), 64); weft.doc.setWidgetValue(node.id, names.indexOf('height'), 64); }
          if (node.type === 'KSampler') weft.doc.setWidgetValue(node.id, names.indexOf('steps'), 400);
        }
    })""")
    editor.page.click("#queue-toggle")
    editor.page.fill("#batch-count", "3")
    editor.page.click("#queue-button")
    editor.page.wait_for_function("() => weft.execution.progressFor(weft.execution.executingNode?.split(':')[0] ?? '')?.value > 0", timeout=60000)
    editor.page.wait_for_function("() => document.querySelectorAll('.job.pending').length === 2")
    assert editor.page.locator("#queue-size").inner_text() == "3"
    for remaining in (1, 0):
        editor.page.locator(".job.pending .cancel").first.click()
        editor.page.wait_for_function(f"() => document.querySelectorAll('.job.pending').length === {remaining}")
    editor.page.click("#interrupt-button")
    editor.page.wait_for_function("() => weft.execution.lastResult?.result === 'interrupted'", timeout=30000)
    editor.page.wait_for_function("() => weft.execution.queueRemaining === 0")
    editor.page.wait_for_function("() => document.querySelectorAll('.job.pending, .job.running').length === 0")
    assert editor.js("() => document.querySelector('#progress').textContent") == "Interrupted"


def test_queue_panel_on_the_real_server_loads_and_requeues_a_past_job(editor):
    editor.new_workflow(scale=1.0, offset=(40, 80))
    editor.js("""() => weft.history.run(() => {
        const empty = weft.doc.addNode('EmptyImage', [0, 0]);
        const save = weft.doc.addNode('SaveImage', [400, 0]);
        weft.doc.setTitle(save.id, 'Panel test');
        weft.doc.setWidgetValue(save.id, 0, 'panel_test');
        const names = weft.doc.defOf(empty).widgets.map((w) => w.name);
        weft.doc.setWidgetValue(empty.id, names.indexOf('width'), 16);
        weft.doc.setWidgetValue(empty.id, names.indexOf('height'), 16);
        weft.doc.connect(empty.id, 0, save.id, 0);
    })""")
    assert _run(editor) == "success"
    editor.page.click("#queue-toggle")
    job = editor.page.locator(".job.success").first
    job.wait_for()
    job.locator("img.job-thumb").wait_for()
    editor.new_workflow()
    job.locator("button.load").click()
    editor.settle()
    assert editor.js("() => [...weft.doc.nodes.values()].map((n) => weft.doc.titleOf(n)).sort()") == ["Empty Image", "Panel test"]
    # The past job's picture shows on its output node again.
    save = editor.js("() => [...weft.doc.nodes.values()].find((n) => n.type === 'SaveImage').id")
    assert editor.js(f"() => weft.execution.outputFor('{save}').images.length") == 1
    count = editor.page.locator(".job.success").count()
    job.locator("button.requeue").click()
    editor.page.wait_for_function(f"() => document.querySelectorAll('.job.success').length > {count}", timeout=30000)
