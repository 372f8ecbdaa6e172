"""`lass bench`: speed and memory, measured, with the AudioSep ResUNet30 architecture as the baseline.

Every figure is measured in the same run: real-time factor (wall time / audio duration, file
reading, resampling, STFT, model, overlap-add and writing included), peak resident memory of a
fresh process separating a long generated stereo 44.1 kHz input, and queries per second when
many queries share one mixture.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..models.separator import channel_gains


class BaselineAdapter(nn.Module):
    """Runs AudioSep's ResUNet30 (random weights) through lass's own engine, so both models pay
    for the same I/O, resampling and chunking."""

    def __init__(self):
        super().__init__()
        from ..models.config import ModelConfig
        from ..models.resunet30 import ResUNet30

        self.net = ResUNet30().eval()
        self.config = ModelConfig(name="audiosep-resunet30 (random weights)", sample_rate=32000, n_fft=2048,
                                  hop_length=320, network="resunet30")
        self.sample_rate = 32000
        self.context_frames = 0
        self.frame_multiple = 1
        self.vocabulary = None  # no training phrasings: its queries go in as the encoder gives them

    def separate_many(self, mixture: torch.Tensor, conds: torch.Tensor,
                      input_gain: float | np.ndarray | torch.Tensor = 1.0,
                      band_hz: float | None = None):
        queries, (channels, length) = conds.shape[0], mixture.shape
        cond = conds[:, :512].repeat_interleave(channels, 0)
        gain = channel_gains(input_gain, channels, mixture).reshape(-1, 1).repeat(queries, 1)
        est = (self.net(mixture.repeat(queries, 1) * gain, cond) / gain).reshape(queries, channels, length)
        return est, torch.ones_like(est)


def _test_signal(seconds: float, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    """Noise bursts and tones: content in every band, deterministic."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    sig = 0.1 * rng.standard_normal((channels, n)).astype(np.float32)
    sig += 0.2 * np.sin(2 * np.pi * 440 * t * (1 + 0.1 * np.sin(2 * np.pi * 0.3 * t))).astype(np.float32)
    return sig * (0.5 + 0.5 * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(np.float32)


def _stats(values: list[float]) -> str:
    return f"min {min(values):.4f} / median {float(np.median(values)):.4f} / max {max(values):.4f}"


def _pace(rtf: float) -> str:
    """A real-time factor in words: "43x faster than real time", "1.7x slower than real time"."""
    if rtf <= 0:
        return "no time measured"
    ratio = 1 / rtf if rtf < 1 else rtf
    return f"{ratio:.{0 if ratio >= 10 else 1}f}x {'faster' if rtf < 1 else 'slower'} than real time"


def time_file(separator, path: str, repeats: int, out_dir: str) -> list[float]:
    """Real-time factors of separating `path` to files, I/O included."""
    from ..api import OutputOptions

    factors = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = separator.separate_to_files(path, ["the sound of a dog barking"], None,
                                             OutputOptions(directory=out_dir, force=True))
        factors.append((time.perf_counter() - started) / result.duration)
    return factors


def _long_input_worker(model: str, minutes: float, segment: float) -> None:
    """Run in a fresh process: separate a generated stereo 44.1 kHz input block by block."""
    from ..api import Separator
    from ..inference import separate_stream

    separator = Separator(model, device="cpu", segment=segment)
    conds = separator.conditions(["the sound of rain"])
    rate, block = 44100, 44100 * 20
    total = int(minutes * 60 * rate)

    def blocks():
        for start in range(0, total, block):
            yield _test_signal(min(block, total - start) / rate, rate, 2, seed=start)

    started = time.perf_counter()
    samples = 0
    with tempfile.TemporaryDirectory() as tmp:
        from ..audio import AtomicWriter

        writer = AtomicWriter(Path(tmp) / "target.wav", rate, 2)
        for _, est in separate_stream(separator.model, conds, blocks(), rate, 2, separator.engine):
            writer.write(est[0])
            samples += est.shape[-1]
        writer.commit()
    elapsed = time.perf_counter() - started
    print(json.dumps({"minutes": minutes, "samples": samples, "expected": total, "seconds": elapsed,
                      "peak_rss_mb": peak_rss_mb()}))


# what precision: auto chooses between is float32+compile (32-true) and bf16+compile (bf16-mixed)
TRAINING_MODES = ("float32", "float32+compile", "bf16", "bf16+compile")


def time_training_steps(config, batch: int, seconds: float, repeats: int,
                        modes: tuple[str, ...] = TRAINING_MODES,
                        after_step: Callable[[], None] | None = None, queries: int = 1) -> dict[str, list[float]]:
    """Seconds per training step (forward, loss, backward, AdamW) of a fresh model with this
    config, in float32 and with bf16 autocast, each eager and compiled (the recipe's `optim.compile: true`
    with `precision: 32-true` or `bf16-mixed`, what `auto` chooses between). `queries` conditions per mixture, as the
    recipe's `mixing.queries_per_mixture` (the query blocks then run on batch x queries rows).
    `after_step` is called after every step, warm-up included (e.g. a profiler's `step`)."""
    from ..models.separator import MaskSeparator
    from ..train.losses import snr_loss
    from ..train.machine import cpp_compiler_found

    if queries < 1:
        raise ValueError(f"queries per mixture must be at least 1, got {queries}")
    generator = torch.Generator().manual_seed(0)
    mixture = 0.1 * torch.randn(batch, int(seconds * config.sample_rate), generator=generator)
    cond = torch.randn(batch * queries, 2 * config.query_dim, generator=generator)
    repeated = mixture.repeat_interleave(queries, dim=0)  # each query's mixture, as training_step passes it
    target, present = 0.5 * repeated, torch.ones(batch * queries)
    results = {}
    unknown = set(modes) - set(TRAINING_MODES)
    if unknown:
        raise ValueError(f"unknown training modes {sorted(unknown)} (known: {', '.join(TRAINING_MODES)})")
    for mode in modes:
        if mode.endswith("compile") and not cpp_compiler_found():
            print(f"training step, {mode}: not timed, no C++ compiler for torch.compile (g++, clang++ or $CXX)",
                  file=sys.stderr)
            continue
        torch.manual_seed(0)
        model = MaskSeparator(config).train()
        if mode.endswith("compile"):
            model.compile_network()
        optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
        times = []
        for i in range(repeats + 2):  # two warm-up steps (compilation happens there)
            started = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode.startswith("bf16")):
                estimate = model(mixture, cond)
            loss = snr_loss(estimate.float(), target, repeated, present)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if i >= 2:
                times.append(time.perf_counter() - started)
            if after_step is not None:
                after_step()
        results[mode] = times
    return results


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    fork and exec, so a child would report its parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # other systems: best effort


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", default=None, help="installed model name or .safetensors path (default: default)")
    p.add_argument("--seconds", type=float, default=30.0, help="input length for the real-time factor (default 30)")
    p.add_argument("--rate", type=int, default=44100, help="input sample rate for the real-time factor (default 44100)")
    p.add_argument("--channels", type=int, default=1, help="input channels for the real-time factor (default 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--segment", type=float, default=10.0, help="seconds per model call (default 10)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per figure (default 3)")
    p.add_argument("--long-minutes", type=float, nargs="*", default=[20.0],
                   help="peak-memory runs on generated stereo 44.1 kHz input (default 20; e.g. 20 60; none: "
                        "--long-minutes alone)")
    p.add_argument("--queries", type=int, nargs="*", default=[1, 4, 16],
                   help="query counts for queries/s (default 1 4 16; none: --queries alone)")
    p.add_argument("--no-baseline", action="store_true", help="skip the AudioSep ResUNet30 baseline")
    p.add_argument("--train-step", type=int, default=None, metavar="BATCH",
                   help="also time training steps (4 s examples) in float32 and bf16, each eager and compiled")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--long-worker", type=float, default=None, help=argparse.SUPPRESS)


