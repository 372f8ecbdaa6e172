"""Seconds per training step of a mask network, as the default recipe runs it: batch 16 x 4 s at
16 kHz, forward + loss + backward + AdamW, bf16 autocast and a compiled network.

    python scripts/train_step_time.py                                         # the default architecture
    python scripts/train_step_time.py --args '{"channels": 512, "hidden": 1024}'
    python scripts/train_step_time.py --network band_split --args '{"band_dim": 48, "hidden": 96}'

`--args` is merged into configs/default.yaml's network_args when the network is the same, so one
change is measured at a time. Architecture pilots compare validation scores at equal steps; this
says what each step costs (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml

from lass.models.config import ModelConfig
from lass.models.separator import MaskSeparator

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="film_tcn")
    parser.add_argument("--args", default="{}", help="network_args as JSON, merged into the default's")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=5, help="timed steps, after 3 warm-up steps")
    parser.add_argument("--no-compile", action="store_true")
    opts = parser.parse_args()

    default = yaml.safe_load(DEFAULT_CONFIG.read_text())["model"]
    network_args = dict(default["network_args"]) if opts.network == default["network"] else {}
    network_args.update(json.loads(opts.args))
    torch.manual_seed(0)
    model = MaskSeparator(ModelConfig(name="timing", network=opts.network, network_args=network_args))
    if not opts.no_compile:
        model.compile_network()
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    mixture = 0.1 * torch.randn(opts.batch, int(opts.seconds * model.sample_rate))
    cond = torch.randn(opts.batch, 2 * model.config.query_dim)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            estimate = model(mixture, cond)
        (estimate - mixture).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(opts.steps):
        step()
    seconds = (time.perf_counter() - start) / opts.steps
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"{opts.network} {json.dumps(network_args)}: {params:.2f} M parameters, {seconds:.3f} s per step "
          f"(batch {opts.batch} x {opts.seconds:g} s)")


if __name__ == "__main__":
    main()
