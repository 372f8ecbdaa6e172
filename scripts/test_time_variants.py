"""Inference-side variants of one trained model on the validation protocol's mixtures: does anything
beyond one pass with the user's query help? Each 5 s mixture is separated whole (no chunking).

    python scripts/test_time_variants.py --data ../shared/data/esc50-16k --folds 4 --limit 200

Variants: the shipped mask power against raw masks; a second pass on the first estimate (masks
multiplied, with exponents); a generic negative query; the input scaled by a fixed gain or
normalised to a fixed RMS level (the mask is applied to the unscaled mixture, so only what the
network sees changes); phases made consistent by MISI iterations instead of the mixture's phase. With
`--ensemble OTHER.safetensors ...`: the masks of other models (same STFT) averaged with this one's, and
the model whose weights are the average of all of them (for checkpoints of one run), instead of the
other variants. With `--speeds 0.9 1.1 ...`: the mixture also played at those speeds (resampled, so
pitch moves too, as in training's augmentation), separated, brought back to its length and averaged
with the one pass, instead of the other variants. With `--gains -30 -20 10 ...`: only the input scaled by
those gains, and normalised to -25 dB RMS (how level-sensitive the network is). Results: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from lass.api import Separator
from lass.audio import resample
from lass.datasets import ClipBank, read_dataset
from lass.evaluation.protocols import label_mixtures
from lass.metrics import sdr, si_sdr


def report_ensembles(paths: list[str], model, masks, mixture: torch.Tensor, conds: torch.Tensor,
                     first: torch.Tensor, report) -> None:
    """Average this model's masks with other models' masks, and (same architecture) their weights."""
    others = [Separator(path).model for path in paths]
    total = first
    for other in others:
        if (other.config.n_fft, other.config.hop_length) != (model.config.n_fft, model.config.hop_length):
            raise SystemExit(f"--ensemble: {other.config.name} has another STFT; its masks cannot be averaged")
        total = total + masks(mixture, conds, other.network).pow(other.config.mask_power)
    report(f"masks of {1 + len(others)} models averaged", total / (1 + len(others)))
    states = [model.state_dict()] + [other.state_dict() for other in others]
    if all(state.keys() == states[0].keys() for state in states):
        model.load_state_dict({key: sum(state[key].float() for state in states) / len(states) for key in states[0]})
        report(f"weights of {len(states)} models averaged", masks(mixture, conds).pow(model.config.mask_power))


def report_speeds(speeds: list[float], separate, mixture: torch.Tensor, first: torch.Tensor, report) -> None:
    """Each speed's pass alone, then all of them averaged with the one pass (waveforms: their frames differ)."""
    rate = 16000  # any rate: only the ratio matters
    wavs = mixture.numpy()
    estimates = [first]
    for speed in speeds:
        played = int(round(rate * speed))  # the rate the mixture is taken to have, played back at `rate`
        fast = resample(wavs, played, rate)
        back = resample(separate(torch.from_numpy(fast)).numpy(), rate, played)
        back = np.pad(back, ((0, 0), (0, max(0, wavs.shape[-1] - back.shape[-1]))))[:, : wavs.shape[-1]]
        estimates.append(torch.from_numpy(np.ascontiguousarray(back, dtype=np.float32)))
        report(f"speed {speed:g} alone", None, estimates[-1])
    report(f"speeds 1, {', '.join(f'{v:g}' for v in speeds)} averaged", None, sum(estimates) / len(estimates))


