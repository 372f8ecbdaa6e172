"""Oracle masks: what a mask on the model's own STFT could reach if it knew the true sources."""
from __future__ import annotations

import numpy as np
import torch

from ..stft import STFT, STFTConfig

EPS = 1e-10


def ideal_ratio_mask(target_spec: torch.Tensor, interference_spec: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """|S|^p / (|S|^p + |N|^p) per time-frequency bin: p = 1 (amplitude) is what `lass evaluate` reports;
    p = 2 (power) is the other common definition, about 1 dB higher on our mixtures (docs/benchmarks.md)."""
    s, n = target_spec.abs() ** power, interference_spec.abs() ** power
    return s / (s + n + EPS)


def phase_sensitive_mask(target_spec: torch.Tensor, mixture_spec: torch.Tensor, mask_max: float = 1.0) -> torch.Tensor:
    """|S| / |X| cos(angle S - angle X), clipped to [0, mask_max]: with the mixture's phase, the
    SNR-optimal real mask. It exceeds 1 where the other sources partly cancel the target."""
    cosine = torch.cos(torch.angle(target_spec) - torch.angle(mixture_spec))
    return (target_spec.abs() / (mixture_spec.abs() + EPS) * cosine).clamp(0, mask_max)


def oracle_estimates(mixture: np.ndarray, target: np.ndarray, interference: np.ndarray,
                     stft_config: STFTConfig, psm_max: float = 1.0) -> dict[str, np.ndarray]:
    """Ideal ratio mask (|S| / (|S| + |N|)) and phase-sensitive mask (clipped to [0, psm_max], the
    model's own mask range) estimates, both applied to the mixture with its phase, like a magnitude-mask model."""
    stft = STFT(stft_config)
    x, s, n = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (mixture, target, interference))
    X, S, N = stft(x), stft(s), stft(n)
    length = x.shape[-1]
    masks = {"irm": ideal_ratio_mask(S, N), "psm": phase_sensitive_mask(S, X, psm_max)}
    return {name: stft.inverse(X * mask, length).numpy() for name, mask in masks.items()}
