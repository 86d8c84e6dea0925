"""ControlNet workflows end to end: ComfyUI API prompts with ControlNetLoader, Canny and
ControlNetApplyAdvanced on a tiny SD1.5 checkpoint and tiny random ControlNets / T2I-Adapters."""

from __future__ import annotations

import numpy
import pytest

from ldm.control.tiny import tiny_adapter_config, write_tiny_adapter, write_tiny_controlnet
from tests.e2e.prompts import ksampler, node, save, sd_base


@pytest.fixture
def controlnets(studio, tmp_path):
    folder = tmp_path / "controlnet"
    write_tiny_controlnet(folder / "tiny_sd15_canny.safetensors", "sd1", seed=1)
    write_tiny_controlnet(folder / "tiny_sd15_other.pth.safetensors", "sd1", seed=2, prefix="control_model.")
    write_tiny_controlnet(folder / "tiny_sd15_diffusers.safetensors", "sd1", seed=3, layout="diffusers")
    write_tiny_adapter(folder / "tiny_t2i_sd15.safetensors", tiny_adapter_config(channels=(32, 64)), seed=4)
    studio.services.folders.add_model_root("controlnet", folder, first=True)
    pixels = numpy.zeros((128, 128, 3), dtype=numpy.uint8)
    pixels[32:96, 40:88] = 230  # a bright box: Canny finds its outline
    return studio.input_image("box.png", pixels)


def _prompt(image: str, controls: list[dict], seed: int = 4) -> dict:
    """Text to image at 128x128 with ``controls`` (name, strength, start, end) chained in order."""
    prompt = sd_base("tiny_sd1.safetensors")
    prompt.update({
        "10": node("LoadImage", image=image),
        "11": node("Canny", image=["10", 0], low_threshold=0.4, high_threshold=0.8),
        "5": node("EmptyLatentImage", width=128, height=128, batch_size=1),
    })
    positive, negative = ["2", 0], ["3", 0]
    for index, control in enumerate(controls):
        loader, apply = str(20 + 2 * index), str(21 + 2 * index)
        prompt[loader] = node("ControlNetLoader", control_net_name=control["name"])
        prompt[apply] = node("ControlNetApplyAdvanced", positive=positive, negative=negative,
                             control_net=[loader, 0], image=["11", 0], strength=control.get("strength", 1.0),
                             start_percent=control.get("start", 0.0), end_percent=control.get("end", 1.0))
        positive, negative = [apply, 0], [apply, 1]
    prompt["12"] = ksampler(["1", 0], positive, negative, ["5", 0], seed=seed, steps=4)
    prompt["13"] = node("VAEDecode", samples=["12", 0], vae=["1", 2])
    prompt["14"] = save(["13", 0], "controlnet")
    return prompt


def _image(studio, prompt, executor=None) -> numpy.ndarray:
    [path] = studio.run(prompt, executor)
    return studio.pixels(path).astype(int)


CANNY = {"name": "tiny_sd15_canny.safetensors"}


def test_controlnet_changes_the_image_and_strength_zero_leaves_it(studio, controlnets):
    plain = _image(studio, _prompt(controlnets, []))
    controlled = _image(studio, _prompt(controlnets, [CANNY]))
    assert numpy.abs(controlled - plain).max() > 20
    assert numpy.array_equal(_image(studio, _prompt(controlnets, [dict(CANNY, strength=0.0)])), plain)
    # active but negligible: the ControlNet runs, its residuals vanish, the picture is the plain one
    executor = studio.executor()  # keeps the loaded models cached, so they stay managed
    faint = _image(studio, _prompt(controlnets, [dict(CANNY, strength=1e-6)]), executor)
    assert numpy.abs(faint - plain).max() <= 1
    loaded = [entry["name"] for entry in studio.services.engine.memory.stats()]
    assert "ControlNetModel" in loaded  # placed by the memory manager like any model


def test_start_and_end_percent_limit_when_the_controlnet_acts(studio, controlnets):
    plain = _image(studio, _prompt(controlnets, []))
    full = _image(studio, _prompt(controlnets, [CANNY]))
    never = _image(studio, _prompt(controlnets, [dict(CANNY, start=0.0, end=0.0)]))
    late = _image(studio, _prompt(controlnets, [dict(CANNY, start=0.5, end=1.0)]))
    assert numpy.array_equal(never, plain)
    assert numpy.abs(late - plain).max() > 5 and numpy.abs(late - full).max() > 5


def test_chained_controlnets_each_count(studio, controlnets):
    other = {"name": "tiny_sd15_other.pth.safetensors", "strength": 0.7}
    first = _image(studio, _prompt(controlnets, [CANNY]))
    second = _image(studio, _prompt(controlnets, [other]))
    both = _image(studio, _prompt(controlnets, [CANNY, other]))
    assert numpy.abs(both - first).max() > 5 and numpy.abs(both - second).max() > 5
    # a second ControlNet at strength 0 is not applied at all
    assert numpy.array_equal(_image(studio, _prompt(controlnets, [CANNY, dict(other, strength=0.0)])), first)


def test_diffusers_layout_controlnet_and_t2i_adapter_load_through_controlnet_loader(studio, controlnets):
    plain = _image(studio, _prompt(controlnets, []))
    for name in ("tiny_sd15_diffusers.safetensors", "tiny_t2i_sd15.safetensors"):
        assert numpy.abs(_image(studio, _prompt(controlnets, [{"name": name}])) - plain).max() > 5


def test_sdxl_controlnet_and_control_lora(studio, controlnets, tmp_path):
    from ldm.loading.checkpoint import save_state_dict
    from ldm.control.tiny import control_lora_state_dict, tiny_controlnet_config

    folder = tmp_path / "controlnet"
    write_tiny_controlnet(folder / "tiny_sdxl_cn.safetensors", "sdxl", seed=5)
    unet_config = tiny_controlnet_config("sdxl").unet
    save_state_dict(folder / "tiny_sdxl_control_lora.safetensors",
                    {k: v.half() if v.is_floating_point() else v
                     for k, v in control_lora_state_dict(unet_config, seed=6).items()})

    def sdxl(controls):
        prompt = _prompt(controlnets, controls)
        prompt["1"] = node("CheckpointLoaderSimple", ckpt_name="tiny_sdxl.safetensors")
        prompt["12"]["inputs"]["steps"] = 2
        return prompt

    plain = _image(studio, sdxl([]))
    for name in ("tiny_sdxl_cn.safetensors", "tiny_sdxl_control_lora.safetensors"):
        assert numpy.abs(_image(studio, sdxl([{"name": name}])) - plain).max() > 5


def test_union_controlnet_type_is_set_by_set_union_controlnet_type(studio, controlnets, tmp_path):
    write_tiny_controlnet(tmp_path / "controlnet" / "tiny_union.safetensors", "sd1", seed=8, layout="diffusers",
                          union_types=8)

    def union(kind: str) -> dict:
        prompt = _prompt(controlnets, [{"name": "tiny_union.safetensors"}])
        prompt["30"] = node("SetUnionControlNetType", control_net=["20", 0], type=kind)
        prompt["21"]["inputs"]["control_net"] = ["30", 0]
        return prompt

    kinds = ("canny/lineart/anime_lineart/mlsd", "depth", "auto")
    canny, depth, auto = (_image(studio, union(kind)) for kind in kinds)
    assert numpy.abs(canny - depth).max() > 5 and numpy.abs(canny - auto).max() > 5
