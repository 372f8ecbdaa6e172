"""How far a real mask on the default STFT can go, by the range it may take: the oracle ideal ratio mask
(amplitude |S| / (|S| + |N|), the evaluation's, and power |S|^2 / (|S|^2 + |N|^2)) and the phase-sensitive
mask clipped to [0, m] for several m, on the fold-4 protocol's mixtures, and the share of the target's
energy in bins where the ideal magnitude ratio |S| / |X| exceeds 1.

    python scripts/oracle_masks.py --data ../shared/data/esc50-16k --limit 150

A sigmoid mask network is held to [0, 1]; `network_args: {mask_max: 2.0}` widens it (docs/benchmarks.md,
"Masks above one").
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from lass.datasets import ClipBank, read_dataset
from lass.evaluation.oracle import ideal_ratio_mask, phase_sensitive_mask
from lass.evaluation.protocols import label_mixtures
from lass.metrics import sdr
from lass.stft import STFT, STFTConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="an ESC-50 folder (meta.csv)")
    parser.add_argument("--folds", type=int, nargs="+", default=[4])
    parser.add_argument("--limit", type=int, default=150, help="mixtures (the protocol's first ones)")
    parser.add_argument("--clips", type=float, nargs="+", default=[1.0, 1.5, 2.0], help="PSM upper bounds")
    parser.add_argument("--n-fft", type=int, default=1024)
    parser.add_argument("--hop", type=int, default=256)
    opts = parser.parse_args()

    bank = ClipBank(read_dataset({"type": "esc50", "path": opts.data, "folds": opts.folds}), 16000)
    cases = label_mixtures(bank, interferers=1, snr_db=0.0, seed=0)[: opts.limit]
    stft = STFT(STFTConfig(opts.n_fft, opts.hop))
    gains: dict[str, list[float]] = {"IRM": [], "IRM (power)": [], **{f"PSM [0, {c:g}]": [] for c in opts.clips}}
    above_one = []
    for case in cases:
        x, s = (torch.from_numpy(np.asarray(a, dtype=np.float32).reshape(-1)) for a in (case.mixture, case.target))
        X, S = stft(x), stft(s)
        baseline = float(sdr(x, s))
        masks = {"IRM": ideal_ratio_mask(S, X - S), "IRM (power)": ideal_ratio_mask(S, X - S, power=2.0)}
        masks.update({f"PSM [0, {c:g}]": phase_sensitive_mask(S, X, c) for c in opts.clips})
        for name, mask in masks.items():
            gains[name].append(float(sdr(stft.inverse(X * mask, x.shape[-1]), s)) - baseline)
        power = S.abs() ** 2
        above_one.append(float((power * (S.abs() > X.abs())).sum() / power.sum()))
    print(f"{len(cases)} mixtures, folds {opts.folds}, one interferer at 0 dB, STFT {opts.n_fft}/{opts.hop}")
    for name, values in gains.items():
        print(f"  oracle {name}: SDRi {np.mean(values):.2f} dB")
    print(f"  target energy where |S| > |X| (an ideal magnitude mask above 1): {100 * np.mean(above_one):.0f} %")


if __name__ == "__main__":
    main()
