"""Training configuration: one YAML file -> dataclasses. Relative data paths resolve against the
project root (the folder holding the config's `configs/` folder) or the current directory."""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..datasets import check_source
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


SCRATCH_LR = 2e-3
FINE_TUNE_LR = 3e-4
FINE_TUNED = "lass train --init "  # how a fine-tuned model's `source` begins


@dataclass
class OptimConfig:
    optimizer: str = "adamw"  # adamw | muon (Muon on hidden weight matrices, AdamW on the rest)
    # None: SCRATCH_LR, or FINE_TUNE_LR when training starts from a model (--init), whose weights a
    # from-scratch rate would throw away in the first hundred steps (docs/training.md, "Fine-tuning")
    lr: float | None = None
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
    # > 0: this weight times `consistency_loss` (lass/train/losses.py): where a mixture's query slots ask for all
    # of its sources, their estimates must add up to the mixture (needs data.mixing.queries_per_mixture > 1)
    consistency_weight: float = 0.0


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: dict[str, Any] = field(default_factory=dict)  # passed to lightning.Trainer as is
    seed: int = 0
    output_dir: str = "runs/default"


def _describe(hint) -> str:
    """A type hint in a user's words, for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin is tuple:
        return f"{len(args)} numbers [lowest, highest]" if len(args) == 2 else f"a list of {len(args)} values"
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('a ')}s" if args else "a list"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a text", dict: "a mapping",
            type(None): "null"}.get(origin or hint, str(hint))


def _fits(value, hint) -> bool:
    """Whether a YAML value fits a dataclass field's type hint (hints this module does not know: yes)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint in (str, type(None)):
        return isinstance(value, hint)
    if origin is list or hint is list:
        return isinstance(value, list) and all(_fits(item, args[0]) for item in value if args)
    if origin is tuple:
        return isinstance(value, (list, tuple)) and len(value) == len(args) and all(map(_fits, value, args))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True


