"""Colour transfer: make a target image's colours match a reference's, as ComfyUI's ColorTransfer.

Methods: ``reinhard_lab`` matches each Lab channel's mean and standard deviation (Reinhard et
al. 2001, "Color Transfer between Images", in CIE Lab rather than lαβ); ``mkl_lab`` applies the
Monge–Kantorovich linear map between the two Lab covariance matrices (Pitié & Kokaram 2007,
"The linear Monge-Kantorovitch linear colour mapping"), which carries the source covariance
exactly onto the reference's; ``histogram`` maps each RGB channel through the 256-bin CDFs
(classic histogram matching). Statistics come per frame (each target frame against the
reference, frame by frame when the reference is a batch), pooled over all target frames
(``uniform``), or from one target frame (``target_frame``); the last two give one transform for
every frame. ``strength`` interpolates from the source (0) through the match (1) and beyond.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ldm.imaging.color_spaces import lab_to_rgb, rgb_to_lab

METHODS = ("reinhard_lab", "mkl_lab", "histogram")
SOURCE_STATS = ("per_frame", "uniform", "target_frame")
_EPS = 1e-6
_BINS = 256


@dataclass(frozen=True)
class _Stats:
    """Mean [C, 1] and spread: per-channel standard deviation [C, 1] or covariance [C, C]."""
    mean: torch.Tensor
    spread: torch.Tensor


def _lab_columns(frame: torch.Tensor) -> torch.Tensor:
    """One frame [H, W, 3] as Lab columns [3, H·W] in float32."""
    return rgb_to_lab(frame[..., :3].float()).reshape(-1, 3).T


def _frame_stats(columns: torch.Tensor, full_covariance: bool) -> _Stats:
    mean = columns.mean(dim=-1, keepdim=True)
    centred = columns - mean
    if full_covariance:
        return _Stats(mean, centred @ centred.T / columns.shape[1])
    return _Stats(mean, centred.square().mean(dim=-1, keepdim=True).sqrt().clamp(min=_EPS))


def _pooled_stats(frames: torch.Tensor, full_covariance: bool) -> _Stats:
    """Mean of the frames' means, then the mean spread around that common mean."""
    columns = [_lab_columns(frame) for frame in frames]
    mean = torch.stack([c.mean(dim=-1, keepdim=True) for c in columns]).mean(dim=0)
    moments = [(c - mean) @ (c - mean).T / c.shape[1] if full_covariance
               else (c - mean).square().mean(dim=-1, keepdim=True) for c in columns]
    second = torch.stack(moments).mean(dim=0)
    return _Stats(mean, second if full_covariance else second.sqrt().clamp(min=_EPS))


def mkl_matrix(source_covariance: torch.Tensor, reference_covariance: torch.Tensor) -> torch.Tensor:
    """T with T Σs Tᵀ = Σr: T = Σs^-½ (Σs^½ Σr Σs^½)^½ Σs^-½, through eigen-decompositions."""
    values, vectors = torch.linalg.eigh(source_covariance)
    root = values.clamp(min=0).sqrt().clamp(min=_EPS)
    scaled = vectors * root  # Σs^½ in the eigenbasis (columns scaled)
    middle_values, middle_vectors = torch.linalg.eigh(scaled.T @ reference_covariance @ scaled)
    middle_root = (middle_vectors * middle_values.clamp(min=0).sqrt()) @ middle_vectors.T
    inverse = vectors / root
    return inverse @ middle_root @ inverse.T


def _affine(source: _Stats, reference: _Stats, full_covariance: bool):
    """The map x → M x + offset taking the source statistics onto the reference's."""
    if full_covariance:
        matrix = mkl_matrix(source.spread, reference.spread)
        return lambda columns: matrix @ (columns - source.mean) + reference.mean
    scale = reference.spread / source.spread
    return lambda columns: (columns - source.mean) * scale + reference.mean


