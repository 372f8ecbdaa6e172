"""Where does a model lose on the fold-4 protocol? Separates the 400 one-interferer mixtures and sorts the
low scorers into two kinds: outputs close to the whole mixture (the model did not tell the sounds apart)
and outputs far below the target (it did not find the queried class). Also prints the mean SDRi an oracle
gain per mixture would give, the part of the gap that is only the output's level. Results:
docs/benchmarks.md, "Stochastic depth".

    python scripts/failure_kinds.py --data ../shared/data/esc50-16k [-m runs/x/model.safetensors]
"""
from __future__ import annotations

import argparse

import numpy as np

from lass.api import Separator
from lass.datasets import ClipBank, read_esc50
from lass.evaluation.protocols import label_mixtures
from lass.metrics import sdr
from lass.mixing import energy


def level_db(x: np.ndarray) -> float:
    return float(10 * np.log10(energy(x) + 1e-12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default=None, help="model file (default: the bundled one)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--folds", nargs="+", type=int, default=[4])
    parser.add_argument("--below", type=float, default=1.0, help="SDRi (dB) under which a mixture is a low scorer")
    opts = parser.parse_args()
    separator = Separator(opts.model)
    bank = ClipBank(read_esc50(opts.data, opts.folds), separator.samplerate)
    rows = []
    for case in label_mixtures(bank, 1):
        est = separator.separate_tensor(case.mixture, bank.sample_rate, case.query, residual=False)[case.query]
        est, target, mixture = est.reshape(-1), case.target.reshape(-1), case.mixture.reshape(-1)
        gain = float(np.dot(est, target) / max(np.dot(est, est), 1e-12))  # the oracle: best scale for this output
        base = sdr(mixture, target)
        rows.append((case.name, case.label, sdr(est, target) - base, level_db(est) - level_db(mixture),
                     level_db(est) - level_db(target), sdr(gain * est, target) - base))
    sdri = np.array([r[2] for r in rows])
    print(f"{len(rows)} mixtures: mean SDRi {sdri.mean():.2f} dB, with an oracle gain per mixture "
          f"{np.mean([r[5] for r in rows]):.2f} dB")
    low = sorted((r for r in rows if r[2] < opts.below), key=lambda r: r[2])
    whole = [r for r in low if r[3] > -3.0]
    quiet = [r for r in low if r[3] <= -3.0 and r[4] < -4.0]
    print(f"{len(low)} below {opts.below:g} dB: {len(whole)} within 3 dB of the mixture's level, "
          f"{len(quiet)} of the others more than 4 dB below the target's")
    for name, label, d, vs_mix, vs_target, _ in low:
        print(f"  {name} {label:<22} SDRi {d:6.2f}  output vs mixture {vs_mix:6.1f} dB  vs target {vs_target:6.1f} dB")


if __name__ == "__main__":
    main()
