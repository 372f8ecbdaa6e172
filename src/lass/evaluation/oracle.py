"""Oracle masks: what a mask on the model's own STFT could reach if it knew the true sources."""
from __future__ import annotations

import numpy as np
import torch

from ..stft import STFT, STFTConfig

EPS = 1e-10


def ideal_ratio_mask(target_spec: torch.Tensor, interference_spec: torch.Tensor) -> torch.Tensor:
    """|S| / (|S| + |N|) per time-frequency bin."""
    return target_spec.abs() / (target_spec.abs() + interference_spec.abs() + EPS)


def oracle_estimates(mixture: np.ndarray, target: np.ndarray, interference: np.ndarray,
                     stft_config: STFTConfig) -> dict[str, np.ndarray]:
    """Ideal ratio mask (|S| / (|S| + |N|)) and phase-sensitive mask (clipped to [0, 1]) estimates,
    both applied to the mixture with its phase, like a magnitude-mask model."""
    stft = STFT(stft_config)
    x, s, n = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (mixture, target, interference))
    X, S, N = stft(x), stft(s), stft(n)
    length = x.shape[-1]
    irm = ideal_ratio_mask(S, N)
    psm = (S.abs() / (X.abs() + EPS) * torch.cos(torch.angle(S) - torch.angle(X))).clamp(0, 1)
    return {name: stft.inverse(X * mask, length).numpy() for name, mask in (("irm", irm), ("psm", psm))}
