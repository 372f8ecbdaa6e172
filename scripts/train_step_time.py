"""Seconds per training step of a mask network, as the default recipe runs it: batch 16 x 4 s at
16 kHz with 2 queries per mixture, forward + loss + backward + AdamW, bf16 autocast and a compiled network.

    python scripts/train_step_time.py                                         # the default architecture
    python scripts/train_step_time.py --args '{"channels": 512, "hidden": 1024}'
    python scripts/train_step_time.py --network band_split --args '{"band_dim": 48, "hidden": 96}'
    python scripts/train_step_time.py --profile                                # where a step's time goes
    python scripts/train_step_time.py --batch 64 --seconds 1                   # the 1 s phase

`--args` is merged into configs/default.yaml's network_args when the network is the same, so one
change is measured at a time; `--queries` defaults to its `mixing.queries_per_mixture` (the query blocks
run once per query, so 2 queries cost about 1.5x one on film_tcn). Architecture pilots compare validation
scores at equal steps; this says what each step costs (docs/benchmarks.md). The timing is `lass bench
--train-step`'s (which asks one query per mixture), for an architecture that has no model file yet.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import yaml

from lass.evaluation.bench import time_training_steps
from lass.models.config import ModelConfig
from lass.models.separator import MaskSeparator

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="film_tcn")
    parser.add_argument("--args", default="{}", help="network_args as JSON, merged into the default's")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps, after 2 warm-up steps")
    parser.add_argument("--queries", type=int, default=None,
                        help="conditions per mixture (default: configs/default.yaml's mixing.queries_per_mixture)")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler's table of the timed steps")
    opts = parser.parse_args()

    recipe = yaml.safe_load(DEFAULT_CONFIG.read_text())
    default = recipe["model"]
    queries = int(recipe["data"]["mixing"].get("queries_per_mixture", 1)) if opts.queries is None else opts.queries
    if queries < 1:
        parser.error(f"--queries must be at least 1, got {queries}")
    network_args = dict(default["network_args"]) if opts.network == default["network"] else {}
    network_args.update(json.loads(opts.args))
    config = ModelConfig(name="timing", network=opts.network, network_args=network_args)
    if opts.profile:  # the timed steps only: the two warm-up steps (compilation) are skipped
        from torch.profiler import ProfilerActivity, profile, schedule

        with profile(activities=[ProfilerActivity.CPU], schedule=schedule(wait=2, warmup=0, active=opts.repeats)) as prof:
            times = time_training_steps(config, opts.batch, opts.seconds, opts.repeats, ("bf16+compile",), prof.step,
                                        queries)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    else:
        times = time_training_steps(config, opts.batch, opts.seconds, opts.repeats, ("bf16+compile",),
                                    queries=queries)
    params = sum(p.numel() for p in MaskSeparator(config).parameters()) / 1e6
    print(f"{opts.network} {json.dumps(network_args)}: {params:.2f} M parameters, "
          f"{statistics.median(times['bf16+compile']):.3f} s per step (median of {opts.repeats}; "
          f"batch {opts.batch} x {opts.seconds:g} s, {queries} quer{'y' if queries == 1 else 'ies'} per mixture, "
          f"bf16 + compile)")


if __name__ == "__main__":
    main()
