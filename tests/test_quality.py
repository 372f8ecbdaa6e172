"""The bundled model on real, held-out audio (ESC-50 fold 4, never trained on). Skips without ../shared/data."""
from __future__ import annotations

import copy
import csv
from pathlib import Path

import numpy as np
import pytest

from conftest import ESC50, needs_shared_data
from lass import Separator
from lass.datasets import ClipBank, read_esc50
from lass.evaluation.protocols import label_mixtures
from lass.metrics import sdr, si_sdr

pytestmark = needs_shared_data(ESC50)


@pytest.fixture(scope="module")
def cases():
    bank = ClipBank(read_esc50(ESC50, [4]), 16000)
    return label_mixtures(bank, interferers=1, snr_db=0.0, seed=7, limit=24)


@pytest.fixture(scope="module")
def separator():
    return Separator(device="cpu")


def test_bundled_model_raises_sdr_on_held_out_mixtures(cases, separator):
    """Measured on these 24 mixtures: SDRi 9.1 dB, SI-SDRi 8.5 dB. Any constant mask gets SI-SDRi 0 dB
    and at most about 3 dB SDRi (mask 0.5 at 0 dB), so the bounds below need real separation."""
    gains, si_gains = [], []
    for case in cases:
        est = separator.separate_tensor(case.mixture, 16000, case.query, residual=False)[case.query][0]
        gains.append(sdr(est, case.target) - sdr(case.mixture, case.target))
        si_gains.append(si_sdr(est, case.target) - si_sdr(case.mixture, case.target))
    assert np.mean(gains) > 5.5, f"mean SDRi {np.mean(gains):.2f} dB"
    assert np.mean(si_gains) > 4.5, f"mean SI-SDRi {np.mean(si_gains):.2f} dB"


def test_band_limited_input_is_separated_too(cases, separator):
    """The same mixtures as telephone-band audio (targets likewise): a file at 8 kHz, and 8 kHz audio resampled up
    and stored at 16 kHz, whose band the engine finds in the content. Measured: SDRi / SI-SDRi 8.70 / 8.19 dB
    (8 kHz file) and 8.73 / 8.31 dB (stored at 16 kHz); the previous default, heard with the upper band empty
    (before it was filled; band_hz=None for the audio stored at 16 kHz), 3.11 / -0.06 and 3.12 / -0.09 dB."""
    from lass.audio import resample

    for stored in (8000, 16000):
        gains, si_gains = [], []
        for case in cases:
            mixture, target = (resample(resample(x, 16000, 8000), 8000, stored) for x in (case.mixture, case.target))
            est = separator.separate_tensor(mixture, stored, case.query, residual=False)[case.query][0]
            gains.append(sdr(est, target) - sdr(mixture, target))
            si_gains.append(si_sdr(est, target) - si_sdr(mixture, target))
        assert np.mean(gains) > 6.0, f"stored at {stored} Hz: mean SDRi {np.mean(gains):.2f} dB"
        assert np.mean(si_gains) > 5.0, f"stored at {stored} Hz: mean SI-SDRi {np.mean(si_gains):.2f} dB"


def test_model_follows_the_query_not_the_loudest_sound(cases, separator):
    """Asking for the interferer's class returns the interferer (measured: 9.0 dB)."""
    gains = []
    for case in cases:
        query = f"the sound of {case.interferer_labels[0]}"
        est = separator.separate_tensor(case.mixture, 16000, query, residual=False)[query][0]
        gains.append(sdr(est, case.interference) - sdr(case.mixture, case.interference))
    assert np.mean(gains) > 4.5, f"mean SDRi on the interferer {np.mean(gains):.2f} dB"


def test_absent_class_returns_little_energy(cases, separator):
    ratios = []
    for case in cases:
        present = {case.label, *case.interferer_labels}
        absent = next(lab for lab in ("church bells", "siren", "crying baby", "rooster", "helicopter")
                      if lab not in present)
        query = f"the sound of {absent}"
        est = separator.separate_tensor(case.mixture, 16000, query, residual=False)[query][0]
        ratios.append(10 * np.log10(np.sum(est**2) / np.sum(case.mixture**2)))
    assert np.mean(ratios) < -8.0, f"absent-class output {np.mean(ratios):.1f} dB re. mixture"  # measured -31.3 (-31.5 before query anchoring)


def test_anchoring_recovers_sounds_asked_in_words_not_trained_on(cases, separator):
    """Each case asked by its class's row of configs/unseen_phrasings.csv ("a puppy yapping"), with the model's
    query anchoring and without (--query-anchor 0). Measured on these 24: SDRi / SI-SDRi 8.38 / 7.68 dB anchored,
    7.58 / 5.91 dB without (with the labels: 9.09 / 8.53)."""
    unseen = Path(__file__).resolve().parent.parent / "configs" / "unseen_phrasings.csv"
    with open(unseen, newline="") as f:
        words = {row["label"]: row["query"] for row in csv.DictReader(f)}
    plain = copy.deepcopy(separator)
    plain.model.set_query_anchor(0.0)
    scores = {}
    for name, model in (("anchored", separator), ("plain", plain)):
        gains = []
        for case in cases:
            query = words[case.label]
            est = model.separate_tensor(case.mixture, 16000, query, residual=False)[query][0]
            gains.append(sdr(est, case.target) - sdr(case.mixture, case.target))
        scores[name] = float(np.mean(gains))
    assert scores["anchored"] > 7.0 and scores["anchored"] > scores["plain"] + 0.4, scores
