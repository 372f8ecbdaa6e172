"""Real recordings without references: does a query for a sound that is there take more of the recording than one
for a sound that is not? Separates LASS-Net's 10 published real-world mixtures (`lass-examples/queries.csv`: an
AudioCaps caption and a human description each) with both captions and with queries for absent sounds, and
prints each track's level against the recording (dB). Results: docs/MODEL_CARD.md, "Limitations".

    python scripts/query_levels.py --data ../shared/data/lass-examples [-m MODEL] [--absent "a cat meowing" ...]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lass.api import Separator
from lass.audio import read
from lass.datasets import read_table
from lass.metrics import level_db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder with queries.csv and the mixtures")
    parser.add_argument("-m", "--model", default=None, help="model file (default: the bundled one)")
    parser.add_argument("--absent", nargs="+", default=["a cat meowing", "a vacuum cleaner"],
                        help="queries for sounds none of the recordings holds")
    opts = parser.parse_args()
    rows, _ = read_table(Path(opts.data) / "queries.csv")
    separator = Separator(opts.model)
    levels = []
    print(f"{'file':<12} {'caption':>8} {'human':>8} " + " ".join(f"{q[:12]:>12}" for q in opts.absent))
    for row in rows:
        mixture, rate = read(Path(opts.data) / row["file"])
        queries = [row["audiocaps_caption"], row["human_description"], *opts.absent]
        tracks = separator.separate_tensor(mixture, rate, queries, residual=False)
        energy = float(np.sum(mixture.astype(np.float64) ** 2))
        level = [max(level_db(float(np.sum(tracks[q].astype(np.float64) ** 2)), energy), -99.0) for q in queries]
        levels.append(level)
        print(f"{row['file']:<12} {level[0]:8.1f} {level[1]:8.1f} " + " ".join(f"{v:12.1f}" for v in level[2:]))
    levels = np.array(levels)
    present, absent = levels[:, :2].max(1), levels[:, 2:].max(1)
    print(f"median level: caption {np.median(levels[:, 0]):.1f} dB, human description {np.median(levels[:, 1]):.1f} "
          f"dB, absent {np.median(levels[:, 2:]):.1f} dB; an absent query louder than both captions in "
          f"{int(np.sum(absent > present))} of {len(levels)}")


if __name__ == "__main__":
    main()
