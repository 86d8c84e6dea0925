"""ComfyUI's ``comfy.cli_args`` for node packs: ``args`` under ComfyUI's flag names, read from Weft.

Nothing parses ``sys.argv`` here. ``parser`` knows ComfyUI's flags and their defaults; ``args``
answers each name from the server's own parsed flags (``host().args``) and objects where the
meaning matches — folders, network, the VRAM mode and precision the engine runs with, previews,
metadata, caching, packs — and with ComfyUI's default otherwise. ``preview_method``,
``preview_size`` and ``disable_metadata`` are the server's node options themselves: setting them
here changes what Weft's nodes do. Any other assignment is kept by ``args`` alone.
"""

from __future__ import annotations

import argparse
import enum
from typing import Any, Callable

from _weft_binding import host


class LatentPreviewMethod(enum.Enum):
    NoPreviews = "none"
    Auto = "auto"
    Latent2RGB = "latent2rgb"
    TAESD = "taesd"

    @classmethod
    def from_string(cls, value: str):
        return next((member for member in cls if member.value == value), None)


class PerformanceFeature(enum.Enum):
    Fp16Accumulation = "fp16_accumulation"
    Fp8MatrixMultiplication = "fp8_matrix_mult"
    CublasOps = "cublas_ops"
    AutoTune = "autotune"


class EnumAction(argparse.Action):
    """An argparse action whose choices are an Enum's values and whose result is the member."""

    def __init__(self, **kwargs):
        enum_type = kwargs.pop("type", None)
        if enum_type is None or not issubclass(enum_type, enum.Enum):
            raise TypeError("EnumAction needs type= an Enum class")
        choices = tuple(member.value for member in enum_type)
        kwargs.setdefault("choices", choices)
        kwargs.setdefault("metavar", f"[{','.join(choices)}]")
        super().__init__(**kwargs)
        self._enum = enum_type

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self._enum(values))


def _flags(parser: argparse.ArgumentParser, names: str, **options) -> None:
    for name in names.split():
        parser.add_argument(f"--{name}", **options)