def misi(model, mixture: torch.Tensor, spec: torch.Tensor, mask: torch.Tensor, iterations: int) -> torch.Tensor:
    """Multiple input spectrogram inversion for target and residual: keep each one's masked magnitude,
    take the phase of its re-analysed waveform, and share the mixture's error between the two."""
    magnitudes = (mask * spec.abs(), (1 - mask).clamp_min(0) * spec.abs())
    specs = (spec * mask, spec * (1 - mask))

    def waveforms(specs) -> list[torch.Tensor]:
        waves = [model.stft.inverse(s, mixture.shape[-1]) for s in specs]
        error = (mixture - waves[0] - waves[1]) / 2
        return [w + error for w in waves]

    for _ in range(iterations):
        specs = [m * torch.exp(1j * torch.angle(model.stft(w))) for m, w in zip(magnitudes, waveforms(specs))]
    return waveforms(specs)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--folds", type=int, nargs="+", default=[4])
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("-m", "--model", default=None)
    parser.add_argument("--ensemble", nargs="+", default=[], metavar="MODEL", help="other models to average with")
    parser.add_argument("--speeds", nargs="+", type=float, default=[], metavar="SPEED",
                        help="also separate the mixture played at these speeds and average")
    parser.add_argument("--gains", nargs="+", type=float, default=[], metavar="DB",
                        help="only the input scaled by these gains (dB), and normalised to -25 dB RMS")
    opts = parser.parse_args()
    torch.set_grad_enabled(False)

    separator = Separator(opts.model)
    model = separator.model
    power = model.config.mask_power
    bank = ClipBank(read_dataset({"type": "esc50", "path": opts.data, "folds": opts.folds}), model.sample_rate)
    cases = label_mixtures(bank, 1, limit=opts.limit)
    mixture = torch.from_numpy(np.stack([c.mixture for c in cases]))
    target = torch.from_numpy(np.stack([c.target for c in cases]))
    queries = [c.query for c in cases]
    spec = model.stft(mixture)
    sdr0, si0 = sdr(mixture, target), si_sdr(mixture, target)

    def masks(wav: torch.Tensor, conds: torch.Tensor, network=None, batch: int = 25) -> torch.Tensor:
        network = model.network if network is None else network
        return torch.cat([network(model.stft(wav[i : i + batch]).abs(), conds[i : i + batch])
                          for i in range(0, len(wav), batch)])

    def report(name: str, mask: torch.Tensor, estimate: torch.Tensor | None = None) -> None:
        if estimate is None:
            estimate = model.stft.inverse(spec * mask, mixture.shape[-1])
        print(f"{name:34s} SDRi {float((sdr(estimate, target) - sdr0).mean()):6.2f}   "
              f"SI-SDRi {float((si_sdr(estimate, target) - si0).mean()):6.2f}", flush=True)

    def conditions(negative: str | None = None) -> torch.Tensor:
        """One condition per mixture; the API refuses a repeated query, and labels repeat across mixtures."""
        unique = sorted(set(queries))
        table = separator.conditions(unique, negative)
        return table[[unique.index(q) for q in queries]]

    conds = conditions()
    first = masks(mixture, conds)
    report(f"one pass, mask power {power:g} (shipped)", first.pow(power))
    report("one pass, mask power 1 (raw)", first)
    if opts.ensemble:
        return report_ensembles(opts.ensemble, model, masks, mixture, conds, first.pow(power), report)
    if opts.gains:  # how level-sensitive the network is, against input normalised to one level
        rms = mixture.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-8)
        for gain_db in opts.gains:
            report(f"input gain {gain_db:+g} dB", masks(mixture * 10 ** (gain_db / 20), conds).pow(power))
        report("input normalised to -25 dB RMS", masks(mixture / rms * 10 ** (-25 / 20), conds).pow(power))
        return None
    if opts.speeds:
        def separate(wav: torch.Tensor) -> torch.Tensor:
            return model.stft.inverse(model.stft(wav) * masks(wav, conds).pow(power), wav.shape[-1])

        return report_speeds(opts.speeds, separate, mixture, model.stft.inverse(spec * first.pow(power),
                                                                               mixture.shape[-1]), report)
    for iterations in [1, 3]:
        report(f"MISI phases, {iterations} iteration{'s' * (iterations > 1)}", first,
               misi(model, mixture, spec, first.pow(power), iterations))
    second = masks(model.stft.inverse(spec * first.pow(power), mixture.shape[-1]), conds)
    for a, b in [(1.0, 1.0), (power, 0.3), (power, 0.5), (power, power)]:
        report(f"two passes, powers {a:g} and {b:g}", first.pow(a) * second.pow(b))
    for negative in ["background noise", "noise", "other sounds"]:
        report(f"negative query '{negative}'", masks(mixture, conditions(negative)).pow(power))
    for gain_db in [-10, -5, 5, 10]:
        report(f"input gain {gain_db:+d} dB", masks(mixture * 10 ** (gain_db / 20), conds).pow(power))
    rms = mixture.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-8)
    for level_db in [-30, -25, -20, -15]:
        report(f"input normalised to {level_db} dB RMS", masks(mixture / rms * 10 ** (level_db / 20), conds).pow(power))


if __name__ == "__main__":
    main()