def _as_numbers(value, hint):
    """YAML 1.1 reads 1e-3 (no dot) as a string: where a field wants numbers, such strings become numbers."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and float in args:  # float | None
        hint = float
    if hint is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if origin in (list, tuple) and args and isinstance(value, list):
        element = lambda k: args[0] if origin is list else args[min(k, len(args) - 1)]  # noqa: E731
        return [_as_numbers(item, element(k)) for k, item in enumerate(value)]
    return value


def sections_holding(key: object) -> list[str]:
    """The config sections that have a setting of this name (`trainer`: lightning.Trainer's arguments), for a hint
    where one is given in the wrong section (`lr` in trainer, `max_steps` in optim)."""
    sections = {"model": ModelConfig, "data": DataConfig, "data.mixing": MixingConfig, "optim": OptimConfig}
    found = [name for name, kind in sections.items() if key in {f.name for f in dataclasses.fields(kind)}]
    if key in {f.name for f in dataclasses.fields(TrainConfig)} - {"model", "data", "optim", "trainer"}:
        found.append("config")  # seed, output_dir
    try:
        if key in trainer_arguments():
            found.append("trainer")
    except ImportError:  # lightning is the training extra's
        pass
    return found


def _unknown_hint(key: object, names: list[str], section: str) -> str:
    """Where an unknown setting belongs (another section's), else the nearest known name, in brackets."""
    home = [where for where in sections_holding(key) if where != section]
    if home:
        return f" (a setting of {home[0]}: {key if home[0] == 'config' else f'{home[0]}.{key}'})"
    close = difflib.get_close_matches(str(key), names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _build(cls, data, section: str):
    """A config section -> its dataclass, refusing unknown keys and values of the wrong type by name."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{section}: expected a mapping of settings (key: value), got {data!r}")
    data = dict(data)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names), key=str)
    if unknown:
        said = [repr(key) + _unknown_hint(key, names, section or "config") for key in unknown]
        raise ValueError(f"{section or 'config'}: unknown {'setting' if section else 'section'}"
                         f"{'s' if len(said) > 1 else ''} {', '.join(said)}; known: {', '.join(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, where = data[f.name], f"{section}.{f.name}" if section else f.name
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            value = _build(type(default), value, where)
        else:
            value = _as_numbers(value, hints[f.name])
            if not _fits(value, hints[f.name]):
                raise ValueError(f"{where} must be {_describe(hints[f.name])}, got {value!r}")
        kwargs[f.name] = value
    return cls(**kwargs)


def _data_sources(raw: dict) -> None:
    """data.train is a list of sources and data.validation one source; one source given as a mapping (train)
    or as a list of one (validation) is taken as meant, anything else is refused with an example."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return  # _build says what a section must be
    example = "a mapping such as {type: folders, path: DIR}"
    train = data.get("train")
    if isinstance(train, dict):
        data["train"] = train = [train]
    if train is not None and not (isinstance(train, list) and all(isinstance(spec, dict) for spec in train)):
        raise ValueError(f"data.train: a list of data sources, each {example}; got {train!r}")
    validation = data.get("validation")
    if isinstance(validation, list) and len(validation) == 1:
        data["validation"] = validation = validation[0]
    if validation is not None and not isinstance(validation, dict):
        raise ValueError(f"data.validation: one data source, {example}; got {validation!r}")


def _check_values(config: TrainConfig) -> None:
    """Values of the right type but out of range: refused when the config loads, not minutes later."""
    data, mixing, optim, model = config.data, config.data.mixing, config.optim, config.model
    if not 0 <= config.seed < 2 ** 32:  # numpy's range: -1 failed after the data had loaded, naming no setting
        raise ValueError(f"seed must be from 0 to {2 ** 32 - 1}, got {config.seed}")
    at_least_one = {"data.batch_size": data.batch_size, "data.examples_per_epoch": data.examples_per_epoch,
                    "data.validation_mixtures": data.validation_mixtures,
                    "data.validation_interferers": data.validation_interferers,
                    "data.mixing.queries_per_mixture": mixing.queries_per_mixture,
                    "data.mixing.similar_classes": mixing.similar_classes,
                    "model.sample_rate": model.sample_rate, "model.n_fft": model.n_fft,
                    "model.hop_length": model.hop_length}
    positive = {"data.mixing.segment_seconds": mixing.segment_seconds,
                "data.mixing.envelope_seconds": mixing.envelope_seconds, "optim.lr": 1 if optim.lr is None else optim.lr,
                "optim.max_snr_db": optim.max_snr_db, "model.mask_power": model.mask_power}
    non_negative = {"data.num_workers": data.num_workers, "optim.weight_decay": optim.weight_decay,
                    "optim.warmup_steps": optim.warmup_steps, "optim.query_noise": optim.query_noise,
                    "model.query_anchor": model.query_anchor,
                    "data.mixing.eq_db": mixing.eq_db, "data.mixing.interferer_gain_db": mixing.interferer_gain_db,
                    "data.mixing.envelope_db": mixing.envelope_db}
    shares = {f"data.mixing.{key}": getattr(mixing, key)
              for key in ("negative_prob", "absent_prob", "augment_prob", "reverb_prob", "group_prob",
                          "similar_prob", "envelope_prob")}
    shares["optim.min_lr_ratio"] = optim.min_lr_ratio
    for checks, test, wanted in ((at_least_one, lambda v: v >= 1, "at least 1"), (positive, lambda v: v > 0, "> 0"),
                                 (non_negative, lambda v: v >= 0, ">= 0"),
                                 (shares, lambda v: 0 <= v <= 1, "in [0, 1]")):
        for where, value in checks.items():
            if not test(value):
                raise ValueError(f"{where} must be {wanted}, got {value}")
    if data.examples_per_epoch < data.batch_size:  # one step an epoch, each followed by a whole validation
        raise ValueError(f"data.examples_per_epoch ({data.examples_per_epoch}) must be at least data.batch_size "
                         f"({data.batch_size}): an epoch is examples_per_epoch / batch_size steps, then validation")
    for key in ("snr_db", "level_db", "speed_range", "drr_db"):
        low, high = getattr(mixing, key)
        if low > high or (key == "speed_range" and low <= 0):
            raise ValueError(f"data.mixing.{key} must be [lowest, highest]"
                             f"{', both > 0' if key == 'speed_range' else ''}, got {[low, high]}")
    counts, probs = mixing.interferer_counts, mixing.interferer_probs
    if not counts or len(counts) != len(probs) or min(counts) < 1 or min(probs) < 0 or abs(sum(probs) - 1) > 1e-6:
        raise ValueError(f"data.mixing: interferer_counts (each at least 1) and interferer_probs (each >= 0, summing "
                         f"to 1: how often each count is drawn) must be lists of the same length, got {counts} and "
                         f"{probs}")
    if model.hop_length > model.n_fft:
        raise ValueError(f"model.hop_length ({model.hop_length}) must not exceed model.n_fft ({model.n_fft})")
    check_crops(config)


def check_crops(config: TrainConfig) -> None:
    """Crops shorter than one STFT frame leave nothing to learn from; checked again once --init or --resume has
    brought its model's STFT (settle_config)."""
    model = config.model
    crops = {"data.mixing.segment_seconds": config.data.mixing.segment_seconds}
    for i, phase in enumerate(config.data.phases):  # the phases' types are _check_phases's
        if isinstance(phase, dict) and isinstance(phase.get("segment_seconds"), (int, float)):
            crops[f"data.phases[{i}].segment_seconds"] = phase["segment_seconds"]
    for where, seconds in crops.items():
        if seconds * model.sample_rate < model.n_fft:
            raise ValueError(f"{where} ({seconds:g} s) must hold at least one STFT frame of the model's n_fft "
                             f"({model.n_fft} samples, {model.n_fft / model.sample_rate:g} s)")


def _resolve_paths(specs: list[dict], base: Path, config_folder: Path) -> None:
    """Relative data paths: against `base` (the project folder), else where they exist: against the config's own
    folder, then the current one. `~` is the home folder."""
    for spec in specs:
        for key in ("path", "root"):
            if key not in spec or not isinstance(spec[key], str) or not spec[key]:
                continue
            given = os.path.expanduser(spec[key])
            if Path(given).is_absolute():
                spec[key] = given
                continue
            found = [c for c in (base / given, config_folder / given, Path.cwd() / given) if c.exists()]
            spec[key] = os.path.normpath(found[0] if found else base / given)


def _check_phases(phases: list[dict]) -> None:
    allowed = {"from_epoch", "segment_seconds", "batch_size"}
    for phase in phases:
        if not isinstance(phase, dict) or "from_epoch" not in phase or set(phase) - allowed:
            raise ValueError(f"data.phases: each phase is a mapping with from_epoch and any of segment_seconds, "
                             f"batch_size; got {phase!r}")
        epoch = phase["from_epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise ValueError(f"data.phases: from_epoch must be an integer >= 1, got {epoch!r}")
        for key, kind, what in (("segment_seconds", (int, float), "number"), ("batch_size", int, "whole number")):
            value = phase.get(key, 1)
            if not isinstance(value, kind) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"data.phases: {key} must be a positive {what}, got {value!r}")


# what lass train gives lightning.Trainer unless the config's `trainer` section says otherwise
TRAINER_DEFAULTS = {"accelerator": "cpu", "devices": 1, "max_steps": 1000, "gradient_clip_val": 5.0,
                    "num_sanity_val_steps": 0, "enable_model_summary": False, "reload_dataloaders_every_n_epochs": 1}


def trainer_settings(config: TrainConfig) -> dict:
    """The trainer settings a run uses: lass's defaults, then the config's own. log_every_n_steps is at most an
    epoch, or Lightning warns about each short epoch of a small data set."""
    return {**TRAINER_DEFAULTS, "log_every_n_steps": min(25, config.data.steps_per_epoch), **config.trainer}


# trainer settings that must be whole numbers (Lightning itself fails on others with a traceback)
WHOLE_NUMBER_TRAINER_SETTINGS = ("max_steps", "max_epochs", "min_steps", "min_epochs", "num_nodes",
                                 "log_every_n_steps", "check_val_every_n_epoch", "num_sanity_val_steps",
                                 "accumulate_grad_batches", "reload_dataloaders_every_n_epochs")
SET_BY_LASS = ("logger", "callbacks", "default_root_dir")  # lass train passes these to Lightning itself


# lightning.Trainer's precisions (its own list, lightning.fabric.connector._PRECISION_INPUT, is private)
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "32", "bf16", "16", "64",
              "transformer-engine", "transformer-engine-float16")


def check_trainer_settings(trainer: dict) -> None:
    """The `trainer` section (and `--set` overrides) against lightning.Trainer's own arguments, before any
    data loads: a misspelt or mistyped setting is one line naming it."""
    if not isinstance(trainer, dict):
        raise ValueError(f"trainer: expected a mapping of lightning.Trainer settings, got {trainer!r}")
    known = trainer_arguments()
    for key, value in trainer.items():
        if key in SET_BY_LASS:
            raise ValueError(f"trainer.{key} is set by lass train itself (CSV log, checkpoints and progress in the "
                             f"output folder); leave it out")
        if key not in known:
            raise ValueError(f"trainer: unknown setting {key!r}{_unknown_hint(key, known, 'trainer')}; the settings "
                             f"are lightning.Trainer's arguments")
        if key in WHOLE_NUMBER_TRAINER_SETTINGS and value is not None and (
                not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"trainer.{key} must be a whole number, got {value!r}")
    max_steps = trainer.get("max_steps")
    if "max_steps" in trainer and max_steps is None:  # passed to Lightning, which failed comparing None with 0
        raise ValueError("trainer.max_steps must be a number of steps, or -1 for no limit (max_time or max_epochs "
                         "then end the run); got null")
    if isinstance(max_steps, int) and max_steps != -1 and max_steps < 1:  # 0 exported an untrained model
        raise ValueError(f"trainer.max_steps must be at least 1, or -1 for no limit (max_time or max_epochs then "
                         f"end the run); got {max_steps}")
    max_epochs = trainer.get("max_epochs")  # whole numbers or None, as checked above
    if max_epochs is not None and max_epochs != -1 and max_epochs < 1:  # 0 exported an untrained model
        raise ValueError(f"trainer.max_epochs must be at least 1, or -1 for no limit; got {max_epochs}")
    accumulate = trainer.get("accumulate_grad_batches")
    if accumulate is not None and accumulate < 1:  # 0 failed inside the first step, dividing by it
        raise ValueError(f"trainer.accumulate_grad_batches must be at least 1, got {accumulate}")
    if trainer.get("limit_train_batches") in (0, 0.0) and not isinstance(trainer.get("limit_train_batches"), bool):
        raise ValueError("trainer.limit_train_batches is 0: no step would be trained (it limits the batches per "
                         "epoch; leave it out to train on all of them)")
    precision = trainer.get("precision")
    if precision is not None and precision != "auto" and str(precision) not in PRECISIONS:
        raise ValueError(f"trainer.precision must be auto or one of {', '.join(PRECISIONS)}; got {precision!r}")
    max_time = trainer.get("max_time")
    if max_time is not None and not isinstance(max_time, (str, dict)) or isinstance(
            max_time, str) and not re.fullmatch(r"\d+:\d{1,2}:\d{1,2}:\d{1,2}", max_time.strip()):
        raise ValueError(f"trainer.max_time must be DD:HH:MM:SS (days, hours, minutes, seconds), such as "
                         f"00:05:00:00 for 5 hours; got {max_time!r}")


def trainer_arguments() -> list[str]:
    """lightning.Trainer's arguments: what a `trainer` section may set."""
    import inspect

    import lightning as L

    return [name for name in inspect.signature(L.Trainer.__init__).parameters if name != "self"]


def apply_override(raw: dict, text: str) -> None:
    """`--set KEY=VALUE`: a trainer setting by its name (max_steps=100), seed and output_dir by theirs, any other
    by its dotted path (optim.lr=5e-4, data.mixing.snr_db=[-3,3]); the value is read as YAML."""
    if "=" not in text:
        raise ValueError(f"--set expects key=value, got '{text}'")
    key, value = (part.strip() for part in text.split("=", 1))
    try:
        parsed = read_yaml(value)
    except yaml.YAMLError:
        raise ValueError(f"--set {key}: cannot read the value {value!r}") from None
    # a trainer setting by its bare name; the config's own top-level settings (seed, output_dir) by theirs
    sections = {"model", "data", "optim", "trainer"}
    top_level = {f.name for f in dataclasses.fields(TrainConfig)} - sections
    if key in sections or "data.mixing" == key:  # it was taken as a trainer setting of that name
        raise ValueError(f"--set {key}: a section, not a setting; set one of its settings by its path "
                         f"(--set {'optim.lr=5e-4' if key == 'optim' else key + '.NAME=VALUE'})")
    if "[" in key:  # data.train[0].path: lists are replaced whole
        raise ValueError(f"--set {key}: a list's items cannot be set one by one; set the whole list "
                         f"(--set {key.split('[')[0]}=[...]) or edit the config")
    path = key.split(".") if "." in key or key in top_level else ["trainer", key]
    if path[0] == "trainer" and len(path) == 2:
        owners = [where for where in sections_holding(key) if where not in ("trainer", "config")]
        if owners and key not in trainer_arguments():
            raise ValueError(f"--set {key}: not a trainer setting; did you mean --set {owners[0]}.{key}={value}? "
                             f"(a bare name is a lightning.Trainer argument)")
    node = raw
    for depth, part in enumerate(path[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {key}: {'.'.join(path[:depth + 1])} is not a section of settings")
    node[path[-1]] = parsed


def _plain(value):
    """Tuples -> lists, recursively, so the YAML reads back with yaml.safe_load."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class _ConfigDumper(yaml.SafeDumper):
    """Sections as blocks, lists of numbers or words on one line (`snr_db: [-5.0, 5.0]`), as configs are written."""

    def represent_list(self, data):
        flat = all(not isinstance(item, (dict, list)) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_ConfigDumper.add_representer(list, _ConfigDumper.represent_list)


def config_yaml(config: TrainConfig, header: str = "") -> str:
    """Every setting of a config, defaults included, as YAML that `lass train --config` reads back: what
    `--print-config` shows and what a run keeps beside its log (a record of what it was trained with)."""
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    settings = dataclasses.asdict(config)
    settings["trainer"] = trainer_settings(config)
    return comment + yaml.dump(_plain(settings), Dumper=_ConfigDumper, sort_keys=False, width=110)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping: the second `data:` section replaced the first one
    silently, and the error then said the training data was missing."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be overridden, as meant
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, typing.Hashable):  # yaml's own error says so, with its line
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"{key!r} is given twice in one section",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


# YAML 1.1 reads 1e-3 (no dot) as a string and 1:00:00:00 as a number in base 60 (216000): a config means neither.
# This loader reads 1e-3 as a number and 1:00:00:00 as text (as max_time takes it); the rest as YAML 1.1 does.
_INT = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
                    r"|[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _NUMBER_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_ConfigDumper.yaml_implicit_resolvers = _UniqueKeyLoader.yaml_implicit_resolvers  # text such as '1e5' gets quotes


def read_yaml(text):
    """YAML (text or an open file) as configs read it (`--set`'s values too): 1e-3 a number, 1:00:00:00 text, no key
    given twice."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """A YAML config (with `--set` overrides applied) -> TrainConfig, every section and value checked."""
    path = Path(path)
    with open(path) as f:
        try:
            raw = read_yaml(f) or {}
        except yaml.YAMLError as err:
            where = getattr(err, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            raise ValueError(f"{path}: not valid YAML{line}: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a config is a mapping of sections (model, data, optim, trainer), "
                         f"got {type(raw).__name__}")
    if "output_dir" not in raw:  # a run of its own, not the bundled recipe's folder
        raw["output_dir"] = f"runs/{path.stem}"
    for override in overrides:
        apply_override(raw, override)
    _data_sources(raw)
    config = _build(TrainConfig, raw, "")
    _check_values(config)
    # the project folder: the parent of a `configs` folder that holds the file, or the folder it sits in
    # (configs/pilots/x.yaml); else the file's own folder
    base = next((folder.parent for folder in path.resolve().parents[:2] if folder.name == "configs"),
                path.resolve().parent)
    get_loss(config.optim.loss)  # an unknown loss fails here, before data loading
    if config.optim.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optim.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if config.optim.muon_lr_scale <= 0:
        raise ValueError(f"optim.muon_lr_scale must be > 0, got {config.optim.muon_lr_scale}")
    if not 0 <= config.optim.ema_decay < 1:
        raise ValueError(f"optim.ema_decay must be in [0, 1), got {config.optim.ema_decay}")
    if config.optim.presence_weight < 0:
        raise ValueError(f"optim.presence_weight must be >= 0, got {config.optim.presence_weight}")
    if config.optim.consistency_weight < 0:
        raise ValueError(f"optim.consistency_weight must be >= 0, got {config.optim.consistency_weight}")
    if config.optim.consistency_weight > 0 and config.data.mixing.queries_per_mixture < 2:
        raise ValueError("optim.consistency_weight > 0 needs data.mixing.queries_per_mixture of 2 or more")
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
    validation = [config.data.validation] if config.data.validation else []
    for section, specs in (("data.train", config.data.train), ("data.validation", validation)):
        for spec in specs:
            try:
                check_source(spec)
            except ValueError as err:
                raise ValueError(f"{section}: {err}") from None
    rt60 = config.data.mixing.rt60_range
    if len(rt60) != 2 or not 0 < rt60[0] <= rt60[1]:
        raise ValueError(f"data.mixing.rt60_range must be [shortest, longest] seconds, both > 0, got {list(rt60)}")
    mixing = config.data.mixing
    pair_gain = mixing.pair_gain_db
    if not 0 <= mixing.pair_prob <= 1 or len(pair_gain) != 2 or pair_gain[0] > pair_gain[1]:
        raise ValueError(f"data.mixing: pair_prob must be in [0, 1] and pair_gain_db [lowest, highest] dB, got "
                         f"{mixing.pair_prob} and {list(pair_gain)}")
    _resolve_paths(config.data.train, base, path.resolve().parent)
    if config.data.validation:
        _resolve_paths([config.data.validation], base, path.resolve().parent)
    return config
