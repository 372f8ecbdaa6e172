"""Held-out speech over environmental sounds: 40 mixtures for `lass evaluate --list`.

The four SiSEC 2011 speech recordings that no training recipe uses (dev1 female4 and male4, sources 3 and 4; the
held-out list's speech) are cut into 5 s halves, and each half is paired with five ESC-50 fold-4 clips of five
classes (40 classes in all), mixed at 0 dB by `lass evaluate` and queried as "speech". The held-out list has only
four speech items, over music; this measures the commonest query on more mixtures. Results: docs/benchmarks.md,
"Spoken digits as speech".

    python scripts/speech_mixtures.py --data ../shared/data -o runs/speech_eval
    lass evaluate -m MODEL --list runs/speech_eval/speech_over_esc.csv --data-root ../shared/data
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from lass.audio import read_mono, write

SPEECH = [f"sisec2011/SiSec2011_Speech/dev1_{who}_src_{k}.flac" for who in ("female4", "male4") for k in (3, 4)]
RATE = 16000
HALF_SECONDS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the shared data folder (holds sisec2011/ and esc50-16k/)")
    parser.add_argument("-o", "--out", required=True, help="folder for the speech halves and the list")
    opts = parser.parse_args()
    data, out = Path(opts.data), Path(opts.out)
    (out / "speech").mkdir(parents=True, exist_ok=True)
    with open(data / "esc50-16k" / "meta.csv", newline="") as f:
        fold4 = [row for row in csv.DictReader(f) if row["fold"] == "4"]
    first_clip = {}
    for row in fold4:
        first_clip.setdefault(row["category"], row["filename"])
    classes = sorted(first_clip)
    rows, pick = [], 0
    for s, name in enumerate(SPEECH):
        audio = read_mono(str(data / name), RATE)
        for half in range(2):
            crop = audio[half * HALF_SECONDS * RATE:(half + 1) * HALF_SECONDS * RATE]
            path = (out / "speech" / f"{s}_{half}.wav").resolve()
            write(str(path), crop[None], RATE)
            for _ in range(5):
                label = classes[(pick * 7) % len(classes)]  # steps of 7 over 50 classes: 40 distinct ones
                pick += 1
                rows.append({"caption": "speech", "src_wav": str(path),
                             "noise_wav": f"esc50-16k/audio/{first_clip[label]}"})
    with open(out / "speech_over_esc.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["caption", "src_wav", "noise_wav"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} mixtures listed in {out / 'speech_over_esc.csv'}")


if __name__ == "__main__":
    main()
