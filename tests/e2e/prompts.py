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
