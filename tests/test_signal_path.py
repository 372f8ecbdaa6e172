"""The STFT, resampling round trip and chunked overlap-add are exact: mask 1 -> input, mask 0 -> silence."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tone_noise
from lass.inference import EngineConfig, input_gain, separate_array
from lass.models.registry import load_model_file
from lass.stft import STFT, STFTConfig


@pytest.mark.parametrize("length", [1, 7, 511, 1024, 16001])
def test_stft_round_trip_is_identity(length):
    stft = STFT(STFTConfig(1024, 256))
    x = torch.randn(2, length)
    assert torch.allclose(stft.inverse(stft(x), length), x, atol=1e-5)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("seconds", [0.0131, 1.7, 23.3])  # under one segment .. many segments, odd lengths
def test_mask_one_and_zero_are_exact(model_dir, rate, channels, seconds):
    x = tone_noise(seconds, rate, channels) + np.float32(0.001)
    conds = torch.zeros(2, 768)
    config = EngineConfig(segment=4.0, overlap=0.25)
    ones = separate_array(load_model_file(model_dir / "ones.safetensors"), conds, x, rate, config)
    zeros = separate_array(load_model_file(model_dir / "zeros.safetensors"), conds, x, rate, config)
    assert ones.shape == zeros.shape == (2, channels, x.shape[1])
    assert np.max(np.abs(ones - x[None])) < 1e-5 * max(1.0, np.abs(x).max())
    assert np.max(np.abs(zeros)) == 0.0


def test_half_mask_halves_at_model_rate(model_dir):
    x = tone_noise(3.0, 16000, 1)
    y = separate_array(load_model_file(model_dir / "half.safetensors"), torch.zeros(1, 768), x, 16000,
                       EngineConfig(segment=1.0, overlap=0.5))
    assert np.allclose(y[0], 0.5 * x, atol=1e-5)


def test_mask_power_applies_at_inference_only(model_dir):
    """A mask of 0.5 at power 0.5 passes sqrt(0.5) of the input; training's forward stays raw."""
    model = load_model_file(model_dir / "half.safetensors")
    model.set_mask_power(0.5)
    x = tone_noise(2.0, 16000, 1)
    y = separate_array(model, torch.zeros(1, 768), x, 16000, EngineConfig(segment=1.0, overlap=0.5))
    assert np.allclose(y[0], np.sqrt(0.5) * x, atol=1e-5)
    raw = model(torch.from_numpy(x), torch.zeros(1, 768))
    assert torch.allclose(raw, 0.5 * torch.from_numpy(x), atol=1e-5)


@pytest.mark.parametrize("power", [0.0, -1.0, float("inf"), float("nan")])
def test_mask_power_must_be_positive_and_finite(power):
    from lass.models.config import ModelConfig
    from lass.models.separator import MaskSeparator

    with pytest.raises(ValueError, match="mask_power"):
        MaskSeparator(ModelConfig(network="constant", mask_power=power))


def separated_whole(model, x: np.ndarray, conds: torch.Tensor) -> np.ndarray:
    """The whole input in one network call, each channel heard at the level the engine gives it."""
    gain = input_gain(np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1)), model.config.input_level_db)
    with torch.inference_mode():
        return model.separate_many(torch.from_numpy(x), conds, torch.from_numpy(gain.astype(np.float32)))[0].numpy()


@pytest.mark.parametrize("name", ["tiny", "tiny-strided", "tiny-band"])
@pytest.mark.parametrize("segment", [2.0, 5.0, 1.01])
def test_chunked_equals_whole_file(model_dir, name, segment):
    """With the automatic context (the network's receptive field) chunking changes nothing (< 1e-4),
    also for a time-strided network, whose frame groups the engine keeps aligned (1.01 s: a segment
    that is not a whole number of groups). The second channel is 40 dB down: each is heard at its own level."""
    model = load_model_file(model_dir / f"{name}.safetensors")
    x = tone_noise(21.3, 16000, 2, seed=3) * np.array([[1.0], [0.01]], np.float32)
    conds = torch.randn(3, 768)
    whole = separated_whole(model, x, conds)
    chunked = separate_array(model, conds, x, 16000, EngineConfig(segment=segment, overlap=0.25))
    for channel in range(2):
        rel = np.max(np.abs(chunked[:, channel] - whole[:, channel])) / np.max(np.abs(whole[:, channel]))
        assert rel < 1e-4


@pytest.mark.parametrize("segment, overlap", [(1.0, 0.6), (1.0, 0.9), (4.0, 0.75), (0.05, 0.5)])
def test_any_overlap_keeps_the_level(model_dir, segment, overlap):
    """Beyond half a segment three or more segments meet (0.05 s at 0.5 rounds to an overlap of two hops out of
    three): the crossfade weights are divided out, so the output is the whole-file one at any overlap."""
    model = load_model_file(model_dir / "tiny.safetensors")
    x = tone_noise(6.3, 16000, 1, seed=5)
    conds = torch.randn(1, 768)
    whole = separated_whole(model, x, conds)
    chunked = separate_array(model, conds, x, 16000, EngineConfig(segment=segment, overlap=overlap))
    assert np.max(np.abs(chunked - whole)) < 1e-4 * np.max(np.abs(whole))


