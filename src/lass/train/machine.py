"""Training settings that depend on the machine: the precision `auto` stands for, and whether the network
can be compiled.

`trainer: {precision: auto}`: bf16 where the hardware runs it natively, float32 where it does not.

On a CPU without bf16 instructions torch emulates bf16 matrix products, and a training step of the default
recipe took 2.7x longer than in float32 (4.73 against 1.78 s on 2 cores of an Intel Xeon without AVX512-BF16
or AMX; docs/benchmarks.md, "Training speed"), while on CPUs with them bf16 was 2.1x faster than float32. No one
setting suits both, so the recipe asks for `auto` and this module picks per machine.
"""
from __future__ import annotations

import platform
import subprocess
import sys

AUTO = "auto"
BF16 = "bf16-mixed"
FLOAT32 = "32-true"
# the CPU flags (Linux /proc/cpuinfo) under which bf16 matrix products run natively
NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # x86 AVX512-BF16, x86 AMX, Arm BF16


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of a /proc/cpuinfo text: x86 lists them as 'flags', Arm as 'Features'."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 matrix products in hardware. Unknown counts as no: float32 there gives
    up at most the 2.1x that native bf16 saves, where emulated bf16 costs 2.7x."""
    if cpuinfo is None:
        if platform.system() == "Darwin":
            try:
                found = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True,
                                       text=True, timeout=5)
                return found.stdout.strip() == "1"
            except (OSError, subprocess.SubprocessError):
                return False
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    return bool(cpu_flags(cpuinfo) & NATIVE_BF16_FLAGS)


def is_bf16(precision: object) -> bool:
    return str(precision).startswith("bf16")


def uses_cpu(accelerator: object) -> bool:
    import torch

    return accelerator == "cpu" or (accelerator in (None, "auto") and not torch.cuda.is_available())


def choose_precision(trainer_args: dict, native_bf16: bool | None = None) -> dict:
    """The trainer settings with `precision: auto` made concrete for this machine (one line on stderr says
    which); an explicit bf16 on a CPU without it is kept, with a note that float32 would be faster."""
    precision, accelerator = trainer_args.get("precision"), trainer_args.get("accelerator", "cpu")
    on_cpu = uses_cpu(accelerator)
    if precision != AUTO and not (is_bf16(precision) and on_cpu):
        return trainer_args
    if on_cpu:
        native = cpu_has_native_bf16() if native_bf16 is None else native_bf16
    else:
        import torch

        native = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if precision != AUTO:
        if not native:
            print(f"lass: note: this CPU has no native bf16 (AVX512-BF16, AMX or Arm BF16), so precision "
                  f"{precision} emulates it and trains about 2.7x slower than float32; precision: auto or "
                  f"--set precision=32 picks float32 here", file=sys.stderr, flush=True)
        return trainer_args
    chosen = BF16 if native else FLOAT32
    where = "CPU" if on_cpu else "GPU"
    why = "has native bf16" if native else "has no native bf16, which would be emulated and slow"
    print(f"lass: precision auto -> {chosen} (this {where} {why})", file=sys.stderr, flush=True)
    return {**trainer_args, "precision": chosen}


def cpp_compiler_found() -> bool:
    """torch.compile builds C++ kernels for the CPU (g++, clang++ on macOS, or $CXX); without a compiler the
    first training step fails deep inside inductor, so `optim.compile` is then skipped with a note."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # another torch: let torch.compile decide
        return True
    try:
        get_cpp_compiler()
    except Exception:  # inductor's InvalidCxxCompiler, or a compiler that does not run
        return False
    return True
