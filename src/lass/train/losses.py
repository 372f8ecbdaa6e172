"""Waveform losses. SNR is what the field reports as SDR, so it is what the model optimises."""
from __future__ import annotations

import torch

EPS = 1e-8


def thresholded_snr_loss(estimate: torch.Tensor, target: torch.Tensor, mixture: torch.Tensor,
                         present: torch.Tensor, max_snr_db: float = 30.0) -> torch.Tensor:
    """Negative SNR with a soft cap (Wisdom et al., MixIT) for present targets; for absent targets
    (the query names a class not in the mixture) the output energy relative to the mixture.

    The cap tau keeps near-silent or near-perfect examples from dominating the gradient.
    """
    tau = 10 ** (-max_snr_db / 10)
    t_energy = target.pow(2).sum(-1)
    m_energy = mixture.pow(2).sum(-1)
    err = (estimate - target).pow(2).sum(-1)
    present_loss = 10 * torch.log10(err + tau * t_energy + EPS) - 10 * torch.log10(t_energy + EPS)
    absent_loss = 10 * torch.log10(estimate.pow(2).sum(-1) + tau * m_energy + EPS) - 10 * torch.log10(m_energy + EPS)
    return torch.where(present > 0.5, present_loss, absent_loss).mean()
