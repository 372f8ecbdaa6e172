"""Does a model see the context it was trained with? Separates the validation protocol's 5 s mixtures
whole, then in independent windows of a given length with no context around them (hard cuts, no
overlap), at mask power 0.7. A model trained only on short crops scores better on short windows than
on whole clips; one trained on long crops does the opposite. Results: docs/benchmarks.md, "Short
crops, then long".

    python scripts/context_windows.py -m runs/x/model.safetensors --data ../shared/data/esc50-16k --limit 200
"""
from __future__ import annotations

import argparse

from lass.api import Separator
from lass.evaluation import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", nargs="+", default=[None], help="model files (default: the bundled one)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--folds", nargs="+", default=["4"])
    parser.add_argument("--limit", default="200")
    parser.add_argument("--window", type=float, default=1.0, help="seconds per independent window")
    opts = parser.parse_args()
    protocol = argparse.ArgumentParser()
    run.add_arguments(protocol)
    args = protocol.parse_args(["--data", opts.data, "--folds", *opts.folds, "--limit", opts.limit])
    for model in opts.model:
        for name, segment, context in (("whole", 10.0, None), (f"{opts.window:g} s windows", opts.window, 0.0)):
            separator = Separator(model, segment=segment, overlap=0.0)
            separator.model.set_mask_power(0.7)
            separator.engine.context = context
            for _, _, cases, _ in run._protocols(args, separator.model.sample_rate):
                summary = run.aggregate([run.score_case(separator, case, oracle=False)[0] for case in cases])
                print(f"{model or 'default'} | {name}: SDRi {summary['sdri']:.2f} dB, "
                      f"SI-SDRi {summary['si_sdri']:.2f} dB ({len(cases)} mixtures)", flush=True)


if __name__ == "__main__":
    main()
