"""On-the-fly training mixtures: class-balanced targets, target-active crops, random interferers.

Each example: a target crop (chosen where the target is active), 1-3 interferers of other classes at a
random target-to-interference ratio, a random level and polarity. Each source may be augmented (speed
and pitch by resampling, a random smooth equaliser, a synthetic room, a second clip of its class added)
so that a small set of clips generalises to new recordings of its class. A share of the examples carries
a negative query (an interferer's label); another share asks for a class that is absent from the
mixture, whose correct answer is silence; with `group_prob` another asks for a group its target belongs
to ("animals"), answered by every source of that group in the mixture; with `similar_prob` an interferer may be
drawn from the classes that sound most like the target. Each example also lists the
classes heard in its mixture. With `queries_per_mixture` k > 1 an example carries k query slots: its
own query and other sources of the same mixture (or absent classes), each with its own reference; when
the mixture has fewer sources than slots, a spare slot asks for an absent class at `absent_prob` and
otherwise asks again for one of its sources.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..audio import resample
from ..datasets import ClipBank
from ..mixing import mix_sources
from ..stft import STFT, STFTConfig


@dataclass
class MixingConfig:
    segment_seconds: float = 4.0
    interferer_counts: list[int] = field(default_factory=lambda: [1, 2, 3])
    interferer_probs: list[float] = field(default_factory=lambda: [0.5, 0.3, 0.2])
    snr_db: tuple[float, float] = (-5.0, 5.0)
    interferer_gain_db: float = 3.0  # spread of each interferer's level within the interference
    level_db: tuple[float, float] = (-35.0, -12.0)  # RMS of the target before peak protection
    negative_prob: float = 0.3
    absent_prob: float = 0.1
    active_threshold_db: float = -35.0  # frame energy re. the clip's loudest frame
    augment_prob: float = 0.0  # chance that a source gets a random speed and a random equaliser
    speed_range: tuple[float, float] = (0.85, 1.18)  # resampling factor: tempo and pitch together
    eq_db: float = 6.0  # largest gain of the random equaliser, in dB
    # chance that a source is heard in a synthetic room; its reference is the reverberant source, so the
    # network learns to keep a sound's tail, not to remove it
    reverb_prob: float = 0.0
    rt60_range: tuple[float, float] = (0.15, 0.8)  # reverberation time (to -60 dB), seconds
    drr_db: tuple[float, float] = (0.0, 15.0)  # direct-to-reverberant energy ratio, dB
    # chance that a source is heard together with a second clip of its own class (two dogs, two engines),
    # `pair_gain_db` (lowest, highest) below it in RMS: new examples of a class from the same clips
    pair_prob: float = 0.0
    pair_gain_db: tuple[float, float] = (-6.0, 0.0)
    # > 1: also ask for interferers of the same mixture (each with its own reference), so a network
    # with a query-independent trunk (film_tcn `shared_blocks`) learns from several sources per pass
    queries_per_mixture: int = 1
    # chance that an example's own query names a group its target belongs to ("animals", "music"; the groups are
    # lass.train.phrasing.GROUPS), whose reference is every source of that group in the mixture; an absent-class
    # example then names a group none of whose classes is heard
    group_prob: float = 0.0
    # chance that an interferer is drawn from the `similar_classes` classes whose average spectrum is nearest the
    # target's (`similar_classes` below) instead of from all: mixtures of sounds that the network confuses most
    # (on fold 4, pairs of spectral neighbours scored 1.5 dB below the others, docs/benchmarks.md)
    similar_prob: float = 0.0
    similar_classes: int = 10
    # chance that a source's level wanders over time: a gain curve through random points `envelope_seconds` apart,
    # each within +-`envelope_db`, as a sound moving or a recorder turning would give; the reference wanders too
    envelope_prob: float = 0.0
    envelope_db: float = 6.0
    envelope_seconds: float = 0.5


def random_eq(rng: np.random.Generator, audio: np.ndarray, max_db: float) -> np.ndarray:
    """A smooth random gain curve over log frequency (tilt plus one bump), applied by FFT."""
    n = audio.shape[-1]
    spectrum = np.fft.rfft(audio)
    position = np.linspace(0, 1, 64)  # the top 10 octaves, coarse: the curve is smooth
    tilt = rng.uniform(-1, 1) * (position - 0.5)
    centre, width = rng.uniform(0, 1), rng.uniform(0.05, 0.3)
    bump = rng.uniform(-1, 1) * np.exp(-0.5 * ((position - centre) / width) ** 2)
    gain = 10 ** (max_db * np.clip(tilt + bump, -1, 1) / 20)
    octaves = np.log2(np.maximum(np.arange(spectrum.shape[-1]), 1) / (spectrum.shape[-1] - 1))
    gain_per_bin = np.interp(octaves / 10 + 1, position, gain)  # below the range: the lowest gain
    return np.fft.irfft(spectrum * gain_per_bin, n).astype(np.float32)


def random_envelope(rng: np.random.Generator, length: int, spacing: int, max_db: float) -> np.ndarray:
    """A slow gain curve (linear gains, `length` samples): random dB values at points `spacing` samples apart,
    the first placed at random before the start, joined by straight lines in dB."""
    points = length // max(spacing, 1) + 2
    offset = rng.uniform(0, spacing)
    at = np.arange(points) * spacing - offset
    curve_db = np.interp(np.arange(length), at, rng.uniform(-max_db, max_db, points))
    return (10 ** (curve_db / 20)).astype(np.float32)


def synthetic_room(rng: np.random.Generator, rate: int, rt60: float, drr_db: float) -> np.ndarray:
    """A room impulse response: the direct path, then exponentially decaying noise (Polack's model)
    whose energy sits `drr_db` below the direct path's."""
    t = np.arange(1, max(2, int(rt60 * rate))) / rate
    tail = rng.standard_normal(len(t)) * np.exp(-3 * np.log(10) * t / rt60)  # amplitude: -60 dB at rt60
    tail *= 10 ** (-drr_db / 20) / np.sqrt(np.sum(tail ** 2))
    return np.concatenate([[1.0], tail])


def convolve(audio: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Linear convolution by FFT, cut to the input's length."""
    n = len(audio) + len(response) - 1
    size = 1 << (n - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(response, size), size)
    return out[: len(audio)].astype(np.float32)


def band_spectrum(clip: np.ndarray, n_fft: int = 1024, bands: int = 32, active_db: float = -35.0) -> np.ndarray:
    """Mean log power in `bands` log-spaced bands over a clip's active frames (within `active_db` of its loudest),
    level removed: the shape of its spectrum, for telling which classes sound alike."""
    spec = STFT(STFTConfig(n_fft, n_fft // 2))(torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32)))
    power = spec.abs().double().square().numpy()  # (bins, frames)
    energy = power.sum(0)
    power = power[:, energy >= energy.max() * 10 ** (active_db / 10)]
    edges = np.unique(np.geomspace(2, power.shape[0], bands + 1).astype(int))
    log = np.log10(np.add.reduceat(power.mean(1), edges[:-1]) / np.diff(edges) + 1e-12)
    return log - log.mean()


def similar_classes(bank: ClipBank, count: int) -> dict[str, list[str]]:
    """Each class's `count` nearest classes by the cosine of their clips' mean `band_spectrum`, nearest first."""
    labels = list(bank.by_label)
    shapes = np.stack([np.mean([band_spectrum(bank.clips[k]) for k in bank.by_label[label]], axis=0)
                       for label in labels])
    shapes /= np.maximum(np.linalg.norm(shapes, axis=1, keepdims=True), 1e-12)
    closeness = shapes @ shapes.T
    return {label: [labels[j] for j in np.argsort(-closeness[i], kind="stable") if j != i][:count]
            for i, label in enumerate(labels)}


def _frame_energies(clip: np.ndarray, frame: int) -> np.ndarray:
    n = max(1, clip.shape[-1] // frame)
    e = np.sum(clip[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1)
    return e


class TrainingMixtures(torch.utils.data.Dataset):
    """Map-style so DDP samplers shard it; item i of epoch e is reproducible from (seed, e, i)."""

    def __init__(self, bank: ClipBank, config: MixingConfig, query_index: dict[str, list[int]],
                 examples_per_epoch: int, seed: int = 0, groups: dict[str, list[str]] | None = None):
        """`groups`: group name -> its classes, asked for at `group_prob` (each name must be in `query_index`)."""
        self.bank = bank
        self.groups = groups or {}
        self.groups_of: dict[str, list[str]] = {}
        for name, members in self.groups.items():
            for label in members:
                self.groups_of.setdefault(label, []).append(name)
        self.config = config
        self.query_index = query_index
        self.length = examples_per_epoch
        self.seed = seed
        self.epoch = 0
        self.segment = int(round(config.segment_seconds * bank.sample_rate))
        probs = np.asarray(config.interferer_probs, np.float64)  # [0.3333333] * 3 passes the config's check (1e-6),
        self.interferer_probs = probs / probs.sum()  # not numpy's (1e-8)
        if not 1 <= config.queries_per_mixture <= len(self.label_names):
            raise ValueError(f"mixing.queries_per_mixture is {config.queries_per_mixture}: it must be between 1 "
                             f"and the number of classes ({len(self.label_names)})")
        self.label_position = {label: k for k, label in enumerate(bank.label_names)}
        self.frame = max(1, bank.sample_rate // 50)
        self.active_frames = []
        for clip in bank.clips:
            e = _frame_energies(clip, self.frame)
            thresh = e.max() * 10 ** (config.active_threshold_db / 10)
            self.active_frames.append(np.flatnonzero(e > thresh))
        self.similar = similar_classes(bank, config.similar_classes) if config.similar_prob > 0 else {}

    @property
    def epoch(self) -> int:
        return self._epoch

    @epoch.setter
    def epoch(self, epoch: int) -> None:
        """Also selects the clips this epoch may draw (a data source's `from_epoch`). When all clips are in
        from the start these are the bank's own lists, so recipes without late sources keep their examples."""
        self._epoch = epoch
        first = self.bank.first_epoch
        by_label = {label: [k for k in clips if first.get(k, 0) <= epoch]
                    for label, clips in self.bank.by_label.items()}
        self.by_label = {label: clips for label, clips in by_label.items() if clips}
        self.label_names = [label for label in self.bank.label_names if label in self.by_label]
        if len(self.label_names) < 2:
            raise ValueError(f"training epoch {epoch} has {len(self.label_names)} class(es) to mix: a data source's "
                             f"from_epoch leaves fewer than two")

    def __len__(self) -> int:
        return self.length

    def set_crop(self, segment_seconds: float, examples: int) -> None:
        """Switch crop length and epoch size between epochs (training phases)."""
        self.segment = int(round(segment_seconds * self.bank.sample_rate))
        self.length = examples

    def _source(self, rng: np.random.Generator, index: int, active: bool) -> np.ndarray:
        """A crop of one clip, augmented with probability `augment_prob`, in a room with `reverb_prob`, its level
        wandering with `envelope_prob`."""
        cfg = self.config
        if cfg.augment_prob <= 0 or rng.random() >= cfg.augment_prob:
            source = self._crop(rng, index, active, self.segment)
        else:
            speed = float(np.exp(rng.uniform(*np.log(cfg.speed_range))))
            source = self._crop(rng, index, active, int(round(self.segment * speed)))
            source = resample(source, len(source), self.segment)[: self.segment]  # `speed` x faster
            source = np.pad(source, (0, self.segment - len(source))).astype(np.float32)
            if cfg.eq_db > 0:
                source = random_eq(rng, source, cfg.eq_db)
        if cfg.reverb_prob > 0 and rng.random() < cfg.reverb_prob:
            room = synthetic_room(rng, self.bank.sample_rate, rng.uniform(*cfg.rt60_range), rng.uniform(*cfg.drr_db))
            source = convolve(source, room)
        if cfg.envelope_prob > 0 and rng.random() < cfg.envelope_prob:  # no draw at 0: recipes keep their examples
            spacing = int(round(cfg.envelope_seconds * self.bank.sample_rate))
            source = source * random_envelope(rng, len(source), spacing, cfg.envelope_db)
        return source

    def _with_partner(self, rng: np.random.Generator, label: str, index: int, source: np.ndarray,
                      active: bool) -> np.ndarray:
        """With probability `pair_prob`, add a crop of another clip of the same class; draws nothing
        from `rng` when `pair_prob` is 0, so recipes without pairs keep their examples."""
        cfg = self.config
        if cfg.pair_prob <= 0 or rng.random() >= cfg.pair_prob:
            return source
        clips = [k for k in self.by_label[label] if k != index]
        if not clips:
            return source
        partner = self._source(rng, clips[rng.integers(len(clips))], active)
        level = np.sqrt(np.mean(source.astype(np.float64) ** 2))
        partner_level = np.sqrt(np.mean(partner.astype(np.float64) ** 2))
        if partner_level < 1e-8:
            return source
        gain = 10 ** (rng.uniform(*cfg.pair_gain_db) / 20) * level / partner_level
        return (source + gain * partner).astype(np.float32)

    def _crop(self, rng: np.random.Generator, index: int, active: bool, seg: int) -> np.ndarray:
        clip = self.bank.clips[index]
        n = clip.shape[-1]
        if n <= seg:
            out = np.zeros(seg, dtype=np.float32)
            start = int(rng.integers(0, seg - n + 1))
            out[start : start + n] = clip
            return out
        frames = self.active_frames[index]
        if active and len(frames):
            centre = int(frames[rng.integers(len(frames))]) * self.frame + self.frame // 2
            start = centre - int(rng.integers(0, seg))
        else:
            start = int(rng.integers(0, n - seg + 1))
        start = min(max(start, 0), n - seg)
        return clip[start : start + seg]

    def __getitem__(self, i: int):
        cfg = self.config
        rng = np.random.default_rng((self.seed, self.epoch, i))
        labels = self.label_names
        target_label = labels[rng.integers(len(labels))]
        target_clip = self.by_label[target_label][rng.integers(len(self.by_label[target_label]))]
        target = self._source(rng, target_clip, active=True)
        target = self._with_partner(rng, target_label, target_clip, target, active=True)
        count = int(rng.choice(cfg.interferer_counts, p=self.interferer_probs))
        absent = rng.random() < cfg.absent_prob
        others = [lab for lab in labels if lab != target_label]
        picked = rng.choice(len(others), size=min(len(others), count + (1 if absent else 0)), replace=False)
        interferer_labels = [others[j] for j in picked]
        query_label = target_label
        if absent:  # the query names a class that is not in the mixture: the answer is silence
            query_label = interferer_labels.pop()
        if cfg.similar_prob > 0:  # no draw at 0, so recipes without it keep their examples
            near = [label for label in self.similar.get(target_label, []) if label in self.by_label]
            for j in range(len(interferer_labels)):
                if rng.random() < cfg.similar_prob:
                    free = [label for label in near if label not in interferer_labels and label != query_label]
                    if free:
                        interferer_labels[j] = free[rng.integers(len(free))]
        interferers = []
        for lab in interferer_labels:
            idx = self.by_label[lab][rng.integers(len(self.by_label[lab]))]
            active = rng.random() < 0.5
            interferers.append(self._with_partner(rng, lab, idx, self._source(rng, idx, active), active))
        level = 10 ** (rng.uniform(*cfg.level_db) / 20)
        target = target / max(np.sqrt(np.mean(target.astype(np.float64) ** 2)), 1e-8) * level
        if rng.random() < 0.5:
            target = -target
        gains = rng.uniform(-cfg.interferer_gain_db, cfg.interferer_gain_db, size=len(interferers)).tolist()
        mixture, target, scaled = mix_sources(target, interferers, float(rng.uniform(*cfg.snr_db)), gains)
        # query slots: (label, reference, present); the first is the example's own query
        slots = [(query_label, np.zeros_like(target) if absent else target, not absent)]
        members: list[str] = []  # the classes the first slot's group covers (none: it names one class)
        if cfg.group_prob > 0 and self.groups and rng.random() < cfg.group_prob:
            heard_labels = [target_label, *interferer_labels]
            names = [name for name in self.groups_of.get(query_label, [])
                     if not absent or not set(self.groups[name]) & set(heard_labels)]
            if names:
                name = names[rng.integers(len(names))]
                members = self.groups[name]
                if absent:
                    slots = [(name, np.zeros_like(target), False)]
                else:
                    reference = target + sum((ref for lab, ref in zip(interferer_labels, scaled) if lab in members),
                                             np.zeros_like(target))
                    slots = [(name, reference.astype(np.float32), True)]
        sources = [(lab, ref) for lab, ref in zip(interferer_labels, scaled)]
        if absent:
            sources.insert(0, (target_label, target))
        if cfg.queries_per_mixture > 1:
            for j in rng.permutation(len(sources))[: cfg.queries_per_mixture - 1]:
                # an interferer cropped from a clip's padding is digital silence: ask for silence
                slots.append((sources[j][0], sources[j][1], bool(np.any(sources[j][1]))))
        while len(slots) < cfg.queries_per_mixture:
            # fewer sources than slots: an absent class at the first slot's rate, otherwise one of the
            # mixture's sources again (in another phrasing). Always absent would make silence the easy
            # answer: with k = 3 a quarter of all slots were absent and training collapsed to silence.
            asked = {label for label, _, _ in slots}
            missing = [lab for lab in others if lab not in interferer_labels and lab not in asked]
            heard = [slot for slot in slots if slot[2]]
            if heard and (not missing or rng.random() >= cfg.absent_prob):
                slots.append(heard[rng.integers(len(heard))])
            else:
                slots.append((missing[rng.integers(len(missing))], np.zeros_like(target), False))
        present_labels = [target_label, *interferer_labels]
        refs, pos_qs, neg_qs = [], [], []
        for k, (label, ref, _) in enumerate(slots):
            pos = self.query_index[label]
            pos_qs.append(pos[rng.integers(len(pos))])
            # negatives name another source in the mixture; the first slot draws from the interferers
            # only, as before slots existed, so k = 1 keeps the same examples
            others_in = ([lab for lab in interferer_labels if lab not in members] if k == 0 else
                         [lab for lab in present_labels if lab != label and lab not in self.groups.get(label, ())])
            neg_q = -1
            if others_in and rng.random() < cfg.negative_prob:
                neg = self.query_index[others_in[rng.integers(len(others_in))]]
                neg_q = neg[rng.integers(len(neg))]
            neg_qs.append(neg_q)
            refs.append(ref)
        # the classes heard in the mixture (multi-hot over bank.label_names): an interferer cropped from
        # a clip's padding is silence and is not heard; read by training's auxiliary presence loss
        heard = np.zeros(len(self.bank.label_names), dtype=np.float32)
        for label, source in [(target_label, target), *zip(interferer_labels, scaled)]:
            heard[self.label_position[label]] = float(np.any(source))
        return (torch.from_numpy(mixture), torch.from_numpy(np.stack(refs)), torch.tensor(pos_qs),
                torch.tensor(neg_qs), torch.tensor([1.0 if p else 0.0 for _, _, p in slots]), torch.from_numpy(heard))
