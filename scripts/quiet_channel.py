"""Is a quiet channel separated as well as it would be alone? Each fold-4 protocol mixture (mono) becomes a stereo
file whose second channel is the same mixture 20 or 40 dB down (a panned source, a weak microphone); prints the
mean SDRi of that channel against its target, beside the mono figure. Results: docs/benchmarks.md, "Input level".

    python scripts/quiet_channel.py --data ../shared/data/esc50-16k [--limit 40] [-m MODEL]
"""
from __future__ import annotations

import numpy as np
from fold4 import protocol_mixtures

from lass.metrics import improvement, sdr


def main() -> None:
    separator, cases = protocol_mixtures(__doc__, limit=40)
    gains_db = (0.0, -20.0, -40.0)
    improvements: dict[float, list[float]] = {g: [] for g in gains_db}
    for case in cases:
        mixture, target = np.atleast_2d(case.mixture)[0], np.atleast_2d(case.target)[0]
        for gain_db in gains_db:
            gain = 10 ** (gain_db / 20)
            stereo = np.stack([mixture, mixture * gain])
            track = separator.separate_tensor(stereo, case.sample_rate, case.query, residual=False)[case.query]
            improvements[gain_db].append(float(improvement(sdr, track[1] / gain, target, mixture)))
    for gain_db, values in improvements.items():
        print(f"second channel {gain_db:+.0f} dB: SDRi {np.mean(values):.2f} dB (mean of {len(values)})")


if __name__ == "__main__":
    main()
