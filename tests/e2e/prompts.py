"""ComfyUI API prompts used by the end-to-end tests, as ComfyUI ships or documents them (sizes
and step counts shrunk for tiny models)."""

from __future__ import annotations

import copy


def default_txt2img(ckpt: str = "tiny_sd1.safetensors", *, seed: int = 8566257, steps: int = 3,
                    size: int = 128, batch_size: int = 1, sampler: str = "euler",
                    scheduler: str = "normal") -> dict:
    """ComfyUI's default workflow in API form (node ids "3".."9", its prompt texts)."""
    return copy.deepcopy({
        "3": {"class_type": "KSampler",
              "inputs": {"seed": seed, "steps": steps, "cfg": 8.0, "sampler_name": sampler,
                         "scheduler": scheduler, "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0],
                         "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": batch_size}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,",
                         "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    })


def node(class_type: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": inputs}


def save(images_from: list, prefix: str = "ComfyUI") -> dict:
    return node("SaveImage", filename_prefix=prefix, images=images_from)


def ksampler(model, positive, negative, latent, *, seed: int = 42, steps: int = 3, cfg: float = 7.0,
             sampler: str = "euler", scheduler: str = "normal", denoise: float = 1.0) -> dict:
    return node("KSampler", seed=seed, steps=steps, cfg=cfg, sampler_name=sampler, scheduler=scheduler,
                denoise=denoise, model=model, positive=positive, negative=negative, latent_image=latent)


def sd_base(ckpt: str, positive: str = "a photo of a cat", negative: str = "blurry") -> dict:
    """Loader "1" and text encodes "2" (positive) / "3" (negative)."""
    return {"1": node("CheckpointLoaderSimple", ckpt_name=ckpt),
            "2": node("CLIPTextEncode", text=positive, clip=["1", 1]),
            "3": node("CLIPTextEncode", text=negative, clip=["1", 1])}


def img2img(image_name: str, denoise: float, ckpt: str = "tiny_sd1.safetensors", seed: int = 42) -> dict:
    prompt = sd_base(ckpt)
    prompt.update({
        "10": node("LoadImage", image=image_name),
        "11": node("VAEEncode", pixels=["10", 0], vae=["1", 2]),
        "12": ksampler(["1", 0], ["2", 0], ["3", 0], ["11", 0], seed=seed, denoise=denoise),
        "13": node("VAEDecode", samples=["12", 0], vae=["1", 2]),
        "14": save(["13", 0], "img2img"),
    })
    return prompt


def sdxl_base_refiner(seed: int = 7, steps: int = 4, switch_at: int = 3) -> dict:
    """ComfyUI's SDXL example shape: base KSamplerAdvanced returns leftover noise, the refiner's
    KSamplerAdvanced finishes the last steps without adding noise."""
    text = "a lighthouse at dusk"
    negative = "low quality"
    return {
        "4": node("CheckpointLoaderSimple", ckpt_name="tiny_sdxl.safetensors"),
        "12": node("CheckpointLoaderSimple", ckpt_name="tiny_sdxl_refiner.safetensors"),
        "5": node("EmptyLatentImage", width=128, height=128, batch_size=1),
        "6": node("CLIPTextEncodeSDXL", clip=["4", 1], width=1024, height=1024, crop_w=0, crop_h=0,
                  target_width=1024, target_height=1024, text_g=text, text_l=text),
        "7": node("CLIPTextEncodeSDXL", clip=["4", 1], width=1024, height=1024, crop_w=0, crop_h=0,
                  target_width=1024, target_height=1024, text_g=negative, text_l=negative),
        "15": node("CLIPTextEncodeSDXLRefiner", ascore=6.0, width=1024, height=1024, text=text, clip=["12", 1]),
        "16": node("CLIPTextEncodeSDXLRefiner", ascore=2.5, width=1024, height=1024, text=negative,
                   clip=["12", 1]),
        "10": node("KSamplerAdvanced", add_noise="enable", noise_seed=seed, steps=steps, cfg=8.0,
                   sampler_name="euler", scheduler="normal", start_at_step=0, end_at_step=switch_at,
                   return_with_leftover_noise="enable", model=["4", 0], positive=["6", 0], negative=["7", 0],
                   latent_image=["5", 0]),
        "11": node("KSamplerAdvanced", add_noise="disable", noise_seed=seed, steps=steps, cfg=8.0,
                   sampler_name="euler", scheduler="normal", start_at_step=switch_at, end_at_step=10000,
                   return_with_leftover_noise="disable", model=["12", 0], positive=["15", 0],
                   negative=["16", 0], latent_image=["10", 0]),
        "17": node("VAEDecode", samples=["11", 0], vae=["12", 2]),
        "19": save(["17", 0], "sdxl_refined"),
    }
