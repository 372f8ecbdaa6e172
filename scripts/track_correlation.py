"""How alike are two queries' tracks? The figures behind `lass separate`'s "found the same sound" note (a
correlation above 0.9, `lass.cli.SAME_SOUND`): on the protocol's first fold-4 mixtures, the tracks of the two
sounds in each mixture, and a label's track against its "the sound of" phrasing's (docs/benchmarks.md).

    python scripts/track_correlation.py --data ../shared/data/esc50-16k [--limit 60] [-m MODEL]
"""
from __future__ import annotations

import numpy as np
from fold4 import protocol_mixtures

from lass.cli import SAME_SOUND
from lass.metrics import cosine


def main() -> None:
    separator, cases = protocol_mixtures(__doc__, limit=60)
    two_sounds, phrasings = [], []
    for case in cases:
        other = case.query.replace(case.label, case.interferer_labels[0])
        tracks = separator.separate_tensor(case.mixture[None], case.sample_rate, [case.query, other, case.label],
                                           residual=False)
        two_sounds.append(cosine(tracks[case.query], tracks[other]))
        phrasings.append(cosine(tracks[case.query], tracks[case.label]))
    above = sum(c > SAME_SOUND for c in two_sounds)
    print(f"{len(two_sounds)} mixtures. The two sounds' tracks: median {np.median(two_sounds):.2f}, 95th percentile "
          f"{np.percentile(two_sounds, 95):.2f}, {above} above {SAME_SOUND}. A label's and its 'the sound of' "
          f"phrasing's: lowest {min(phrasings):.2f}, median {np.median(phrasings):.2f}")


if __name__ == "__main__":
    main()
