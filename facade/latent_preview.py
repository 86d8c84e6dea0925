"""ComfyUI's ``latent_preview`` for node packs: live previews made by :mod:`ldm.previews`.

``prepare_callback(model, steps)`` gives the per-step callback packs hand to their samplers: it
reports the running node's progress with a preview of the predicted x0, made the way the server's
``--preview-method`` says (``host().services.options.preview_method``, which
``comfy.cli_args.args.preview_method`` and :func:`set_preview_method` change too).
"""

from __future__ import annotations

import logging

import torch
from PIL import Image

import comfy.utils
import folder_paths
from _weft_binding import host
from comfy.cli_args import LatentPreviewMethod
from graph.context import current_context
from ldm.latent_formats import LatentFormat
from ldm.networks.taesd import load_taesd_decoder
from ldm.previews import make_previewer

log = logging.getLogger(__name__)


def _options():
    return host().services.options


def __getattr__(name: str):
    """``MAX_PREVIEW_RESOLUTION`` and ``default_preview_method``, read from the server."""
    if name == "MAX_PREVIEW_RESOLUTION":
        return _options().preview_size
    if name == "default_preview_method":
        return LatentPreviewMethod(_flag_method())
    raise AttributeError(f"module 'latent_preview' has no attribute {name!r}")


def _flag_method() -> str:
    """The method the server was started with (its current one when started without flags)."""
    return getattr(getattr(host(), "args", None), "preview_method", None) or _options().preview_method


def set_preview_method(override: str | None = None) -> None:
    """Use ``override`` (a method name) from now on; None or ``"default"`` goes back to the flag."""
    method = LatentPreviewMethod.from_string(override) if override and override != "default" else None
    _options().preview_method = method.value if method is not None else _flag_method()
    context = current_context()
    if context is not None:  # the running job's own method gives way to the pack's choice
        context.preview_method = None


