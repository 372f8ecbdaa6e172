"""On-the-fly training mixtures: class-balanced targets, target-active crops, random interferers.

Each example: a target crop (chosen where the target is active), 1-3 interferers of other
classes at a random target-to-interference ratio, a random level and polarity. A share of the
examples carries a negative query (an interferer's label); another share asks for a class that is
absent from the mixture, whose correct answer is silence.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..datasets import ClipBank
from ..mixing import mix


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


def _frame_energies(clip: np.ndarray, frame: int) -> np.ndarray:
    n = max(1, clip.shape[-1] // frame)
    e = np.sum(clip[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1)
    return e


class TrainingMixtures(torch.utils.data.Dataset):
    """Map-style so DDP samplers shard it; item i of epoch e is reproducible from (seed, e, i)."""

    def __init__(self, bank: ClipBank, config: MixingConfig, query_index: dict[str, list[int]],
                 examples_per_epoch: int, seed: int = 0):
        self.bank = bank
        self.config = config
        self.query_index = query_index
        self.length = examples_per_epoch
        self.seed = seed
        self.epoch = 0
        self.segment = int(round(config.segment_seconds * bank.sample_rate))
        self.frame = max(1, bank.sample_rate // 50)
        self.active_frames = []
        for clip in bank.clips:
            e = _frame_energies(clip, self.frame)
            thresh = e.max() * 10 ** (config.active_threshold_db / 10)
            self.active_frames.append(np.flatnonzero(e > thresh))

    def __len__(self) -> int:
        return self.length

    def _crop(self, rng: np.random.Generator, index: int, active: bool) -> np.ndarray:
        clip = self.bank.clips[index]
        n, seg = clip.shape[-1], self.segment
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
        labels = self.bank.label_names
        target_label = labels[rng.integers(len(labels))]
        target_clip = self.bank.by_label[target_label][rng.integers(len(self.bank.by_label[target_label]))]
        target = self._crop(rng, target_clip, active=True)
        count = int(rng.choice(cfg.interferer_counts, p=cfg.interferer_probs))
        absent = rng.random() < cfg.absent_prob
        others = [lab for lab in labels if lab != target_label]
        picked = rng.choice(len(others), size=min(len(others), count + (1 if absent else 0)), replace=False)
        interferer_labels = [others[j] for j in picked]
        query_label = target_label
        if absent:  # the query names a class that is not in the mixture: the answer is silence
            query_label = interferer_labels.pop()
        interferers = []
        for lab in interferer_labels:
            idx = self.bank.by_label[lab][rng.integers(len(self.bank.by_label[lab]))]
            interferers.append(self._crop(rng, idx, active=rng.random() < 0.5))
        level = 10 ** (rng.uniform(*cfg.level_db) / 20)
        target = target / max(np.sqrt(np.mean(target.astype(np.float64) ** 2)), 1e-8) * level
        if rng.random() < 0.5:
            target = -target
        gains = rng.uniform(-cfg.interferer_gain_db, cfg.interferer_gain_db, size=len(interferers)).tolist()
        mixture, target, _ = mix(target, interferers, float(rng.uniform(*cfg.snr_db)), gains)
        if absent:
            target = np.zeros_like(target)
        pos = self.query_index[query_label]
        pos_q = pos[rng.integers(len(pos))]
        neg_q = -1
        if interferer_labels and rng.random() < cfg.negative_prob:
            neg = self.query_index[interferer_labels[rng.integers(len(interferer_labels))]]
            neg_q = neg[rng.integers(len(neg))]
        return (torch.from_numpy(mixture), torch.from_numpy(target), pos_q, neg_q,
                torch.tensor(0.0 if absent else 1.0))
