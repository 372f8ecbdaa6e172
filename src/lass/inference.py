"""The inference engine: streaming, chunked, crossfaded separation of any length and sample rate.

Used by the CLI, the Python API, evaluation and the benchmarks, so there is one place where audio
is cut into segments and put back together. Data flows one way:

    input blocks (file rate) -> resample to model rate -> segments with context -> model
    -> crossfaded overlap-add -> resample back -> + high band x gain -> output blocks (file rate)

Memory is bounded by the segment and block sizes, never by the file length.

Exactness (tested): with a mask of 1 the targets equal the input and with a mask of 0 they are
silent, to float precision, at any sample rate. Content above the model's Nyquist frequency (the
difference between the input and its resampling round trip) is passed to a target scaled by the
mask of the model's top bins, so that it is neither lost nor duplicated. When each segment has at
least the network's receptive field as context, chunked output equals whole-file output (not for a
FiLM-TCN with `query_pool` or `attention_after`, which read the whole segment).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from .models.separator import MaskSeparator


MAX_SEGMENT = 3600  # seconds


@dataclass
class EngineConfig:
    segment: float = 10.0  # seconds of output per model call
    overlap: float = 0.25  # fraction of a segment crossfaded with its neighbour
    context: float | None = None  # seconds of extra input on each side; None = the network's receptive field
    device: str = "cpu"

    def validate(self) -> None:
        for name in ("segment", "overlap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{name} (--{name}) must be a number, got {value!r}")
        if not 0 < self.segment <= MAX_SEGMENT:  # a segment is held whole in memory, with the network's activations
            raise ValueError(f"segment (--segment) must be more than 0 and at most {MAX_SEGMENT} seconds, got "
                             f"{self.segment}")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap (--overlap) must be in [0, 1), got {self.overlap}")
        if self.context is not None and self.context < 0:
            raise ValueError(f"context must be >= 0, got {self.context}")


class Fifo:
    """A growing (channels, samples) buffer addressed by absolute sample positions."""

    def __init__(self, channels: int):
        self.data = np.zeros((channels, 0), dtype=np.float32)
        self.start = 0  # absolute position of data[:, 0]

    @property
    def end(self) -> int:
        return self.start + self.data.shape[1]

    def push(self, block: np.ndarray) -> None:
        self.data = np.concatenate([self.data, block.astype(np.float32, copy=False)], axis=1)

    def read(self, begin: int, stop: int) -> np.ndarray:
        """Samples [begin, stop), zeros where the buffer has nothing."""
        out = np.zeros((self.data.shape[0], max(0, stop - begin)), dtype=np.float32)
        lo, hi = max(begin, self.start), min(stop, self.end)
        if hi > lo:
            out[:, lo - begin : hi - begin] = self.data[:, lo - self.start : hi - self.start]
        return out

    def drop_before(self, position: int) -> None:
        if position > self.start:
            cut = min(position, self.end) - self.start
            self.data = self.data[:, cut:]
            self.start += cut


class Resampler:
    """Streaming soxr resampler (chunk-invariant: same output as resampling the whole signal)."""

    def __init__(self, rate_in: int, rate_out: int, channels: int):
        self.stream = None
        if rate_in != rate_out:
            import soxr

            self.stream = soxr.ResampleStream(rate_in, rate_out, channels, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self.stream is None:
            return block
        out = self.stream.resample_chunk(np.ascontiguousarray(block.T), last=last)
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, block.shape[0]).T)


def crossfade(length: int, fade_in: int, fade_out: int) -> np.ndarray:
    """Raised-cosine fades; a fade-out and the next segment's fade-in sum to one."""
    w = np.ones(length, dtype=np.float64)
    if fade_in:
        t = (np.arange(fade_in) + 0.5) / fade_in
        w[:fade_in] = np.sin(0.5 * np.pi * t) ** 2
    if fade_out:
        t = (np.arange(fade_out) + 0.5) / fade_out
        w[length - fade_out :] = np.cos(0.5 * np.pi * t) ** 2
    return w.astype(np.float32)