def _check_arguments(args) -> None:
    """Counts and lengths that would crash deep inside, or be ignored without a word, are refused up front."""
    positive = {"--seconds": [args.seconds], "--rate": [args.rate], "--channels": [args.channels],
                "--repeats": [args.repeats], "--long-minutes": args.long_minutes or [], "--queries": args.queries or [],
                "--threads": [] if args.threads is None else [args.threads],
                "--train-step": [] if args.train_step is None else [args.train_step]}
    for option, values in positive.items():
        for value in values:
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{option} must be a positive number, got {value:g}")
    from ..api import MIN_SAMPLE_RATE

    if args.rate < MIN_SAMPLE_RATE:  # as a file at that rate is refused (it named the benchmark's temporary file)
        raise ValueError(f"--rate must be at least {MIN_SAMPLE_RATE} Hz, got {args.rate}")
    if int(args.seconds * args.rate) < 1:
        raise ValueError(f"--seconds {args.seconds:g} at --rate {args.rate} is not one sample long")
    if args.json:  # before minutes of measuring, not after
        target = Path(args.json)
        folder = target.parent
        why = ("a folder" if target.is_dir() else f"no writable folder {folder}" if not folder.is_dir() or
               not os.access(folder, os.W_OK) else "a read-only file" if target.exists() and
               not os.access(target, os.W_OK) else None)
        if why:
            raise ValueError(f"--json {args.json}: cannot write a file there ({why})")


