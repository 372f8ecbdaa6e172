"""How much mask resolution does separation need? The oracle ideal ratio mask on the validation
protocol's mixtures, averaged over frequency bands or over frames, against the unsmoothed mask.

    python scripts/oracle_smoothing.py --data ../shared/data/esc50-16k --folds 4 --limit 100

If a coarse oracle mask still scores far above the model, the model is limited by deciding what
belongs to the target, not by how finely its mask can follow the mixture (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from lass.datasets import ClipBank, read_dataset
from lass.evaluation.oracle import ideal_ratio_mask
from lass.evaluation.protocols import label_mixtures
from lass.metrics import sdr
from lass.stft import STFT, STFTConfig


def band_average(mask: torch.Tensor, bands: int) -> torch.Tensor:
    """Mean of the mask over log-spaced frequency bands, (F, T) -> (F, T)."""
    n_bins = mask.shape[-2]
    edges = np.unique(np.round(np.geomspace(1, n_bins, bands + 1)).astype(int))
    edges[0] = 0
    out = torch.empty_like(mask)
    for lo, hi in zip(edges[:-1], edges[1:]):
        out[..., lo:hi, :] = mask[..., lo:hi, :].mean(-2, keepdim=True)
    return out


def frame_average(mask: torch.Tensor, frames: int) -> torch.Tensor:
    """Centred moving mean of the mask over `frames` frames (odd), (F, T) -> (F, T)."""
    return torch.nn.functional.avg_pool1d(mask, frames, 1, frames // 2, count_include_pad=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="ESC-50 layout folder")
    parser.add_argument("--folds", type=int, nargs="+", default=[4])
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()

    bank = ClipBank(read_dataset({"type": "esc50", "path": args.data, "folds": args.folds}), 16000)
    cases = label_mixtures(bank, 1, 0.0, seed=1234, limit=args.limit)  # as the training run builds its validation set
    stft = STFT(STFTConfig(1024, 256))  # the default model's front end
    variants = {"IRM": lambda m: m, **{f"IRM, {k} bands": (lambda m, k=k: band_average(m, k)) for k in (16, 32, 64)},
                "IRM, 3 frames": lambda m: frame_average(m, 3)}
    scores: dict[str, list[float]] = {name: [] for name in variants}
    for case in cases:
        mixture, target = torch.from_numpy(case.mixture), torch.from_numpy(case.target)
        spec, target_spec, rest_spec = stft(mixture), stft(target), stft(mixture - target)
        irm = ideal_ratio_mask(target_spec, rest_spec)
        baseline = sdr(mixture, target).item()
        for name, smooth in variants.items():
            estimate = stft.inverse(spec * smooth(irm), mixture.shape[-1])
            scores[name].append(sdr(estimate, target).item() - baseline)
    print(f"{len(cases)} mixtures (1 interferer, 0 dB), mean SDRi:")
    for name, values in scores.items():
        print(f"  {name:16s} {np.mean(values):6.2f} dB")


if __name__ == "__main__":
    main()
