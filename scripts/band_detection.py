"""Band limits found in the content: audio resampled up from a lower rate before it reached lass (telephone audio
stored at 16 or 44.1 kHz) is separated through the engine with the band found (`band_hz="auto"`, the default), given
(`band_hz=rate / 2`) and not looked for (`band_hz=None`: the file's rate alone). Also how often a band is found in
mixtures at their own rate, where none should be (docs/benchmarks.md, "Band-limited input").

    python scripts/band_detection.py --data ../shared/data/esc50-16k --limit 120 --seed 0
    python scripts/band_detection.py --list configs/heldout_recordings.csv --data-root ../shared/data
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from band_limited_input import add_case_arguments, read_cases  # this folder's
from lass.api import Separator
from lass.audio import resample
from lass.inference import InputSurvey
from lass.metrics import improvement, sdr, si_sdr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_case_arguments(parser)
    parser.add_argument("--stored-at", type=int, default=16000, help="the rate the band-limited audio is stored at")
    parser.add_argument("--quality", default="HQ", choices=["LQ", "MQ", "HQ", "VHQ"],
                        help="the soxr quality of the resampling up (LQ: a wide transition band)")
    opts = parser.parse_args()
    torch.set_grad_enabled(False)
    sep = Separator()
    model_rate = sep.model.sample_rate
    cases = read_cases(opts, model_rate)
    stored = opts.stored_at

    def played_at(x: np.ndarray, rate: int) -> np.ndarray:
        """x (at the model's rate) as audio of `rate`, stored at `stored`."""
        import soxr

        low = resample(np.atleast_2d(x), model_rate, rate)
        return np.ascontiguousarray(soxr.resample(low.T, rate, stored, opts.quality).T.astype(np.float32))

    for rate in opts.rates:
        mixtures = [played_at(c.mixture, rate) for c in cases]
        targets = [played_at(c.target, rate) for c in cases]
        found = [InputSurvey.of([m], stored).band_hz(model_rate / 2) for m in mixtures]
        bands = [b for b in found if b is not None]
        summary = (f"found in {len(bands)} of {len(cases)}" +
                   (f", {min(bands):.0f}-{max(bands):.0f} Hz" if bands else ""))
        print(f"{rate:6d} Hz content stored at {stored} Hz ({opts.quality}): band {summary}", flush=True)
        ways = {"not looked for (None)": None, "found (auto)": "auto"}
        if rate < model_rate:
            ways["given (rate / 2)"] = rate / 2
        if not bands:
            del ways["found (auto)"]  # the same as None
        for name, band in ways.items():
            sdri, si_sdri = [], []
            for case, mixture, target in zip(cases, mixtures, targets):
                est = sep.separate_tensor(mixture, stored, [case.query], residual=False, band_hz=band)[case.query]
                est, ref, mix = est.reshape(-1), target.reshape(-1), mixture.reshape(-1)
                sdri.append(float(improvement(sdr, est, ref, mix)))
                si_sdri.append(float(improvement(si_sdr, est, ref, mix)))
            print(f"    {name:24s} SDRi {np.mean(sdri):6.2f}   SI-SDRi {np.mean(si_sdri):6.2f}", flush=True)


if __name__ == "__main__":
    main()