def run_from_args(args) -> int:
    if args.long_worker is None:
        _check_arguments(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.long_worker is not None:
        _long_input_worker(args.model or "default", args.long_worker, args.segment)
        return 0
    from ..api import Separator
    from ..audio import write

    figures: dict = {"threads": torch.get_num_threads()}
    separator = Separator(args.model, device="cpu", segment=args.segment)
    cfg = separator.model.config
    params = sum(p.numel() for p in separator.model.parameters())
    print(f"model {cfg.name}: {params / 1e6:.2f} M parameters, {cfg.sample_rate} Hz, "
          f"torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.wav")
        write(path, _test_signal(args.seconds, args.rate, args.channels), args.rate, subtype="float32")
        time_file(separator, path, 1, tmp)  # warm-up
        ours = time_file(separator, path, args.repeats, tmp)
        figures["rtf"] = ours
        print(f"real-time factor, {args.seconds:g} s {args.channels}-ch {args.rate} Hz file, I/O included: "
              f"{_stats(ours)}  ({_pace(float(np.median(ours)))})")
        if not args.no_baseline:  # timed as lass is: one warm-up run, then --repeats
            baseline = Separator(args.model, device="cpu", segment=args.segment)
            baseline.model = BaselineAdapter()
            time_file(baseline, path, 1, tmp)
            base = time_file(baseline, path, args.repeats, tmp)
            figures["baseline_rtf"] = base
            ratio = float(np.median(base)) / float(np.median(ours))
            figures["speedup_vs_audiosep"] = ratio
            base_params = sum(p.numel() for p in baseline.model.parameters())
            print(f"AudioSep ResUNet30 baseline ({base_params / 1e6:.1f} M params, same engine and I/O): "
                  f"{_stats(base)}  -> lass is {ratio if ratio >= 1 else 1 / ratio:.1f}x "
                  f"{'faster' if ratio >= 1 else 'slower'}")

    if args.queries:  # one query is always timed: the throughput of the others is given against it
        mixture = _test_signal(10.0, cfg.sample_rate, 1)
        single = None
        for q in sorted({1, *args.queries}):
            conds = separator.conditions([f"query number {i}" for i in range(q)])
            from ..inference import separate_array

            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                separate_array(separator.model, conds, mixture, cfg.sample_rate, separator.engine)
                times.append(time.perf_counter() - started)
            med = float(np.median(times))
            single = med if q == 1 else single
            figures[f"queries_{q}"] = times
            print(f"{q:>3} quer{'y' if q == 1 else 'ies'} on one 10 s mixture: {_stats(times)} s -> "
                  f"{q / med:.1f} queries/s "
                  f"({q * single / med:.1f}x the throughput of one query at a time)")

    for minutes in args.long_minutes or []:
        cmd = [sys.executable, "-m", "lass", "bench", "--long-worker", str(minutes), "--segment", str(args.segment)]
        if args.model:
            cmd += ["--model", args.model]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"long-input run failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        figures[f"long_{minutes:g}min"] = result
        print(f"{minutes:g} min stereo 44.1 kHz (generated, streamed), lass: peak RSS {result['peak_rss_mb']:.0f} MB, "
              f"{result['seconds']:.0f} s (real-time factor {result['seconds'] / (minutes * 60):.4f}), "
              f"output length {'exact' if result['samples'] == result['expected'] else 'WRONG'}")
    if args.train_step:
        steps = time_training_steps(cfg, args.train_step, 4.0, args.repeats)
        figures["train_step"] = steps
        base = float(np.median(steps["float32"]))
        for mode, times in steps.items():
            print(f"training step, batch {args.train_step} x 4 s, {mode}: {_stats(times)} s "
                  f"({base / float(np.median(times)):.2f}x float32)")
        from ..train.machine import cpu_has_native_bf16

        native = cpu_has_native_bf16()
        print(f"precision: auto trains in {'bf16' if native else 'float32'} here (this CPU "
              f"{'has' if native else 'has no'} native bf16)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0