def test_an_empty_upper_band_is_heard_filled(model_dir):
    """Below the input's Nyquist frequency the network hears the spectrum as it is; above it, each frame's empty bins
    at the level of the band's top, 5 dB down; a full-band input is heard as it is."""
    from lass.models.separator import UPPER_BAND_DB

    model = load_model_file(model_dir / "tiny.safetensors")
    x = torch.from_numpy(tone_noise(1.0, 16000, 1)[0])
    spec = model.stft(x)
    spec[..., 250:, :] = 0  # as an 8 kHz input resampled to 16 kHz leaves it
    heard = model.heard(spec, 2.0, band_hz=4000)
    cut = int(512 * 4000 / 8000 * 0.97)
    assert torch.equal(heard[:cut], 2.0 * spec.abs()[:cut])
    top = 2.0 * spec.abs()[cut - cut // 12 : cut].mean(0) * 10 ** (UPPER_BAND_DB / 20)
    assert torch.allclose(heard[250:], top.expand(heard.shape[0] - 250, -1))
    assert torch.equal(model.heard(spec, 2.0), 2.0 * spec.abs())
    assert torch.equal(model.heard(spec, 2.0, band_hz=8000), 2.0 * spec.abs())
    # a model trained on such audio (band_fill false) hears the empty band as it is; true fills as None does
    model.config.band_fill = True
    assert torch.equal(model.heard(spec, 2.0, band_hz=4000), heard)
    model.config.band_fill = False
    assert torch.equal(model.heard(spec, 2.0, band_hz=4000), 2.0 * spec.abs())


def test_level_normalisation_makes_separation_follow_the_input_level(model_dir):
    """The network hears every input at the model's input_level_db and its masks apply to the input as given,
    so an input 40 dB quieter gives the same tracks 40 dB quieter; the network alone hears level."""
    model = load_model_file(model_dir / "tiny.safetensors")
    x = tone_noise(3.0, 16000, 2, seed=1)
    conds = torch.randn(2, 768)
    loud = separate_array(model, conds, x, 16000)
    quiet = separate_array(model, conds, x / 100, 16000)
    assert quiet.shape == loud.shape == (2, 2, x.shape[1])
    assert np.max(np.abs(quiet * 100 - loud)) < 1e-4 * np.max(np.abs(loud))
    model.config.input_level_db = None  # as given: what the network makes of a quiet input differs
    assert np.max(np.abs(separate_array(model, conds, x / 100, 16000) * 100 - loud)) > 1e-2 * np.max(np.abs(loud))
    assert input_gain(0.0, -25.0) == 1.0 and input_gain(0.1, None) == 1.0 and input_gain(float("nan"), -25.0) == 1.0
    assert 20 * np.log10(input_gain(0.01, -25.0) * 0.01) == pytest.approx(-25.0)


def test_each_channel_is_separated_as_it_would_be_alone(model_dir):
    """The level the network hears is set per channel: a channel 40 dB quieter than the other, or a silent one
    beside it, gives the tracks that channel gives as a mono input (a dead microphone, a panned source)."""
    model = load_model_file(model_dir / "tiny.safetensors")
    x = tone_noise(3.0, 16000, 1, seed=5)[0]
    other = tone_noise(3.0, 16000, 1, seed=6)[0]
    conds = torch.randn(2, 768)
    alone = separate_array(model, conds, x[None], 16000)[:, 0]
    for partner in (other * 100, np.zeros_like(x)):
        pair = separate_array(model, conds, np.stack([x, partner]), 16000)
        assert np.max(np.abs(pair[:, 0] - alone)) < 1e-4 * np.max(np.abs(alone))
    quiet = separate_array(model, conds, np.stack([other, x / 100]), 16000)[:, 1]
    assert np.max(np.abs(quiet * 100 - alone)) < 1e-4 * np.max(np.abs(alone))
    assert np.allclose(input_gain(np.array([0.0, 0.01]), -25.0), [1.0, 10 ** (-25 / 20) / 0.01])
    # a channel of rounding residue (denormals) beside a loud one is silence, and one far down is lifted as one
    # 60 dB down, not to full scale (a gain of 1e40 overflowed to inf: NaN tracks, then full scale in files)
    residue = np.zeros_like(x)
    residue[::1600] = 1e-42
    pair = separate_array(model, conds, np.stack([other, residue]), 16000)
    assert np.isfinite(pair).all() and np.max(np.abs(pair[:, 1])) < 1e-30
    assert input_gain(np.array([1e-8, 0.1]), -25.0)[0] == pytest.approx(10 ** (-25 / 20) / 1e-4)  # 60 dB down
    assert list(input_gain(np.array([1e-42, 0.1]), -25.0))[0] == 1.0  # below -200 dBFS: silence, not lifted
    assert separate_array(model, conds, np.zeros((2, 0), np.float32), 16000).shape == (2, 2, 0)


def test_no_context_differs_but_crossfade_keeps_it_close(model_dir):
    """Without context the segment edges do change the result, but the crossfade keeps it close."""
    model = load_model_file(model_dir / "tiny.safetensors")
    x = tone_noise(12.0, 16000, 1, seed=4)
    conds = torch.randn(1, 768)
    whole = separated_whole(model, x, conds)
    chunked = separate_array(model, conds, x, 16000, EngineConfig(segment=2.0, overlap=0.25, context=0.0))
    rel = np.sqrt(np.mean((chunked - whole) ** 2) / np.mean(whole ** 2))
    assert 1e-6 < rel < 0.1


def test_engine_rejects_bad_settings():
    with pytest.raises(ValueError, match="overlap"):
        EngineConfig(overlap=1.0).validate()
    with pytest.raises(ValueError, match="segment"):
        EngineConfig(segment=0).validate()


def _shaped_noise(seconds: float, rate: int, gain_at, seed: int = 0) -> np.ndarray:
    """White noise with the amplitude response gain_at(frequency in Hz)."""
    noise = np.random.default_rng(seed).standard_normal(int(seconds * rate))
    spectrum = np.fft.rfft(noise)
    return np.fft.irfft(spectrum * gain_at(np.fft.rfftfreq(noise.size, 1 / rate)), noise.size)[None].astype(np.float32)


def test_input_survey_finds_where_audio_resampled_up_stops():
    """Audio resampled up from 8 or 11.025 kHz, stored at 16 to 48 kHz: its band is found just below the lower rate's
    Nyquist frequency (lower for a gentle resampler, whose transition starts lower), the same in any blocks, and
    kept through clipped peaks and a click, but not where only one channel or half of the time is band-limited.
    Full-band noise, a tone over a quiet noise floor, noise behind a steep
    analog-style low-pass (48 dB per octave from 2 kHz) and a recording's own roll-off near its Nyquist frequency
    hold no such band."""
    import soxr

    from lass.audio import resample
    from lass.inference import InputSurvey

    for low, stored in ((8000, 16000), (8000, 44100), (11025, 16000), (11025, 48000)):
        x = resample(tone_noise(3.0, low, 2, seed=3) + _shaped_noise(3.0, low, lambda f: 0.02 + 0 * f), low, stored)
        whole = InputSurvey.of([x], stored)
        band = whole.band_hz(8000)
        assert band is not None and 0.9 * low / 2 < band <= low / 2, (low, stored, band)
        pieces = InputSurvey.of([x[:, i : i + 777] for i in range(0, x.shape[1], 777)], stored)
        assert pieces.band_hz(8000) == band
        assert np.allclose(pieces.spectrum_db(), whole.spectrum_db(), atol=1e-6)
        assert pieces.rms == pytest.approx(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))), rel=1e-9)
        assert whole.band_hz(low / 2 * 0.8) is None  # a band at or above the limit asked about is no band
        spoilt = np.clip(x / np.quantile(np.abs(x), 0.998), -1, 1)  # peaks clipped: 0.2 % of the samples
        spoilt[:, x.shape[1] // 2] += 0.5  # and a click
        assert InputSurvey.of([spoilt], stored).band_hz(8000) == pytest.approx(band, rel=0.03)
        gentle = soxr.resample(resample(x, stored, low).T, low, stored, "LQ").T  # a wide transition band
        assert 0.75 * low / 2 < InputSurvey.of([gentle], stored).band_hz(8000) < band
        wide = _shaped_noise(3.0, stored, lambda f: 0.02 + 0 * f)[0]  # full-band audio as loud as the limited
        wide *= np.sqrt(np.mean(x[0].astype(np.float64) ** 2) / np.mean(wide.astype(np.float64) ** 2))
        for partly in (np.stack([x[0], wide]), np.concatenate([x, np.stack([wide, wide])], axis=1)):
            assert InputSurvey.of([partly], stored).band_hz(8000) is None  # one channel, or half the time
    t = np.arange(3 * 16000) / 16000
    tone_over_floor = 0.5 * np.sin(2 * np.pi * 1800 * t) + _shaped_noise(3.0, 16000, lambda f: 1e-4 + 0 * f)
    natural = [_shaped_noise(3.0, 16000, lambda f: 1 + 0 * f),
               tone_over_floor.astype(np.float32),
               _shaped_noise(3.0, 16000, lambda f: 1 / np.sqrt(1 + (f / 2000) ** 16)),
               _shaped_noise(3.0, 16000, lambda f: (f < 7100) + 1e-4)]  # a 16 kHz recording's anti-alias filter
    for x in natural:
        assert InputSurvey.of([x], 16000).band_hz(8000) is None
    silent = InputSurvey.of([np.zeros((1, 5000), np.float32)], 16000)
    assert silent.band_hz(8000) is None and silent.rms == 0.0
    short = resample(tone_noise(0.05, 8000, 1) + _shaped_noise(0.05, 8000, lambda f: 0.02 + 0 * f), 8000, 16000)
    assert 3600 < InputSurvey.of([short], 16000).band_hz(8000) <= 4000  # shorter than one analysis frame
    assert InputSurvey.of([], 16000).band_hz(8000) is None and InputSurvey.of([], 16000).rms == 0.0
