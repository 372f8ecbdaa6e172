"""Metrics against hand-computed values and the bss_eval library; the mixer's energy and peak rules."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lass.metrics import bss_sdr, sdr, si_sdr
from lass.mixing import energy, mix


def test_sdr_is_plain_snr_by_hand():
    ref = np.array([1.0, -1.0, 1.0, -1.0])
    est = ref + np.array([0.1, 0.0, -0.1, 0.0])
    # |ref|^2 = 4, |err|^2 = 0.02 -> 10 log10(200)
    assert sdr(est, ref) == pytest.approx(10 * np.log10(200))
    assert float(sdr(torch.tensor(est), torch.tensor(ref))) == pytest.approx(10 * np.log10(200), rel=1e-6)


def test_si_sdr_ignores_gain_and_offset_by_hand():
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    noise = np.array([0.5, -0.5, -0.5, 0.5])  # orthogonal to the centred reference
    est = 3.0 * ref + noise + 7.0
    # centred ref = [-1.5, -0.5, 0.5, 1.5] (energy 5); target part 3*ref_c (energy 45); noise energy 1
    assert si_sdr(est, ref) == pytest.approx(10 * np.log10(45.0))
    assert float(si_sdr(torch.tensor(est), torch.tensor(ref))) == pytest.approx(10 * np.log10(45.0), rel=1e-6)
    assert sdr(est, ref) < 0  # plain SNR punishes the gain and offset


def test_bss_sdr_matches_library_and_allows_filtering():
    fast_bss_eval = pytest.importorskip("fast_bss_eval")
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(16000)
    filtered = np.convolve(ref, [0.6, 0.3, 0.1])[:16000]  # a short filter is "allowed distortion"
    est = filtered + 0.01 * rng.standard_normal(16000)
    lib = fast_bss_eval.sdr(ref[None], est[None], filter_length=512, use_cg_iter=None)[0]
    assert bss_sdr(est, ref) == pytest.approx(lib, abs=1e-6)
    assert bss_sdr(est, ref) > 30 > sdr(est, ref)


def test_mix_sets_target_to_interference_ratio_by_energy():
    rng = np.random.default_rng(1)
    target = 0.1 * rng.standard_normal(8000).astype(np.float32)
    a, b = rng.standard_normal(8000).astype(np.float32), 3 * rng.standard_normal(6000).astype(np.float32)
    for snr in (-5.0, 0.0, 7.0):
        mixture, t, noise = mix(target, [a, b], snr)
        assert np.allclose(mixture, t + noise)
        assert 10 * np.log10(energy(t) / energy(noise)) == pytest.approx(snr, abs=1e-3)
        assert mixture.shape == target.shape


def test_mix_peak_protection_scales_everything_together():
    target = np.ones(100, np.float32)
    mixture, t, noise = mix(target, [np.ones(100, np.float32)], 0.0)
    assert np.abs(mixture).max() == pytest.approx(0.9)
    assert np.allclose(mixture, t + noise)
    assert np.allclose(t, 0.45)


def test_cosine_is_scale_free_and_zero_for_silence():
    from lass.evaluation.protocols import ALONE
    from lass.metrics import cosine

    x = np.random.default_rng(0).standard_normal(1000)
    y = np.random.default_rng(1).standard_normal(1000)
    assert cosine(x, 3 * x) == pytest.approx(1.0) and cosine(x, -0.5 * x) == pytest.approx(-1.0)
    assert abs(cosine(x, y)) < 0.1 and cosine(x, np.zeros(1000)) == 0.0
    assert cosine(x + 1e-4 * y, x) ** 2 > ALONE  # 80 dB of x to the rest: "nothing but the target"
    assert cosine(x + 1e-2 * y, x) ** 2 < ALONE  # 40 dB: a mixture to score
