"""One mixer, shared by training (random parameters) and evaluation (fixed parameters).

The field's protocol: interferers are scaled by energy so that the target-to-interference ratio
is `snr_db`; if the mixture's peak exceeds `peak_limit`, mixture and references are scaled
together so the peak becomes `peak_target`.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-10


def energy(x: np.ndarray) -> float:
    return float(np.sum(np.asarray(x, dtype=np.float64) ** 2))


def mix(target: np.ndarray, interferers: list[np.ndarray], snr_db: float = 0.0,
        interferer_gains_db: list[float] | None = None, peak_limit: float = 1.0,
        peak_target: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (mixture, target, interference), all the same length as `target`.

    Each interferer is first brought to equal energy (optionally offset by its gain in dB), their
    sum is then scaled to E(target) / 10^(snr/10). A silent target leaves the interference at
    its own level (there is nothing to match).
    """
    target = np.asarray(target, dtype=np.float32)
    n = target.shape[-1]
    noise = np.zeros_like(target)
    gains = interferer_gains_db or [0.0] * len(interferers)
    for interferer, gain_db in zip(interferers, gains):
        interferer = np.asarray(interferer, dtype=np.float32)[..., :n]
        if interferer.shape[-1] < n:
            interferer = np.pad(interferer, [(0, 0)] * (interferer.ndim - 1) + [(0, n - interferer.shape[-1])])
        e = energy(interferer)
        if e > EPS:
            noise = noise + interferer / np.sqrt(e) * 10 ** (gain_db / 20)
    e_target, e_noise = energy(target), energy(noise)
    if e_noise > EPS and e_target > EPS:
        noise = noise * np.sqrt(e_target / e_noise / 10 ** (snr_db / 10))
    mixture = target + noise
    peak = float(np.max(np.abs(mixture))) if mixture.size else 0.0
    if peak > peak_limit:
        scale = peak_target / peak
        mixture, target, noise = mixture * scale, target * scale, noise * scale
    return mixture.astype(np.float32), target.astype(np.float32), noise.astype(np.float32)