def preview_to_image(latent_image: torch.Tensor, do_scale: bool = True) -> Image.Image:
    """``[H, W, 3]`` in -1…1 (0…1 without ``do_scale``) as an RGB image."""
    pixels = (latent_image + 1.0) / 2.0 if do_scale else latent_image
    pixels = pixels.detach().float().clamp(0.0, 1.0).mul(255).round().to(device="cpu", dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


class TAESD(torch.nn.Module):
    """ComfyUI's TAESD wrapper (older ComfyUI re-exported it here), decoder side: ``TAESD(None,
    decoder_path, latent_channels)`` loads Weft's TAESD decoder (``ldm.networks.taesd``) from the file, and
    ``decode(latents)`` gives images ``[B, 3, H, W]`` in about -1…1 (unclamped, as ComfyUI's), with
    the ``vae_scale`` / ``vae_shift`` parameters applied first. Weft has no TAESD encoder: an
    ``encoder_path`` and ``encode`` raise :class:`_weft_absent.NotInWeftError`."""

    latent_magnitude = 3
    latent_shift = 0.5

    def __init__(self, encoder_path=None, decoder_path=None, latent_channels=4):
        from comfy.taesd.taesd import TAESD_ENCODER
        from ldm.networks.taesd import taesd_decoder

        if encoder_path is not None:
            raise TAESD_ENCODER.error(f"{__name__}.TAESD(encoder_path=...)")
        super().__init__()
        self.taesd_decoder = (load_taesd_decoder(decoder_path, latent_channels) if decoder_path is not None
                              else taesd_decoder(latent_channels))
        self.vae_scale = torch.nn.Parameter(torch.tensor(1.0))
        self.vae_shift = torch.nn.Parameter(torch.tensor(0.0))

    @staticmethod
    def scale_latents(x):
        """Raw latents to 0…1 (``x / 6 + 0.5``, clamped)."""
        return x.div(2 * TAESD.latent_magnitude).add(TAESD.latent_shift).clamp(0, 1)

    @staticmethod
    def unscale_latents(x):
        """0…1 back to raw latents."""
        return x.sub(TAESD.latent_shift).mul(2 * TAESD.latent_magnitude)

    def decode(self, x):
        images = self.taesd_decoder((x - self.vae_shift) * self.vae_scale)
        return images * 2.0 - 1.0

    def encode(self, x):
        from comfy.taesd.taesd import TAESD_ENCODER

        raise TAESD_ENCODER.error(f"{__name__}.TAESD.encode")


class LatentPreviewer:
    """Turns a predicted x0 ``[B, C, h, w]`` into a preview of its first item."""

    def decode_latent_to_preview(self, x0):
        return None

    def decode_latent_to_preview_image(self, preview_format, x0):
        return preview_format, self.decode_latent_to_preview(x0), _options().preview_size


class TAESDPreviewerImpl(LatentPreviewer):
    """A preview through a TAESD-like object whose ``decode(x)`` gives images ``[B, 3, H, W]`` in -1…1."""

    def __init__(self, taesd):
        self.taesd = taesd

    def decode_latent_to_preview(self, x0):
        return preview_to_image(self.taesd.decode(x0[:1])[0].movedim(0, 2))


class Latent2RGBPreviewer(LatentPreviewer):
    """A linear projection of the latent channels to RGB (``factors`` ``[C][3]``, optional bias)."""

    def __init__(self, latent_rgb_factors, latent_rgb_factors_bias=None, latent_rgb_factors_reshape=None):
        self.latent_rgb_factors = torch.tensor(latent_rgb_factors, dtype=torch.float32)
        self.latent_rgb_factors_bias = (None if latent_rgb_factors_bias is None
                                        else torch.tensor(latent_rgb_factors_bias, dtype=torch.float32))
        self.latent_rgb_factors_reshape = latent_rgb_factors_reshape

    def decode_latent_to_preview(self, x0):
        if self.latent_rgb_factors_reshape is not None:
            x0 = self.latent_rgb_factors_reshape(x0)
        first = x0[0, :, 0] if x0.ndim == 5 else x0[0]  # [C, h, w]
        rgb = torch.einsum("chw,cr->hwr", first.float(), self.latent_rgb_factors.to(first.device))
        if self.latent_rgb_factors_bias is not None:
            rgb = rgb + self.latent_rgb_factors_bias.to(first.device)
        return preview_to_image(rgb)


class _WeftPreviewer(LatentPreviewer):
    """One of :mod:`ldm.previews`' previewers (latent→RGB or TAESD, sized to ``--preview-size``)."""

    def __init__(self, previewer):
        self.previewer = previewer

    def decode_latent_to_preview(self, x0):
        return self.previewer(x0[:, :, 0] if x0.ndim == 5 else x0)


class _TAESDDecoder:
    """Weft's TAESD decoder with ComfyUI's ``decode`` convention (images in -1…1)."""

    def __init__(self, decoder):
        self.decoder = decoder

    def decode(self, x):
        parameter = next(self.decoder.parameters())
        with torch.no_grad():
            rgb = self.decoder(x.to(device=parameter.device, dtype=parameter.dtype))
        return rgb.float().clamp(0.0, 1.0) * 2.0 - 1.0


def _method() -> str:
    context = current_context()
    method = (context.preview_method if context is not None else None) or _options().preview_method
    return "latent2rgb" if method == "auto" else method


def _taesd_candidates(prefix):
    if prefix is None:
        return []
    names = folder_paths.get_filename_list("vae_approx")
    return [(name, folder_paths.get_full_path("vae_approx", name)) for name in names if name.startswith(prefix)]


def get_previewer(device, latent_format):
    """The previewer the server's preview method asks for, for ``latent_format`` (Weft's own, or a
    ComfyUI-style object with ``latent_rgb_factors`` / ``taesd_decoder_name``); None for ``none``."""
    method = _method()
    if method == "none" or latent_format is None:
        return None
    if isinstance(latent_format, LatentFormat):
        previewer = make_previewer(method, latent_format, _taesd_candidates(latent_format.taesd_decoder_name),
                                   _options().preview_size, device or "cpu")
        return None if previewer is None else _WeftPreviewer(previewer)
    if method == "taesd":
        found = _taesd_candidates(getattr(latent_format, "taesd_decoder_name", None))
        if found:
            channels = getattr(latent_format, "latent_channels", 4)
            return TAESDPreviewerImpl(_TAESDDecoder(load_taesd_decoder(found[0][1], channels).to(device or "cpu")))
        log.warning("TAESD previews asked for, but no %s.* in the vae_approx models; using latent2rgb",
                    getattr(latent_format, "taesd_decoder_name", None))
    factors = getattr(latent_format, "latent_rgb_factors", None)
    if factors is None:
        return None
    return Latent2RGBPreviewer(factors, getattr(latent_format, "latent_rgb_factors_bias", None),
                               getattr(latent_format, "latent_rgb_factors_reshape", None))


def _latent_format_of(model):
    """A MODEL's latent format: Weft's handle, or ComfyUI's ``model.model.latent_format``."""
    found = getattr(model, "latent_format", None)
    if found is None:
        found = getattr(getattr(model, "model", None), "latent_format", None)
    if found is None and callable(getattr(model, "get_model_object", None)):
        try:
            found = model.get_model_object("latent_format")
        except (AttributeError, KeyError):
            found = None
    return found


def prepare_callback(model, steps, x0_output_dict=None):
    """``callback(step, x0, x, total_steps)`` for a sampler: keeps x0 in ``x0_output_dict["x0"]``
    and moves the running node's progress bar to ``step + 1``, with a preview of x0."""
    device = getattr(model, "load_device", None) or getattr(model, "device", None)
    previewer = get_previewer(device, _latent_format_of(model))
    bar = comfy.utils.ProgressBar(steps)

    def callback(step, x0, x, total_steps):
        if x0_output_dict is not None:
            x0_output_dict["x0"] = x0
        preview = None
        if previewer is not None:
            with torch.no_grad():
                preview = previewer.decode_latent_to_preview_image("JPEG", x0)
        bar.update_absolute(step + 1, total_steps, preview)

    return callback