def _exclusive(parser: argparse.ArgumentParser, names: str) -> None:
    group = parser.add_mutually_exclusive_group()
    for name in names.split():
        group.add_argument(f"--{name}", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    """ComfyUI's command-line flags with their defaults (help texts left out: see ComfyUI)."""
    parser = argparse.ArgumentParser(prog="main.py", add_help=False)
    add = parser.add_argument
    add("--listen", type=str, default="127.0.0.1", metavar="IP", nargs="?", const="0.0.0.0,::")
    add("--port", type=int, default=8188)
    _flags(parser, "tls-keyfile tls-certfile", type=str)
    add("--enable-cors-header", type=str, default=None, metavar="ORIGIN", nargs="?", const="*")
    add("--max-upload-size", type=float, default=100)
    _flags(parser, "base-directory output-directory temp-directory input-directory models-directory "
                   "user-directory front-end-root", type=str, default=None)
    add("--extra-model-paths-config", type=str, default=None, metavar="PATH", nargs="+", action="append")
    _flags(parser, "auto-launch disable-auto-launch cpu-vae force-channels-last disable-ipex-optimize "
                   "supports-fp8-compute disable-xformers async-offload force-non-blocking disable-smart-memory "
                   "deterministic mmap-torch-files disable-mmap dont-print-server quick-test-for-ci "
                   "windows-standalone-build disable-metadata disable-all-custom-nodes disable-api-nodes "
                   "multi-user log-stdout enable-compress-response-body disable-pinned-memory "
                   "disable-async-offload preview-full-batch", action="store_true")
    add("--cuda-device", type=int, default=None, metavar="DEVICE_ID")
    add("--default-device", type=int, default=None, metavar="DEFAULT_DEVICE_ID")
    _exclusive(parser, "cuda-malloc disable-cuda-malloc")
    _exclusive(parser, "force-fp32 force-fp16")
    _exclusive(parser, "fp32-unet fp64-unet bf16-unet fp16-unet fp8_e4m3fn-unet fp8_e5m2-unet fp8_e8m0fnu-unet")
    _exclusive(parser, "fp16-vae fp32-vae bf16-vae")
    _exclusive(parser, "fp8_e4m3fn-text-enc fp8_e5m2-text-enc fp16-text-enc fp32-text-enc bf16-text-enc")
    add("--directml", type=int, nargs="?", metavar="DIRECTML_DEVICE", const=-1)
    add("--oneapi-device-selector", type=str, default=None, metavar="SELECTOR_STRING")
    add("--preview-method", type=LatentPreviewMethod, default=LatentPreviewMethod.NoPreviews, action=EnumAction)
    add("--preview-size", type=int, default=512)
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache-classic", action="store_true")
    cache.add_argument("--cache-lru", type=int, default=0)
    cache.add_argument("--cache-none", action="store_true")
    _exclusive(parser, "use-split-cross-attention use-quad-cross-attention use-pytorch-cross-attention "
                       "use-sage-attention use-flash-attention")
    _exclusive(parser, "force-upcast-attention dont-upcast-attention")
    _exclusive(parser, "gpu-only highvram normalvram lowvram novram cpu")
    add("--reserve-vram", type=float, default=None)
    add("--default-hashing-function", type=str, choices=["md5", "sha1", "sha256", "sha512"], default="sha256")
    add("--fast", nargs="*", type=PerformanceFeature)
    add("--whitelist-custom-nodes", type=str, nargs="+", default=[])
    add("--verbose", default="INFO", const="DEBUG", nargs="?",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
    add("--front-end-version", type=str, default="comfyanonymous/ComfyUI@latest")
    add("--comfy-api-base", type=str, default="https://api.comfy.org")
    add("--database-url", type=str, default=None)
    return parser


parser = build_parser()


def comfy_defaults() -> dict[str, Any]:
    """ComfyUI's ``args`` with no flags given (``fast`` as the empty set, as ComfyUI leaves it)."""
    defaults = vars(parser.parse_args([]))
    defaults["fast"] = set()
    return defaults


# -- what Weft knows, under ComfyUI's names ------------------------------------------------------------

def _weft_args():
    return getattr(host(), "args", None)


def _weft_flag(name: str, default: Any = None) -> Callable[[], Any]:
    return lambda: getattr(_weft_args(), name, default)


def _options():
    return host().services.options


def _engine():
    return getattr(host().services, "engine", None)


def _mode_is(flag: str) -> Callable[[], bool]:
    """A VRAM flag from the engine's mode (Weft's ``VramMode`` values are the flag names), so
    ``args.cpu`` is also True when Weft fell back to the CPU for want of a GPU."""
    def read() -> bool:
        engine = _engine()
        if engine is None:
            return bool(getattr(_weft_args(), flag, False))
        return engine.options.mode.value == flag
    return read


def _precision(kind: str, name: str) -> Callable[[], bool]:
    return lambda: getattr(_weft_args(), f"{kind}_precision", None) == name


def _extra_model_paths():
    configs = getattr(_weft_args(), "extra_model_paths_config", None)
    return [list(configs)] if configs else None


def _folder(attribute: str) -> Callable[[], str]:
    return lambda: str(getattr(host().services.folders, attribute))


def _reserve_vram():
    value = getattr(_weft_args(), "reserve_vram", None)
    if value is not None:
        return value
    engine = _engine()
    return None if engine is None or engine.options.reserve_bytes is None else engine.options.reserve_bytes / 1024 ** 3


def _smart_memory_off() -> bool:
    engine = _engine()
    if engine is None:
        return bool(getattr(_weft_args(), "disable_smart_memory", False))
    return not engine.options.smart_memory


#: ComfyUI name -> how to read it from Weft.
FROM_WEFT: dict[str, Callable[[], Any]] = {
    "listen": _weft_flag("listen", "127.0.0.1"),
    "port": _weft_flag("port", 8188),
    "enable_cors_header": _weft_flag("enable_cors_header"),
    "max_upload_size": _weft_flag("max_upload_size", 100),
    "multi_user": _weft_flag("multi_user", False),
    "base_directory": lambda: str(host().services.folders.base),
    "output_directory": _folder("output"),
    "input_directory": _folder("input"),
    "temp_directory": _folder("temp"),
    "user_directory": _folder("user"),
    "models_directory": lambda: str(host().services.folders.models_root or host().services.folders.base / "models"),
    "extra_model_paths_config": _extra_model_paths,
    "preview_method": lambda: LatentPreviewMethod(_options().preview_method),
    "preview_size": lambda: _options().preview_size,
    "disable_metadata": lambda: _options().disable_metadata,
    "cache_lru": _weft_flag("cache_lru", 0),
    "cache_none": _weft_flag("cache_none", False),
    "disable_all_custom_nodes": _weft_flag("disable_all_custom_nodes", False),
    "whitelist_custom_nodes": lambda: list(getattr(_weft_args(), "whitelist_custom_nodes", None) or []),
    "verbose": _weft_flag("verbose", "INFO"),
    "gpu_only": _mode_is("gpu_only"),
    "highvram": _mode_is("highvram"),
    "lowvram": _mode_is("lowvram"),
    "novram": _mode_is("novram"),
    "cpu": _mode_is("cpu"),
    "reserve_vram": _reserve_vram,
    "disable_smart_memory": _smart_memory_off,
    "disable_pinned_memory": _weft_flag("disable_pinned_memory", False),
    "disable_async_offload": _weft_flag("disable_async_offload", False),
    "cuda_device": _weft_flag("cuda_device"),
    "cpu_vae": _weft_flag("cpu_vae", False),
    "force_fp32": _weft_flag("force_fp32", False),
    "force_channels_last": lambda: bool(_engine() is not None and _engine().compute.channels_last),
    "use_pytorch_cross_attention": lambda: True,
    **{f"{name}_unet": _precision("unet", name) for name in ("fp32", "fp16", "bf16", "fp8_e4m3fn", "fp8_e5m2")},
    **{f"{name}_vae": _precision("vae", name) for name in ("fp32", "fp16", "bf16")},
}

#: Names whose assignment changes the server's node options (one object behind both surfaces).
TO_WEFT: dict[str, Callable[[Any], None]] = {
    "preview_method": lambda value: setattr(_options(), "preview_method",
                                            value.value if isinstance(value, LatentPreviewMethod) else str(value)),
    "preview_size": lambda value: setattr(_options(), "preview_size", int(value)),
    "disable_metadata": lambda value: setattr(_options(), "disable_metadata", bool(value)),
}


class ComfyArgs(argparse.Namespace):
    """``args``: each ComfyUI flag read from Weft when asked for (see :data:`FROM_WEFT`), else
    ComfyUI's default; an assignment to any other name is kept here and read back."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "_defaults", comfy_defaults())
        object.__setattr__(self, "_set", {})

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_"):
            return object.__getattribute__(self, name)
        assigned = object.__getattribute__(self, "_set")
        if name in assigned:
            return assigned[name]
        if name in FROM_WEFT:
            return FROM_WEFT[name]()
        defaults = object.__getattribute__(self, "_defaults")
        if name in defaults:
            return defaults[name]
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in TO_WEFT:
            TO_WEFT[name](value)
        else:
            self._set[name] = value

    def __delattr__(self, name: str) -> None:
        self._set.pop(name, None)

    def __contains__(self, name) -> bool:
        return name in self._set or name in FROM_WEFT or name in self._defaults

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in {**self._defaults, **self._set}}

    def __repr__(self) -> str:
        return f"ComfyArgs({self.as_dict()!r})"

    def __eq__(self, other) -> bool:
        return self is other


args = ComfyArgs()
