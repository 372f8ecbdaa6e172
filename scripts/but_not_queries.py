"""Queries that say what to leave out ("speech, but not the music"): parsed into a negative query, against the
same text read whole by the text encoder (what lass did before it parsed them), on held-out speech over music.

The four SiSEC 2011 speech recordings no training recipe uses (dev1 female4 and male4, sources 3 and 4) over four
music recordings the recipe does not train on (orchestra, waltz, ragtime, string orchestra), each pair mixed at 0 dB
over its first 10 s by the protocols' mixer (16 mixtures), queried for the speech four ways: "speech"; "speech, but
not the music" as `lass separate` reads it (the query "speech" with the negative query "the music"); "speech" with
`--negative "the music"`; and "speech, but not the music" encoded as one text. Mean and median SDRi against the
speech. Results: docs/benchmarks.md, "Queries that say what to leave out".

    python scripts/but_not_queries.py --data ../shared/data [-m MODEL]
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from lass import Separator
from lass.audio import read_mono
from lass.inference import separate_array
from lass.mixing import mix
from lass.metrics import improvement, sdr
from lass.query import anchor_queries, build_condition

SPEECH = [f"sisec2011/SiSec2011_Speech/dev1_{who}_src_{k}.flac" for who in ("female4", "male4") for k in (3, 4)]
MUSIC = ["sms-tools/orchestra.flac", "librosa-examples/147793__setuniman__sweet-waltz-0i-22mi.ogg",
         "librosa-examples/442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.ogg",
         "librosa-examples/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg"]
RATE = 16000
SECONDS = 10
QUERY, LEFT_OUT = "speech", "the music"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the shared data folder (holds sisec2011/ and the music)")
    parser.add_argument("-m", "--model", default=None, help="a model name or file (default: the bundled model)")
    opts = parser.parse_args()
    data = Path(opts.data)
    separator = Separator(opts.model)
    said = f"{QUERY}, but not {LEFT_OUT}"
    whole = anchor_queries(separator.encoder.encode([said]), separator.model.vocabulary,
                           separator.model.config.query_anchor)  # anchored as Separator.conditions anchors
    read_whole = build_condition(whole, None)  # one text, as before the parsing
    scores: dict[str, list[float]] = {}
    for speech_path, music_path in itertools.product(SPEECH, MUSIC):
        speech, music = read_mono(data / speech_path, RATE), read_mono(data / music_path, RATE)
        n = min(len(speech), len(music), SECONDS * RATE)
        mixture, speech, _ = mix(speech[:n], [music[:n]], 0.0)  # the protocols' mixer: 0 dB, peak protected
        estimates = {
            f'"{QUERY}"': separator.separate_tensor(mixture, RATE, QUERY, residual=False)[QUERY][0],
            f'"{said}"': separator.separate_tensor(mixture, RATE, said, residual=False)[said][0],
            f'"{QUERY}" --negative "{LEFT_OUT}"':
                separator.separate_tensor(mixture, RATE, QUERY, negative=LEFT_OUT, residual=False)[QUERY][0],
            f'"{said}" read whole': separate_array(separator.model, read_whole, mixture[None], RATE,
                                                  separator.engine)[0, 0],
        }
        for name, estimate in estimates.items():
            scores.setdefault(name, []).append(improvement(sdr, estimate, speech, mixture))
    print(f"| query ({len(SPEECH) * len(MUSIC)} mixtures) | SDRi mean | median |\n|---|---|---|")
    for name, values in scores.items():
        print(f"| {name} | {np.mean(values):.2f} dB | {np.median(values):.2f} dB |")


if __name__ == "__main__":
    main()