class ChunkedSeparator:
    """Overlap-add over segments at the model's rate, consuming and producing blocks in order."""

    def __init__(self, model: MaskSeparator, conds: torch.Tensor, channels: int, config: EngineConfig,
                 level_gain: float | np.ndarray = 1.0, band_hz: float | None = None):
        config.validate()
        self.model = model
        self.level_gain = level_gain  # one for all channels or one per channel: MaskSeparator.separate_many
        self.band_hz = band_hz  # the input's own Nyquist frequency, where it is below the model's
        self.conds = conds
        self.queries = conds.shape[0]
        self.channels = channels
        hop = model.config.hop_length
        rate = model.sample_rate
        # segment, step and context are whole multiples of `unit` (STFT hops, times the network's
        # frame grouping) so every chunk's frames and frame groups line up with the whole file's
        unit = hop * model.frame_multiple
        self.segment = max(unit, int(round(config.segment * rate / unit)) * unit)
        self.overlap = int(round(config.overlap * self.segment / unit)) * unit
        self.overlap = min(self.overlap, self.segment - unit)
        self.step = self.segment - self.overlap
        if config.context is None:
            context = model.context_frames * hop + model.config.n_fft
        else:
            context = int(round(config.context * rate))
        self.context = int(math.ceil(context / unit)) * unit
        self.device = torch.device(config.device)
        self.input = Fifo(channels)
        self.est = Fifo(self.queries * channels)
        self.high_band_gain = Fifo(self.queries * channels)
        # the crossfade weights laid down so far: neighbours' fades sum to one while the overlap is at most half
        # a segment; beyond that three or more segments meet, and dividing by the sum keeps the level
        self.weight = Fifo(1)
        self.next_chunk = 0  # index k of the next segment, centred region [k*step, k*step + segment)
        self.emitted = 0
        self.total: int | None = None

    def push(self, block: np.ndarray, last: bool) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Feed model-rate mixture; yield finished (mixture, estimates, gains) blocks."""
        self.input.push(block)
        if last:
            self.total = self.input.end
        while True:
            begin = self.next_chunk * self.step
            need = begin + self.segment + self.context
            if self.total is None and self.input.end < need:
                return
            if self.total is not None and begin >= self.total:
                break
            self._process(begin)
            self.next_chunk += 1
            final = min(begin + self.step, self.total) if self._is_last(begin) else begin + self.step
            yield self._emit(final)
            if self._is_last(begin):
                break
        if self.total is not None and self.emitted < self.total:
            yield self._emit(self.total)

    def _is_last(self, begin: int) -> bool:
        return self.total is not None and begin + self.segment >= self.total

    def _process(self, begin: int) -> None:
        end_limit = self.total if self.total is not None else self.input.end
        lo = max(0, begin - self.context)
        hi = min(end_limit, begin + self.segment + self.context)
        chunk = self.input.read(lo, hi)
        if chunk.shape[1] == 0:  # under one sample at the model's rate: nothing to separate
            est = high = np.zeros((self.queries * self.channels, 0), np.float32)
        else:
            with torch.inference_mode():
                x = torch.from_numpy(chunk).to(self.device)
                est, high = self.model.separate_many(x, self.conds, self.level_gain, self.band_hz)
            est = est.reshape(self.queries * self.channels, -1).float().cpu().numpy()
            high = high.reshape(self.queries * self.channels, -1).float().cpu().numpy()
        stop = min(begin + self.segment, end_limit)
        central = slice(begin - lo, stop - lo)
        fade_in = self.overlap if begin > 0 else 0
        fade_out = 0 if self._is_last(begin) else self.overlap
        weight = crossfade(self.segment, fade_in, fade_out)[: stop - begin]
        ones = np.ones((1, hi - lo), np.float32)
        for fifo, values in ((self.est, est), (self.high_band_gain, high), (self.weight, ones)):
            if fifo.end < stop:
                fifo.push(np.zeros((fifo.data.shape[0], stop - fifo.end), dtype=np.float32))
            offset = begin - fifo.start
            fifo.data[:, offset : offset + stop - begin] += values[:, central] * weight

    def _emit(self, final: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        start = self.emitted
        weight = self.weight.read(start, final)
        weight = np.where(weight > 0, weight, 1.0)  # no segment covers a sample only when nothing is left to cover
        out = (self.input.read(start, final), self.est.read(start, final) / weight,
               self.high_band_gain.read(start, final) / weight)
        self.emitted = final
        for fifo in (self.est, self.high_band_gain, self.weight):
            fifo.drop_before(final)
        self.input.drop_before(final - self.context)
        return out


class LinearInterpolator:
    """Streams a model-rate signal to another rate by linear interpolation (no ringing, exact on
    constants), used for the high-band gain."""

    def __init__(self, rate_in: int, rate_out: int, channels: int):
        self.ratio = rate_in / rate_out
        self.fifo = Fifo(channels)
        self.produced = 0

    def push(self, block: np.ndarray) -> None:
        self.fifo.push(block)

    def pull(self, count: int, final: bool = False) -> np.ndarray:
        """Up to `count` output samples (all of them if `final`)."""
        if not final:
            available = int(math.floor((self.fifo.end - 1) / self.ratio)) + 1 - self.produced
            count = max(0, min(count, available - 1))
        positions = (self.produced + np.arange(count)) * self.ratio
        lo = np.floor(positions).astype(np.int64)
        frac = (positions - lo).astype(np.float32)
        last = self.fifo.end - 1
        lo_c = np.clip(lo, self.fifo.start, max(last, self.fifo.start))
        hi_c = np.clip(lo + 1, self.fifo.start, max(last, self.fifo.start))
        data = self.fifo.data
        if data.shape[1] == 0:
            out = np.zeros((data.shape[0], count), dtype=np.float32)
        else:
            out = data[:, lo_c - self.fifo.start] * (1 - frac) + data[:, hi_c - self.fifo.start] * frac
        self.produced += count
        if count:
            self.fifo.drop_before(int(lo[-1]))
        return out.astype(np.float32)


class InputSurvey:
    """A first pass over an input, in blocks (a whole file in bounded memory): each channel's RMS (the level the
    network hears it at, `input_gain`) and the long-term spectrum, from which `band_hz` tells audio that was
    resampled up from a lower rate (telephone audio stored at 44.1 kHz).

    The long-term spectrum is the mean of the frames' log power spectra, each frame weighted by its energy:
    loud frames count most (a quiet frame's rounding noise does not fill a stop band), silent ones not at all,
    and a click or a few clipped samples move it by little, where they would fill a plain mean's stop band. The
    plain mean must still show the stop band, less deeply (PLAIN_GAP_DB), so that audio only partly band-limited
    (one channel full-band, or half of the time) is not taken for band-limited."""

    # docs/benchmarks.md, "Band-limited input": the gap between the band's quiet floor and everything above it,
    # over natural recordings and over audio resampled up from 8 and 11.025 kHz
    FLOOR_GAP_DB = 35.0
    EDGE_DB = 20.0
    # the plain mean power must show the stop band too, less deeply: audio only partly band-limited (one channel
    # full-band, or half of the time) leaves 5-8 dB there, a click 30 dB and clipped peaks 20-24 dB
    PLAIN_GAP_DB = 15.0
    FRAMES_PER_FFT = 128  # bounded memory for any block

    def __init__(self, rate: int):
        self.rate = rate
        self.size = 1 << max(4, math.ceil(math.log2(rate / 16)))  # bins of at most 16 Hz
        self.window = np.hanning(self.size).astype(np.float32)
        self.log_power = np.zeros(self.size // 2 + 1)  # sum over frames of energy * log10(power)
        self.power = np.zeros(self.size // 2 + 1)  # sum over frames of power
        self.weight = 0.0  # sum of the frames' energies
        self.energy: np.ndarray | None = None  # each channel's sum of squares
        self.count = 0  # samples per channel
        self.tail: np.ndarray | None = None  # samples not yet in a whole frame

    @classmethod
    def of(cls, blocks: Iterable[np.ndarray], rate: int) -> "InputSurvey":
        survey = cls(rate)
        for block in blocks:
            survey.push(block)
        return survey

    def push(self, block: np.ndarray) -> None:
        """One (channels, n) block, in order."""
        block = np.asarray(block, dtype=np.float32)
        if self.energy is None:
            self.energy = np.zeros(block.shape[0])
        for first in range(0, block.shape[-1], 1 << 18):  # float64 sums in bounded pieces
            self.energy += np.square(block[:, first : first + (1 << 18)], dtype=np.float64).sum(-1)
        self.count += block.shape[-1]
        data = block if self.tail is None else np.concatenate([self.tail, block], axis=1)
        hop = self.size // 2  # Hann windows at half overlap weigh every sample alike
        frames = max(0, (data.shape[1] - self.size) // hop + 1)
        if frames:
            framed = np.lib.stride_tricks.sliding_window_view(data, self.size, axis=1)[:, : frames * hop : hop]
            for first in range(0, frames, self.FRAMES_PER_FFT):
                self._add(framed[:, first : first + self.FRAMES_PER_FFT] * self.window)
        self.tail = data[:, frames * hop :]

    def _add(self, windowed: np.ndarray) -> None:
        log_power, power, weight = self._sums(windowed)
        self.log_power += log_power
        self.power += power
        self.weight += weight

    @staticmethod
    def _sums(windowed: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Windowed frames (channels, frames, size) -> their energy-weighted log power, power and energy."""
        with np.errstate(over="ignore", invalid="ignore"):  # absurd sample values (1e30) make no band, not noise
            power = np.square(np.abs(np.fft.rfft(windowed, axis=-1)), dtype=np.float64)
            energy = power.sum(-1, keepdims=True)
            return (energy * np.log10(power + 1e-30)).sum(axis=(0, 1)), power.sum(axis=(0, 1)), float(energy.sum())

    @property
    def rms(self) -> float:
        """Over all samples and channels: the input's level, against which tracks' levels are reported."""
        return math.sqrt(self.energy.sum() / (self.count * self.energy.size)) if self.count else 0.0

    @property
    def channel_rms(self) -> np.ndarray:
        """Each channel's RMS: the engine brings each channel to the network's level on its own, so that a quiet
        channel (a dead microphone, a panned source) is separated as it would be alone. Empty before any sample
        (any gain then means 1)."""
        if not self.count:
            return np.zeros(0 if self.energy is None else self.energy.size)
        return np.sqrt(self.energy / self.count)

    def spectrum_db(self, plain: bool = False) -> np.ndarray | None:
        """The long-term spectrum (dB, `size // 2 + 1` bins), or with `plain` the mean power's; None for silence."""
        log_power, power, weight = self.log_power, self.power, self.weight
        if weight == 0 and self.tail is not None and self.tail.shape[1]:  # shorter than one frame
            n = self.tail.shape[1]
            frame = np.zeros((self.tail.shape[0], 1, self.size), np.float32)
            frame[:, 0, :n] = self.tail * np.hanning(n + 2)[1:-1].astype(np.float32)  # a window over what is there
            log_power, power, weight = self._sums(frame)
        if not weight > 0 or not math.isfinite(weight):
            return None
        return 10 * np.log10(power + 1e-30) if plain else 10 * log_power / weight

    def band_hz(self, limit_hz: float) -> float | None:
        """The frequency below `limit_hz` (the model's Nyquist) where the input's content ends, where it ends in a
        stop band: everything above, in the mean, at least FLOOR_GAP_DB below the quietest tenth of the band
        below (a resampler's stop band). A natural sound that fades out leaves its recording's noise floor on
        both sides and is not taken for one, nor is a recording's own anti-alias roll-off near its Nyquist
        frequency (the search ends at 85 % of it). None where nothing is found."""
        level, plain = self.spectrum_db(), self.spectrum_db(plain=True)
        if level is None:
            return None
        hz = self.rate / self.size
        top = int(min(limit_hz, self.rate / 2) / hz)

        def gap(level: np.ndarray, stop: int, above: np.ndarray) -> float:
            return np.percentile(level[stop // 4 : int(0.9 * stop)], 10) - 10 * math.log10(above[stop] + 1e-30)

        mean_above = lambda level: np.cumsum(10 ** (level[:top][::-1] / 10))[::-1] / np.arange(top, 0, -1)  # noqa: E731
        above, plain_above = mean_above(level), mean_above(plain)  # mean power over [b, top)
        for stop in range(int(1000 / hz), int(0.85 * top)):
            if gap(level, stop, above) >= self.FLOOR_GAP_DB:
                break
        else:
            return None
        # where the log mean's stop band starts, a loud frame's transition band can still fill the plain mean
        if all(gap(plain, b, plain_above) < self.PLAIN_GAP_DB for b in range(stop, min(int(1.1 * stop), top - 1))):
            return None
        # the stop band starts at `stop`; the band ends lower, at the last frequency below it that holds content
        # within EDGE_DB of the band's strong part (a gentle resampler leaves a transition several hundred Hz
        # wide, or images, and the engine fills the band above from the level of the band's top)
        smooth = np.convolve(level[: stop + 3], np.ones(5) / 5, mode="same")[: stop + 1]
        strong = np.percentile(level[stop // 2 : stop], 75)
        inside = np.flatnonzero(smooth >= strong - self.EDGE_DB)
        edge = inside[-1] if inside.size else stop
        return float(max(edge, int(1000 / hz)) * hz)


SILENT_RMS = 1e-10  # -200 dBFS: below it a channel is silence (denormal residue), lifted by nothing
CHANNEL_FLOOR_DB = -60.0  # a channel is heard as if at least this far below the loudest one


def input_gain(rms: float | np.ndarray, level_db: float | None) -> float | np.ndarray:
    """The gain that brings a channel of this RMS (over the whole input) to `level_db`, the level the network
    hears (`ModelConfig.input_level_db`); an array of RMS gives one gain per channel. One gain per channel of the
    whole input, not per segment, so that chunked output still equals whole-file output; 1 for silence or when the
    model asks for none. A channel far below the loudest (more than CHANNEL_FLOOR_DB) is lifted as one at that
    floor: its own level would lift rounding noise to full scale."""
    values = np.asarray(rms, dtype=np.float64)
    usable = (values > SILENT_RMS) & np.isfinite(values)
    gains = np.ones_like(values)
    if level_db is not None and usable.any():
        floor = values[usable].max() * 10 ** (CHANNEL_FLOOR_DB / 20)
        gains[usable] = 10 ** (level_db / 20) / np.maximum(values[usable], floor)
    return float(gains) if gains.ndim == 0 else gains


def separate_stream(model: MaskSeparator, conds: torch.Tensor, blocks: Iterable[np.ndarray], rate: int,
                    channels: int, config: EngineConfig | None = None,
                    progress: Callable[[int], None] | None = None,
                    level_gain: float | np.ndarray = 1.0,
                    band_hz: float | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Separate a stream of (channels, n) blocks at `rate`.

    Yields (mixture (C, n), targets (Q, C, n)) blocks at `rate`, in order; their total length is
    exactly the input's. `progress` is called with the number of input samples consumed. The network
    hears the input times `level_gain`, one for all channels or one per channel (see `input_gain`); the outputs keep
    the input's level. Below the model's rate, or below `band_hz` where given, the input's empty upper band is
    heard filled (`MaskSeparator.heard`).
    """
    config = config or EngineConfig()
    queries = conds.shape[0]
    model_rate = model.sample_rate
    resampling = rate != model_rate
    down = Resampler(rate, model_rate, channels)
    band = below_model_band(band_hz, rate, model_rate)  # a lower rate leaves the upper band empty too
    engine = ChunkedSeparator(model, conds.to(config.device), channels, config, level_gain, band)
    up_mix = Resampler(model_rate, rate, channels)
    up_est = Resampler(model_rate, rate, queries * channels)
    up_high_band_gain = LinearInterpolator(model_rate, rate, queries * channels)
    original = Fifo(channels)  # input at its own rate, waiting for its separated counterpart
    mix_up, est_up = Fifo(channels), Fifo(queries * channels)
    emitted = 0
    total_in = 0

    def drain(final: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        nonlocal emitted
        ready = original.end if final else min(mix_up.end, est_up.end, original.end)
        count = ready - emitted
        if count <= 0:
            return
        if resampling:
            high_band_gain = up_high_band_gain.pull(count, final=final)
            count = high_band_gain.shape[1]
            if count <= 0:
                return
        x = original.read(emitted, emitted + count)
        est = est_up.read(emitted, emitted + count)
        if resampling:
            high = x - mix_up.read(emitted, emitted + count)
            est = est + np.tile(high, (queries, 1)) * high_band_gain
        emitted += count
        original.drop_before(emitted)
        mix_up.drop_before(emitted)
        est_up.drop_before(emitted)
        yield x, est.reshape(queries, channels, count)

    def feed(mix_block, est_block, high_band_gain_block, last):
        if resampling:
            mix_up.push(up_mix(mix_block, last))
            est_up.push(up_est(est_block, last))
            up_high_band_gain.push(high_band_gain_block)
        else:
            mix_up.push(mix_block)
            est_up.push(est_block)

    iterator = iter(blocks)
    block = next(iterator, None)
    while block is not None:
        following = next(iterator, None)
        last = following is None
        block = np.asarray(block, dtype=np.float32)
        total_in += block.shape[1]
        original.push(block)
        for mix_block, est_block, high_band_gain_block in engine.push(down(block, last), last):
            feed(mix_block, est_block, high_band_gain_block, last=False)
            yield from drain(final=False)
        if progress:
            progress(block.shape[1])
        block = following
    if total_in == 0:
        return
    # flush the resamplers, then pad or trim to exactly the input length
    feed(np.zeros((channels, 0), np.float32), np.zeros((queries * channels, 0), np.float32),
         np.zeros((queries * channels, 0), np.float32), last=True)
    yield from drain(final=True)


def separate_array(model: MaskSeparator, conds: torch.Tensor, audio: np.ndarray, rate: int,
                   config: EngineConfig | None = None, block_seconds: float = 30.0,
                   band_hz: float | str | None = "auto", survey: InputSurvey | None = None) -> np.ndarray:
    """(C, n) array in, (Q, C, n) targets out: the whole-array convenience over `separate_stream`, with the
    model's level normalisation. `band_hz`: see `heard_band`. `survey`: this audio's, where the caller made one."""
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    step = max(1, int(block_seconds * rate))
    blocks = [audio[:, i : i + step] for i in range(0, audio.shape[1], step)]  # views: no copy
    survey = InputSurvey.of(blocks, rate) if survey is None else survey
    level_gain = input_gain(survey.channel_rms, model.config.input_level_db)
    band = heard_band(survey, band_hz, model.sample_rate)
    pieces = [est for _, est in separate_stream(model, conds, blocks, rate, audio.shape[0], config,
                                                level_gain=level_gain, band_hz=band)]
    if not pieces:
        return np.zeros((conds.shape[0], audio.shape[0], 0), np.float32)
    return np.concatenate(pieces, axis=-1)


def heard_band(survey: InputSurvey, band_hz: float | str | None, model_rate: int) -> float | None:
    """The band the network is told the input holds, below the model's Nyquist frequency; None for the whole.
    `band_hz` "auto" (the default everywhere): found in the input's content (`InputSurvey.band_hz`), so that
    audio resampled up from a lower rate is heard as a file of that rate is; a number: that band, as given;
    "full" or None: the input's rate alone tells."""
    check_band(band_hz)
    if isinstance(band_hz, str):  # "auto" or "full"
        band_hz = survey.band_hz(model_rate / 2) if band_hz == "auto" else None
    return below_model_band(band_hz, survey.rate, model_rate)


def below_model_band(band_hz: float | None, rate: int, model_rate: int) -> float | None:
    """The band an input of `rate` holds (its Nyquist frequency, or `band_hz` below it), where it is below the
    model's Nyquist frequency; None for the whole band."""
    if isinstance(band_hz, str):
        raise TypeError(f"a band in Hz or None, got {band_hz!r}: heard_band finds or checks one")
    band = min(rate / 2, float(band_hz) if band_hz is not None else math.inf)
    return band if band < model_rate / 2 else None


MIN_BAND_HZ = 1000.0  # below it the engine would fill nearly the whole spectrum (the search starts there too)


def check_band(band_hz: object) -> None:
    if band_hz is None or (isinstance(band_hz, str) and band_hz in ("auto", "full")):
        return
    if isinstance(band_hz, bool) or not isinstance(band_hz, numbers.Real) or not MIN_BAND_HZ <= band_hz < math.inf:
        raise ValueError(f"the band must be 'auto', 'full' or a frequency of at least {MIN_BAND_HZ:.0f} Hz, "
                         f"got {band_hz!r}")
