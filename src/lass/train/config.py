"""Training configuration: one YAML file -> dataclasses. Relative data paths resolve against the
project root (the folder holding the config's `configs/` folder) or the current directory."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..datasets import source_options
from ..models.config import ModelConfig
from ..models.separator import build_network
from .losses import get_loss
from .mixtures import MixingConfig
from .optimizers import OPTIMIZERS


@dataclass
class DataConfig:
    train: list[dict[str, Any]] = field(default_factory=list)
    validation: dict[str, Any] | None = None
    validation_mixtures: int = 100  # per validation pass (deterministic)
    validation_interferers: int = 1
    examples_per_epoch: int = 6000
    batch_size: int = 12
    num_workers: int = 0
    mixing: MixingConfig = field(default_factory=MixingConfig)
    # later phases with other crops, e.g. [{from_epoch: 5, segment_seconds: 4.0, batch_size: 16}]: short
    # crops learn faster early, long ones match the context the network gets at inference. An epoch
    # keeps examples_per_epoch / batch_size steps in every phase.
    phases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.examples_per_epoch // self.batch_size)

    def crop_at(self, epoch: int) -> tuple[float, int]:
        """(segment seconds, mixtures per step) for an epoch."""
        seconds, batch = self.mixing.segment_seconds, self.batch_size
        for phase in sorted(self.phases, key=lambda p: p["from_epoch"]):
            if epoch >= phase["from_epoch"]:
                seconds = phase.get("segment_seconds", seconds)
                batch = phase.get("batch_size", batch)
        return float(seconds), int(batch)


@dataclass
class OptimConfig:
    optimizer: str = "adamw"  # adamw | muon (Muon on hidden weight matrices, AdamW on the rest)
    lr: float = 2e-3
    muon_lr_scale: float = 1.0  # optimizer muon: its learning rate is lr times this (AdamW's parts keep lr)
    weight_decay: float = 1e-2
    warmup_steps: int = 300
    min_lr_ratio: float = 0.02
    query_noise: float = 0.02  # std of Gaussian noise added to query embeddings while training
    # snr | si_sdr | l1 (lass/train/losses.py), or a weighted sum of them, e.g. {snr: 1.0, l1: 10.0}
    loss: str | dict[str, float] = "snr"
    max_snr_db: float = 30.0
    compile: bool = False  # torch.compile the mask network: 1.5x faster bf16 steps here (docs/benchmarks.md)
    ema_decay: float = 0.0  # > 0: validate, checkpoint and export an exponential moving average of the weights
    # > 0: an auxiliary loss, this weight times a multi-label BCE (summed over classes) of a linear head that
    # names the classes heard in the mixture from its query-independent encoding. The head is not exported.
    presence_weight: float = 0.0
    # > 0: the probability that a training mixture's network input has one band of up to 1/8 of the bins and
    # one span of up to 1/8 of the frames hidden (SpecAugment; film_tcn only). The mask still applies to all.
    feature_masking: float = 0.0


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: dict[str, Any] = field(default_factory=dict)  # passed to lightning.Trainer as is
    seed: int = 0
    output_dir: str = "runs/default"


def _build(cls, data: dict | None):
    data = dict(data or {})
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data.pop(f.name)
        if dataclasses.is_dataclass(f.default_factory() if f.default_factory is not dataclasses.MISSING else None):
            value = _build(type(f.default_factory()), value)
        kwargs[f.name] = value
    if data:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(sorted(data))}")
    return cls(**kwargs)


def _resolve_paths(specs: list[dict], base: Path) -> None:
    for spec in specs:
        for key in ("path", "root"):
            if key in spec and spec[key] and not Path(spec[key]).is_absolute():
                cand = base / spec[key]
                if cand.exists() or not Path(spec[key]).exists():
                    spec[key] = str(cand)


def _check_phases(phases: list[dict]) -> None:
    allowed = {"from_epoch", "segment_seconds", "batch_size"}
    for phase in phases:
        if not isinstance(phase, dict) or "from_epoch" not in phase or set(phase) - allowed:
            raise ValueError(f"data.phases: each phase is a mapping with from_epoch and any of segment_seconds, "
                             f"batch_size; got {phase!r}")
        epoch = phase["from_epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise ValueError(f"data.phases: from_epoch must be an integer >= 1, got {epoch!r}")
        for key, kind in (("segment_seconds", (int, float)), ("batch_size", int)):
            value = phase.get(key, 1)
            if not isinstance(value, kind) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"data.phases: {key} must be a positive number, got {value!r}")


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    with open(path) as f:
        try:
            raw = yaml.safe_load(f) or {}
        except yaml.YAMLError as err:
            where = getattr(err, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            raise ValueError(f"{path}: not valid YAML{line}: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a config is a mapping of sections (model, data, optim, trainer), "
                         f"got {type(raw).__name__}")
    config = _build(TrainConfig, raw)
    base = path.resolve().parent.parent if path.resolve().parent.name == "configs" else path.resolve().parent
    get_loss(config.optim.loss)  # an unknown loss fails here, before data loading
    if config.optim.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optim.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if config.optim.muon_lr_scale <= 0:
        raise ValueError(f"optim.muon_lr_scale must be > 0, got {config.optim.muon_lr_scale}")
    if not 0 <= config.optim.ema_decay < 1:
        raise ValueError(f"optim.ema_decay must be in [0, 1), got {config.optim.ema_decay}")
    if config.optim.presence_weight < 0:
        raise ValueError(f"optim.presence_weight must be >= 0, got {config.optim.presence_weight}")
    if not 0 <= config.optim.feature_masking <= 1:
        raise ValueError(f"optim.feature_masking must be in [0, 1], got {config.optim.feature_masking}")
    if config.optim.feature_masking > 0 and config.model.network != "film_tcn":
        raise ValueError("optim.feature_masking > 0 needs the film_tcn network")
    build_network(config.model)  # a mistyped network_args fails here, before data loading
    _check_phases(config.data.phases)
    for spec in config.data.train:
        first = spec.get("from_epoch", 0) if isinstance(spec, dict) else 0
        if not isinstance(first, int) or isinstance(first, bool) or first < 0:
            raise ValueError(f"data.train: from_epoch (the first epoch that draws a source's clips) must be an "
                             f"integer >= 0, got {first!r}")
        if isinstance(spec, dict):
            source_options(spec)
    rt60 = config.data.mixing.rt60_range
    if len(rt60) != 2 or not 0 < rt60[0] <= rt60[1]:
        raise ValueError(f"data.mixing.rt60_range must be [shortest, longest] seconds, both > 0, got {list(rt60)}")
    mixing = config.data.mixing
    pair_gain = mixing.pair_gain_db
    if not 0 <= mixing.pair_prob <= 1 or len(pair_gain) != 2 or pair_gain[0] > pair_gain[1]:
        raise ValueError(f"data.mixing: pair_prob must be in [0, 1] and pair_gain_db [lowest, highest] dB, got "
                         f"{mixing.pair_prob} and {list(pair_gain)}")
    _resolve_paths(config.data.train, base)
    if config.data.validation:
        _resolve_paths([config.data.validation], base)
    return config
