"""Band-limited input: mixtures played at a lower rate (resampled down, and back up to the model's 16 kHz), scored
against targets treated the same way, with the empty upper band heard as it is, filled flat at a few levels below
the band's top, or mirrored. Behind UPPER_BAND_DB in lass/models/separator.py (docs/benchmarks.md,
"Band-limited input").

    python scripts/band_limited_input.py --data ../shared/data/esc50-16k --limit 120 --seed 0
    python scripts/band_limited_input.py --list configs/heldout_recordings.csv --data-root ../shared/data
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from lass.api import Separator
from lass.audio import resample
from lass.datasets import ClipBank, read_dataset
from lass.evaluation.protocols import label_mixtures, mixture_list
from lass.inference import input_gain
from lass.metrics import improvement, sdr, si_sdr
from lass.models import separator as separator_module


def add_case_arguments(parser: argparse.ArgumentParser) -> None:
    """The mixtures this script and band_detection.py play at lower rates."""
    parser.add_argument("--data", help="ESC-50 folder: fold-4 label mixtures, one interferer")
    parser.add_argument("--list", help="a mixture list (as lass evaluate --list)")
    parser.add_argument("--data-root", default=".")
    parser.add_argument("--limit", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rates", type=int, nargs="+", default=[16000, 11025, 8000])


def read_cases(opts: argparse.Namespace, sample_rate: int) -> list:
    if opts.list:
        return mixture_list(opts.list, opts.data_root, sample_rate)
    bank = ClipBank(read_dataset({"type": "esc50", "path": opts.data, "folds": [4]}), sample_rate)
    return label_mixtures(bank, 1, seed=opts.seed, limit=opts.limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_case_arguments(parser)  # a --list is cut to its shortest mixture here
    opts = parser.parse_args()
    torch.set_grad_enabled(False)
    sep = Separator()
    model = sep.model
    cases = read_cases(opts, model.sample_rate)
    queries = sorted(set(c.query for c in cases))
    conds = sep.conditions(queries)[[queries.index(c.query) for c in cases]]
    length = min(c.mixture.shape[-1] for c in cases)

    def played_at(x: np.ndarray, rate: int) -> np.ndarray:
        return resample(resample(x, model.sample_rate, rate), rate, model.sample_rate)[..., :length]

    for rate in opts.rates:
        mixture = torch.from_numpy(np.stack([played_at(c.mixture, rate) for c in cases]).astype(np.float32))
        target = torch.from_numpy(np.stack([played_at(c.target, rate) for c in cases]).astype(np.float32))
        spec = model.stft(mixture)
        rms = mixture.pow(2).mean(-1).sqrt()
        gains = torch.tensor([input_gain(float(r), model.config.input_level_db) for r in rms])[:, None, None]
        magnitude = spec.abs() * gains
        bins = magnitude.shape[-2]
        cut = int((bins - 1) * rate / model.sample_rate * 0.97)  # as MaskSeparator.heard cuts

        def report(name: str, heard: torch.Tensor) -> None:
            mask = torch.cat([model.network(heard[i : i + 20], conds[i : i + 20]) for i in range(0, len(heard), 20)])
            estimate = model.stft.inverse(spec * mask.clamp_min(0).pow(model.config.mask_power), length)
            print(f"{rate:6d} Hz  {name:26s} SDRi {float(improvement(sdr, estimate, target, mixture).mean()):6.2f}"
                  f"   SI-SDRi {float(improvement(si_sdr, estimate, target, mixture).mean()):6.2f}", flush=True)

        report("as heard", magnitude)
        if rate >= model.sample_rate:
            continue
        shipped = separator_module.UPPER_BAND_DB
        for db in (-15, -10, -5, 0):
            separator_module.UPPER_BAND_DB = db  # what the engine does (MaskSeparator.heard), at other levels
            report(f"filled at {db} dB{' (shipped)' if db == shipped else ''}", model.heard(spec, gains, rate / 2))
        separator_module.UPPER_BAND_DB = shipped
        source = (2 * cut - 1 - torch.arange(cut, bins)).clamp_min(0)
        for db in (-12, -6, 0):
            mirrored = magnitude.clone()
            mirrored[..., cut:, :] = torch.maximum(magnitude[..., cut:, :], magnitude[..., source, :] * 10 ** (db / 20))
            report(f"mirrored at {db} dB", mirrored)


if __name__ == "__main__":
    main()
