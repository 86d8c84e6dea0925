"""ComfyUI's API clients from PyPI, used unchanged against Weft started with default flags: each
queues the starter model's workflow and gets the saved PNG back. Both read every binary websocket
frame as an image of the job (comfyui-utils asserts that none arrives), so they pass only when
Weft sends preview frames to clients that asked for them alone (api.previews)."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from tests.clients.conftest import starter_prompt

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _saved_png(data: bytes) -> Image.Image:
    assert data.startswith(PNG_SIGNATURE), data[:16]
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_comfy_api_simplified_gets_the_saved_png(starter_server):
    from comfy_api_simplified import ComfyApiWrapper, ComfyWorkflowWrapper

    api = ComfyApiWrapper(starter_server.url)
    workflow = ComfyWorkflowWrapper(starter_prompt(seed=11))
    workflow.set_node_param("Save Image", "filename_prefix", "simplified")
    results = api.queue_and_wait_images(workflow, "Save Image")
    assert len(results) == 1
    (name, data), = results.items()
    assert name.startswith("simplified_") and name.endswith(".png"), name
    image = _saved_png(data)
    assert image.size == (64, 64)  # the saved image, not a live preview
    assert "prompt" in image.info and "simplified" in image.info["prompt"]


class _Recorder:
    """comfyui-utils' callbacks: what it reported, in order."""

    def __init__(self):
        self.positions, self.steps, self.results = [], [], []

    async def queue_position(self, position):
        self.positions.append(position)

    async def in_progress(self, node_id, progress, total):
        self.steps.append((node_id, progress, total))

    async def completed(self, outputs, cached):
        self.results.append((outputs, cached))


def test_comfyui_utils_gets_the_saved_png(starter_server):
    from comfyui_utils.comfy import Callbacks, ComfyAPI

    Callbacks.register(_Recorder)
    address = starter_server.url.removeprefix("http://")
    recorder = _Recorder()
    prompt = starter_prompt(seed=12, steps=12)
    prompt["9"]["inputs"]["filename_prefix"] = "utils"
    fetched: list[bytes] = []

    async def run():
        api = ComfyAPI(address)
        await api.submit(prompt, recorder)
        (outputs, cached), = recorder.results
        assert not cached
        image = outputs["images"][0]

        async def keep(data):
            fetched.append(data.read())

        await api.fetch(image, keep)

    asyncio.run(run())
    assert recorder.steps, "it reported the sampler's steps"
    image = _saved_png(fetched[0])
    assert image.size == (64, 64)
