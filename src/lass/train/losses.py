"""Waveform losses, chosen by name in the training config (`optim.loss`), alone or as a weighted sum.

The default, `snr`, is what the field reports as SDR, so it is what the model optimises; the
comparison that chose it is in docs/benchmarks.md. Every loss takes the same arguments so they
can be swapped without touching the training loop; for absent targets (the query names a class
not in the mixture) all of them penalise the output's energy relative to the mixture.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..metrics import si_sdr_parts

EPS = 1e-8


def _capped_ratio(error: torch.Tensor, reference: torch.Tensor, tau: float) -> torch.Tensor:
    """-10 log10(|reference|^2 / |error|^2) with a soft cap (Wisdom et al., MixIT): the cap tau keeps
    near-silent or near-perfect examples from dominating the gradient. For an absent target the error is the
    whole estimate and the reference the mixture: the output's energy against the mixture's."""
    r_energy = reference.pow(2).sum(-1)
    return 10 * torch.log10(error.pow(2).sum(-1) + tau * r_energy + EPS) - 10 * torch.log10(r_energy + EPS)


def snr_loss(estimate: torch.Tensor, target: torch.Tensor, mixture: torch.Tensor,
             present: torch.Tensor, max_snr_db: float = 30.0) -> torch.Tensor:
    """Negative SNR, capped at max_snr_db."""
    tau = 10 ** (-max_snr_db / 10)
    present_loss = _capped_ratio(estimate - target, target, tau)
    return torch.where(present > 0.5, present_loss, _capped_ratio(estimate, mixture, tau)).mean()


def si_sdr_loss(estimate: torch.Tensor, target: torch.Tensor, mixture: torch.Tensor,
                present: torch.Tensor, max_snr_db: float = 30.0) -> torch.Tensor:
    """Negative SI-SDR (means removed, target rescaled to the estimate), capped at max_snr_db."""
    tau = 10 ** (-max_snr_db / 10)
    est, projection = si_sdr_parts(estimate, target)
    present_loss = _capped_ratio(est - projection, projection, tau)
    return torch.where(present > 0.5, present_loss, _capped_ratio(estimate, mixture, tau)).mean()


def l1_loss(estimate: torch.Tensor, target: torch.Tensor, mixture: torch.Tensor,
            present: torch.Tensor, max_snr_db: float = 30.0) -> torch.Tensor:
    """Mean absolute waveform error relative to the mixture's mean absolute value (level-free)."""
    scale = mixture.abs().mean(-1) + EPS
    return ((estimate - target).abs().mean(-1) / scale).mean()


CONSISTENCY_MAX_DB = 10.0  # at the 30 dB of the SNR loss, half masks for every query won it (docs/benchmarks.md)


def consistency_loss(estimates: torch.Tensor, mixture: torch.Tensor, references: torch.Tensor,
                     max_db: float = CONSISTENCY_MAX_DB) -> torch.Tensor:
    """Negative SNR of the summed estimates against the mixture, over the examples whose query slots ask for
    every source once (their references sum to the mixture): masks of one mixture's sounds that share its bins,
    rather than each left short where the network is unsure. estimates, references: (batch, slots, samples).
    The low cap keeps it a nudge: any masks that add up to one (0.5 for every query) satisfy it fully."""
    tau = 10 ** (-max_db / 10)
    mix_energy = mixture.pow(2).sum(-1)
    covered = (references.sum(1) - mixture).pow(2).sum(-1) <= 1e-6 * mix_energy
    ratio = _capped_ratio(estimates.sum(1) - mixture, mixture, tau)
    return (ratio * covered).sum() / covered.sum().clamp_min(1)


LOSSES: dict[str, Callable[..., torch.Tensor]] = {"snr": snr_loss, "si_sdr": si_sdr_loss, "l1": l1_loss}


def get_loss(spec: str | dict[str, float]) -> Callable[..., torch.Tensor]:
    """A loss by name ("snr"), or a weighted sum of named losses ({"snr": 1.0, "l1": 10.0})."""
    weights = {spec: 1.0} if isinstance(spec, str) else spec
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"optim.loss must be a loss name or a mapping of names to weights, got {spec!r}")
    for name, weight in weights.items():
        if name not in LOSSES:
            raise ValueError(f"unknown loss '{name}' (known: {', '.join(LOSSES)})")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise ValueError(f"optim.loss: the weight of '{name}' must be a positive number, got {weight!r}")
    if len(weights) == 1 and next(iter(weights.values())) == 1:
        return LOSSES[next(iter(weights))]

    def weighted_sum(*args, **kwargs) -> torch.Tensor:
        return sum(weight * LOSSES[name](*args, **kwargs) for name, weight in weights.items())

    return weighted_sum
