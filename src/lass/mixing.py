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
    mixture, target, scaled = mix_sources(target, interferers, snr_db, interferer_gains_db, peak_limit,
                                          peak_target)
    return mixture, target, interference(scaled, target)


def interference(scaled: list[np.ndarray], target: np.ndarray) -> np.ndarray:
    """The sum of `mix_sources`' interferers (silence where there are none)."""
    noise = np.sum(scaled, axis=0) if scaled else np.zeros_like(target)
    return noise.astype(np.float32)


def mix_sources(target: np.ndarray, interferers: list[np.ndarray], snr_db: float = 0.0,
                interferer_gains_db: list[float] | None = None, peak_limit: float = 1.0,
                peak_target: float = 0.9) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """`mix`, but returns each interferer as it sits in the mixture (for training on several
    queries of one mixture); mixture = target + sum of them."""
    target = np.asarray(target, dtype=np.float32)
    n = target.shape[-1]
    gains = interferer_gains_db or [0.0] * len(interferers)
    scaled = []
    for interferer, gain_db in zip(interferers, gains):
        interferer = np.asarray(interferer, dtype=np.float32)[..., :n]
        if interferer.shape[-1] < n:
            interferer = np.pad(interferer, [(0, 0)] * (interferer.ndim - 1) + [(0, n - interferer.shape[-1])])
        e = energy(interferer)
        scaled.append(interferer / np.sqrt(e) * 10 ** (gain_db / 20) if e > EPS else np.zeros_like(interferer))
    noise = interference(scaled, target)
    e_target, e_noise = energy(target), energy(noise)
    scale = np.sqrt(e_target / e_noise / 10 ** (snr_db / 10)) if e_noise > EPS and e_target > EPS else 1.0
    mixture = target + noise * scale
    peak = float(np.max(np.abs(mixture))) if mixture.size else 0.0
    peak_scale = peak_target / peak if peak > peak_limit else 1.0
    mixture, target = mixture * peak_scale, target * peak_scale
    scaled = [(s * scale * peak_scale).astype(np.float32) for s in scaled]
    return mixture.astype(np.float32), target.astype(np.float32), scaled
