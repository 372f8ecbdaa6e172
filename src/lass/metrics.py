"""One implementation of each separation metric (numpy and torch share the definitions).

- `sdr`: AudioSep-style SDR, i.e. plain SNR 10*log10(|ref|^2 / |est-ref|^2).
- `si_sdr`: scale-invariant SDR with the mean removed (Le Roux et al. 2019).
- `bss_sdr`: bss_eval-style SDR with a 512-tap distortion filter (fast_bss_eval), as CLAPSep reports.
- `level_db`: how loud an output is against its input (a query that found little comes out far below it).
- `cosine`: how alike two signals are, scale aside (1: one is the other scaled).
Improvements (`...i`) subtract the same metric of the unprocessed mixture.
"""
from __future__ import annotations

import numpy as np
import torch

EPS = 1e-10


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two signals, in float64; 0 where one is silent."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    norms = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b)) / norms if norms > 0 else 0.0


def level_db(energy: float, reference_energy: float) -> float:
    """A signal's energy relative to a reference's (e.g. a separated track against its mixture), in dB;
    -inf for a silent signal."""
    return 10 * float(np.log10(energy / reference_energy)) if energy > 0 else -np.inf


def sdr(estimate, reference):
    """Plain SNR in dB along the last axis. numpy or torch in, same type out."""
    if isinstance(estimate, torch.Tensor):
        num = reference.pow(2).sum(-1).clamp_min(EPS)
        den = (estimate - reference).pow(2).sum(-1).clamp_min(EPS)
        return 10 * torch.log10(num / den)
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    num = np.maximum(np.sum(reference**2, -1), EPS)
    den = np.maximum(np.sum((estimate - reference) ** 2, -1), EPS)
    return 10 * np.log10(num / den)


def si_sdr_parts(estimate: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(estimate with its mean removed, its projection on the mean-removed reference): SI-SDR is
    the energy ratio of the projection to the rest. Shared with the SI-SDR training loss."""
    est = estimate - estimate.mean(-1, keepdim=True)
    ref = reference - reference.mean(-1, keepdim=True)
    alpha = (est * ref).sum(-1, keepdim=True) / ref.pow(2).sum(-1, keepdim=True).clamp_min(EPS)
    return est, alpha * ref


def si_sdr(estimate, reference):
    """Scale-invariant SDR in dB, means removed, along the last axis."""
    if isinstance(estimate, torch.Tensor):
        est, proj = si_sdr_parts(estimate, reference)
        return 10 * torch.log10(proj.pow(2).sum(-1).clamp_min(EPS) / (est - proj).pow(2).sum(-1).clamp_min(EPS))
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    est = est - est.mean(-1, keepdims=True)
    ref = ref - ref.mean(-1, keepdims=True)
    alpha = np.sum(est * ref, -1, keepdims=True) / np.maximum(np.sum(ref**2, -1, keepdims=True), EPS)
    proj = alpha * ref
    return 10 * np.log10(np.maximum(np.sum(proj**2, -1), EPS) / np.maximum(np.sum((est - proj) ** 2, -1), EPS))


def bss_sdr(estimate, reference, filter_length: int = 512):
    """bss_eval SDR with a `filter_length`-tap distortion filter (fast_bss_eval)."""
    import fast_bss_eval

    est = np.atleast_2d(np.asarray(estimate, dtype=np.float64))
    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    out = fast_bss_eval.sdr(ref, est, filter_length=filter_length, use_cg_iter=None, clamp_db=100)
    return out if np.ndim(estimate) > 1 else float(out[0])


def improvement(metric, estimate, reference, mixture):
    """A metric's gain over the unprocessed mixture (SDRi from `sdr`, SI-SDRi from `si_sdr`): what separating did."""
    return metric(estimate, reference) - metric(mixture, reference)
