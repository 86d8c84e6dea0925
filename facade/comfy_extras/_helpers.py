"""The non-node names packs import from ComfyUI's ``comfy_extras`` modules.

Where Weft has the algorithm the name is Weft's (``composite`` is ``ldm.imaging.operations``'s, the noise
objects are ``ldm.sampling.custom``'s, ``rescale_zero_terminal_snr_sigmas`` is
``ldm.sampling.model_sampling``'s); otherwise it is a placeholder that raises
:class:`_weft_absent.NotInWeftError` when called or constructed. ``HELPERS[module][name]``.
"""

from __future__ import annotations

import torch

from _weft_absent import MODEL_SAMPLING_CLASSES, VIDEO, Feature, absent_class, absent_function
from comfy.samplers import CFGGuider
from ldm.imaging import operations as imaging
from ldm.patches import sag
from ldm.sampling.custom import DisabledNoise, RandomNoise
from ldm.sampling.model_sampling import rescale_zero_terminal_snr_sigmas

PERP_NEG = Feature("ComfyUI's Perp-Neg guider class (Weft's PerpNegGuider node and PerpNeg patch guide with "
                   "Perp-Neg)", planned=False)


def composite(destination: torch.Tensor, source: torch.Tensor, x: int, y: int, mask: torch.Tensor | None = None,
              multiplier: int = 8, resize_source: bool = False) -> torch.Tensor:
    """Paste ``source`` onto ``destination`` (both ``[B, C, H, W]``) at ``(x, y) // multiplier``,
    blended by ``mask``: Weft's ``ldm.imaging.operations.composite``, written into ``destination`` and
    returned, as ComfyUI's helper does."""
    destination[...] = imaging.composite(destination, source, x, y, mask, multiplier, resize_source)
    return destination


def create_blur_map(x0: torch.Tensor, attn: torch.Tensor, sigma: float = 3.0, threshold: float = 1.0) -> torch.Tensor:
    """ComfyUI's ``nodes_sag.create_blur_map``: ``x0`` blurred where the self-attention ``attn``
    ([batch·heads, tokens, tokens]) concentrates, sharp elsewhere (Weft's SAG step)."""
    return sag.blurred_where_attended(x0, attn, sigma, threshold)


class Guider_Basic(CFGGuider):
    """The GUIDER of ComfyUI's BasicGuider node: positive conditioning only, cfg 1."""

    def set_conds(self, positive):
        self.inner_set_conds({"positive": positive})


def _class(feature: Feature, module: str, name: str, *bases: type) -> type:
    return absent_class(feature, f"comfy_extras.{module}", name, bases or (object,))


def _function(feature: Feature, module: str, name: str):
    return absent_function(feature, f"comfy_extras.{module}", name)


HELPERS: dict[str, dict[str, object]] = {
    "nodes_mask": {"composite": composite},
    "nodes_custom_sampler": {"Noise_RandomNoise": RandomNoise, "Noise_EmptyNoise": DisabledNoise,
                             "Guider_Basic": Guider_Basic},
    "nodes_model_advanced": {
        "rescale_zero_terminal_snr_sigmas": rescale_zero_terminal_snr_sigmas,
        "LCM": _class(MODEL_SAMPLING_CLASSES, "nodes_model_advanced", "LCM"),
        "ModelSamplingDiscreteDistilled": _class(MODEL_SAMPLING_CLASSES, "nodes_model_advanced",
                                                 "ModelSamplingDiscreteDistilled"),
    },
    "nodes_perpneg": {"Guider_PerpNeg": _class(PERP_NEG, "nodes_perpneg", "Guider_PerpNeg", CFGGuider)},
    # The SAG helpers are Weft's (ldm/patches/sag.py): the same blur and attention-masked blur.
    "nodes_sag": {"gaussian_blur_2d": sag.gaussian_blur, "create_blur_map": create_blur_map},
    "nodes_stable3d": {"camera_embeddings": _function(VIDEO, "nodes_stable3d", "camera_embeddings")},
    "nodes_lt": {"get_noise_mask": _function(VIDEO, "nodes_lt", "get_noise_mask"),
                 "_append_guide_attention_entry": _function(VIDEO, "nodes_lt", "_append_guide_attention_entry")},
}
