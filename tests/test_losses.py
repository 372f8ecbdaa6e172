"""Training losses against hand-computed values."""
import math

import pytest
import torch

from lass.train.losses import consistency_loss, get_loss, l1_loss, si_sdr_loss, snr_loss

ONE = torch.ones(1)
ZERO = torch.zeros(1)
TAU = 1e-3  # the 30 dB cap: error energy floor relative to the reference


def signals():
    torch.manual_seed(0)
    target = torch.randn(1, 8000)
    mixture = target + torch.randn(1, 8000)
    return target, mixture


def test_snr_loss_values():
    target, mixture = signals()
    assert snr_loss(0.5 * target, target, mixture, ONE).item() == pytest.approx(10 * math.log10(0.25 + TAU), abs=1e-3)
    assert snr_loss(target, target, mixture, ONE, max_snr_db=30).item() == pytest.approx(-30, abs=0.01)
    assert snr_loss(mixture, target, mixture, ONE).item() == pytest.approx(0, abs=0.2)  # 0 dB mixture


def test_si_sdr_loss_ignores_scale_but_not_noise():
    target, mixture = signals()
    assert si_sdr_loss(0.5 * target, target, mixture, ONE).item() == pytest.approx(-30, abs=0.01)
    assert si_sdr_loss(mixture, target, mixture, ONE).item() == pytest.approx(0, abs=0.2)


@pytest.mark.parametrize("loss", [snr_loss, si_sdr_loss])
def test_absent_target_penalises_output_energy(loss):
    target, mixture = signals()
    silent = torch.zeros_like(target)
    assert loss(silent, silent, mixture, ZERO).item() == pytest.approx(-30, abs=0.01)
    assert loss(0.1 * mixture, silent, mixture, ZERO).item() == pytest.approx(10 * math.log10(0.01 + TAU), abs=1e-3)


def test_l1_loss_is_relative_to_the_mixture():
    target, mixture = signals()
    assert l1_loss(target, target, mixture, ONE).item() == pytest.approx(0, abs=1e-6)
    assert l1_loss(target, target, 10 * mixture, ONE).item() == pytest.approx(0, abs=1e-6)
    a = l1_loss(target + 0.1, target, mixture, ONE).item()
    assert a == pytest.approx(0.1 / mixture.abs().mean().item(), rel=1e-4)


def test_unknown_loss_is_named():
    with pytest.raises(ValueError, match="unknown loss 'mse'.*snr"):
        get_loss("mse")


def test_a_loss_mix_is_the_weighted_sum_of_its_parts():
    target, mixture = signals()
    estimate = target + 0.1 * torch.randn_like(target)
    mix = get_loss({"snr": 1.0, "l1": 10.0})(estimate, target, mixture, ONE)
    parts = snr_loss(estimate, target, mixture, ONE) + 10 * l1_loss(estimate, target, mixture, ONE)
    assert mix.item() == pytest.approx(parts.item(), rel=1e-6)
    assert get_loss({"snr": 1.0}) is snr_loss
    with pytest.raises(ValueError, match="unknown loss 'mse'"):
        get_loss({"snr": 1.0, "mse": 1.0})
    with pytest.raises(ValueError, match="weight of 'l1' must be a positive number"):
        get_loss({"snr": 1.0, "l1": 0})
    with pytest.raises(ValueError, match="loss name or a mapping"):
        get_loss({})


def test_consistency_loss_counts_only_mixtures_whose_slots_cover_every_source():
    """Summed estimates against the mixture, in dB, averaged over the examples whose references add up to it."""
    torch.manual_seed(0)
    sources = torch.randn(3, 2, 4000)  # 3 mixtures, 2 query slots each
    mixture = sources.sum(1)
    assert consistency_loss(sources, mixture, sources).item() == pytest.approx(-10, abs=0.01)  # capped
    half = consistency_loss(0.5 * sources, mixture, sources, max_db=30).item()
    assert half == pytest.approx(10 * math.log10(0.25 + TAU), abs=1e-3)
    # the second slot of mixture 0 asks for its first source again: not covered, so its estimates do not count
    references = sources.clone()
    references[0, 1] = sources[0, 0]
    estimates = sources.clone()
    estimates[0] = 0  # would score 0 dB if it counted
    assert consistency_loss(estimates, mixture, references).item() == pytest.approx(-10, abs=0.01)
    references[:, 1] = references[:, 0]  # none covered: no loss, no NaN
    assert consistency_loss(estimates, mixture, references).item() == 0