def transfer_lab(target: torch.Tensor, reference: torch.Tensor, full_covariance: bool, source_stats: str,
                 target_index: int, strength: float) -> torch.Tensor:
    """Reinhard (``full_covariance`` False) or MKL transfer in Lab; returns RGB [B, H, W, 3]
    (the reference's colour channels only: alpha is the caller's)."""
    batch, height, width = target.shape[:3]
    single_reference = reference.shape[0] == 1
    shared_reference = (_pooled_stats(reference, full_covariance)
                        if single_reference or source_stats != "per_frame" else None)
    shared_map = None
    if source_stats == "uniform":
        shared_map = _affine(_pooled_stats(target, full_covariance), shared_reference, full_covariance)
    elif source_stats == "target_frame":
        chosen = _lab_columns(target[min(target_index, batch - 1)])
        shared_map = _affine(_frame_stats(chosen, full_covariance), shared_reference, full_covariance)
    out = []
    for index, frame in enumerate(target):
        columns = _lab_columns(frame)
        if shared_map is not None:
            matched = shared_map(columns)
        else:
            matched_reference = shared_reference or _frame_stats(
                _lab_columns(reference[min(index, reference.shape[0] - 1)]), full_covariance)
            matched = _affine(_frame_stats(columns, full_covariance), matched_reference, full_covariance)(columns)
        lab = matched if strength == 1.0 else torch.lerp(columns, matched, strength)
        out.append(lab_to_rgb(lab.T.reshape(height, width, 3)))
    return torch.stack(out)


def _cdf(frames: torch.Tensor) -> torch.Tensor:
    """Per-channel CDF [C, 256] of 256-bin histograms over all given frames [N, H, W, C]."""
    bins = (frames.float() * (_BINS - 1)).long().clamp(0, _BINS - 1).permute(3, 0, 1, 2).reshape(frames.shape[-1], -1)
    counts = torch.zeros(frames.shape[-1], _BINS).scatter_add_(1, bins, torch.ones_like(bins, dtype=torch.float32))
    cumulative = counts.cumsum(dim=1)
    return cumulative / cumulative[:, -1:]


def histogram_lut(source_frames: torch.Tensor, reference_frames: torch.Tensor) -> torch.Tensor:
    """Per channel, for each source bin the first reference bin whose CDF reaches the source's
    CDF, as a value in 0..1: [C, 256]."""
    reference_cdf = _cdf(reference_frames)
    found = torch.searchsorted(reference_cdf.contiguous(), _cdf(source_frames).contiguous())
    return found.clamp(max=_BINS - 1).float() / (_BINS - 1)


def transfer_histogram(target: torch.Tensor, reference: torch.Tensor, source_stats: str, target_index: int,
                       strength: float) -> torch.Tensor:
    shared_lut = None
    if source_stats == "uniform":
        shared_lut = histogram_lut(target, reference)
    elif source_stats == "target_frame":
        chosen = min(target_index, target.shape[0] - 1)
        shared_lut = histogram_lut(target[chosen:chosen + 1], reference)
    out = []
    for index, frame in enumerate(target):
        lut = shared_lut if shared_lut is not None else histogram_lut(
            frame[None], reference[min(index, reference.shape[0] - 1)][None])
        source = frame.float().permute(2, 0, 1).reshape(frame.shape[-1], -1)
        bins = (source * (_BINS - 1)).long().clamp(0, _BINS - 1)
        matched = lut.gather(1, bins)
        blended = matched if strength == 1.0 else torch.lerp(source, matched, strength)
        out.append(blended.T.reshape(frame.shape).clamp(0, 1))
    return torch.stack(out)


def transfer(target: torch.Tensor, reference: torch.Tensor | None, method: str, source_stats: str = "per_frame",
             target_index: int = 0, strength: float = 1.0) -> torch.Tensor:
    """``target`` [B, H, W, C] with its colours matched to ``reference``; unchanged for
    strength 0 or no reference."""
    if method not in METHODS:
        raise ValueError(f"unknown color transfer method {method!r}; one of {', '.join(METHODS)}")
    if source_stats not in SOURCE_STATS:
        raise ValueError(f"unknown source_stats {source_stats!r}; one of {', '.join(SOURCE_STATS)}")
    if strength == 0 or reference is None:
        return target
    if method == "histogram":
        result = transfer_histogram(target, reference, source_stats, target_index, strength)
    else:
        result = transfer_lab(target, reference, method == "mkl_lab", source_stats, target_index, strength)
        if target.shape[-1] == 4:  # Lab has no alpha: keep the target's
            result = torch.cat((result, target[..., 3:].float()), dim=-1)
    return result.to(target.dtype)
