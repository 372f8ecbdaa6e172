"""`lass train`: build data, model and trainer from one config file and run."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import math
import os
import pickle
import shlex
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from ..audio import first_line
from ..datasets import ClipBank, merge_repeated_files, read_dataset
from ..evaluation.protocols import label_mixtures
from ..models.config import ModelConfig
from ..query import build_condition, shared_text_encoder
from .config import (FINE_TUNE_LR, FINE_TUNED, SCRATCH_LR, TrainConfig, check_crops, check_trainer_settings,
                     trainer_settings)
from .machine import choose_precision
from .mixtures import TrainingMixtures
from .phrasing import group_phrasings, phrasings, sound_groups


ARCHITECTURE = ("sample_rate", "n_fft", "hop_length", "network", "network_args", "text_encoder")


def architecture_overridden(own: ModelConfig, base: ModelConfig) -> bool:
    """Whether a config gives an architecture of its own that differs from the model it starts from: a setting
    left at its default is not one the config gives (a run's recorded config names every setting)."""
    defaults = ModelConfig()
    return any(getattr(own, key) not in (getattr(defaults, key), getattr(base, key)) for key in ARCHITECTURE)


def fine_tune_config(own: ModelConfig, base: ModelConfig, init: str) -> ModelConfig:
    """The initial model's architecture with the fine-tuning config's own name, licence and description, and
    its inference settings (mask_power, input_level_db, query_anchor) where the config sets them to other than their
    defaults (a run's recorded config names every setting, its defaults too; `lass export --mask-power 1` sets 1.0).

    Whatever the config leaves at its default is derived from the initial model, so that a fine-tuned model
    never presents itself as the one it started from, nor carries that model's measured numbers."""
    defaults = ModelConfig()
    given = lambda key: getattr(own, key) != getattr(defaults, key)  # noqa: E731
    if architecture_overridden(own, base):
        print(f"lass: note: --init {init} keeps the architecture of {base.name!r}; the config's model "
              f"architecture ({', '.join(ARCHITECTURE)}) is not used", file=sys.stderr)
    if given("licence") and own.licence != base.licence and base.licence:
        print(f"lass: note: the model's licence is set to {own.licence!r}, but its weights start from {base.name!r} "
              f"and carry that model's training data, whose terms still apply: {base.licence}", file=sys.stderr)
    return dataclasses.replace(
        base,
        name=own.name if given("name") else f"{base.name}-finetuned",
        licence=own.licence if given("licence") else base.licence,
        description=own.description if given("description") else base.description,
        source=own.source if given("source") else f"{FINE_TUNED}{init}, from {base.name} ({base.source})",
        mask_power=own.mask_power if given("mask_power") else base.mask_power,
        input_level_db=own.input_level_db if given("input_level_db") else base.input_level_db,
        query_anchor=own.query_anchor if given("query_anchor") else base.query_anchor,
        band_fill=own.band_fill,  # the config's, or (None) decided from the data this run trains on
        metrics={})


def build_query_table(labels: list[str], encoder, captions: dict[str, list[str]] | None = None,
                      groups: list[str] | tuple[str, ...] = ()) -> tuple[torch.Tensor, dict[str, list[int]]]:
    """Every training phrasing's embedding, and which rows are each label's (then each group's, where given)."""
    texts, index = [], {}
    for name, phr in [(label, phrasings(label, (captions or {}).get(label, ()))) for label in labels] + \
            [(group, group_phrasings(group)) for group in groups]:
        index[name] = list(range(len(texts), len(texts) + len(phr)))
        texts.extend(phr)
    return encoder.encode(texts), index


SAME_PHRASING = 0.9999  # cosine above which two training phrasings' embeddings are one (half precision rounds)


def training_vocabulary(table: torch.Tensor, initial=None, resumed: dict | None = None) -> torch.Tensor | None:
    """The query embeddings the exported model was trained to hear, which its file keeps for query anchoring:
    what the run started from (a resumed run's checkpoint, or a fine-tune's initial model), then this run's
    phrasings that it does not hold yet. None for a fine-tune of a model that keeps none (a file from before
    anchoring): its own classes would be unknown, and their queries pulled toward the new ones."""
    kept = None if resumed is None else resumed.get("lass_query_vocabulary")
    if kept is None and initial is not None:
        if initial.vocabulary is None:
            return None
        kept = initial.vocabulary
    if kept is None:
        return table.float()
    kept = kept.float()
    new = (table.float() @ kept.T).amax(1) < SAME_PHRASING  # not already there (stored in half precision)
    return torch.cat([kept, table.float()[new]])


def build_validation(config: TrainConfig, encoder, items: list | None = None):
    """The validation mixtures, from the config's validation source (or its `items`, where already read)."""
    if not config.data.validation:
        return None
    try:
        items = read_dataset(config.data.validation) if items is None else items
        bank = ClipBank(items, config.model.sample_rate, kind="validation")
        mixtures = label_mixtures(bank, config.data.validation_interferers, 0.0, seed=1234,
                                  limit=config.data.validation_mixtures)
    except (ValueError, OSError) as err:  # say which part of the config it is about
        raise ValueError(f"data.validation: {err}") from None
    if not mixtures:
        raise ValueError(f"data.validation: no clips to make validation mixtures from in "
                         f"{config.data.validation.get('path')} (the lines above say which were left out and why)")
    cond = build_condition(encoder.encode([m.query for m in mixtures]), None)
    if len({m.mixture.shape[-1] for m in mixtures}) > 1:  # one's own clips of many lengths: batches of one
        return [(torch.from_numpy(m.mixture), torch.from_numpy(m.target), c) for m, c in zip(mixtures, cond)]
    mix = torch.from_numpy(np.stack([m.mixture for m in mixtures]))
    tgt = torch.from_numpy(np.stack([m.target for m in mixtures]))
    return torch.utils.data.TensorDataset(mix, tgt, cond)


def fingerprint(items: list | None, config: TrainConfig) -> str | None:
    """Which validation mixtures a run makes: a hash of its validation files' bytes and labels and the settings that
    draw the mixtures. A resumed run must validate on the same ones; a run folder moved to another machine, its data
    elsewhere, still matches (the audio as decoded and resampled could differ in the last bit there)."""
    if items is None:
        return None
    digest = hashlib.sha256(repr((config.data.validation_mixtures, config.data.validation_interferers,
                                  config.model.sample_rate)).encode())
    for item in items:
        digest.update(item.label.encode())
        try:
            with open(item.path, "rb") as f:
                digest.update(hashlib.sha256(f.read()).digest())
        except OSError:  # left out of the validation clips, as ClipBank leaves it out
            digest.update(b"unreadable")
    return digest.hexdigest()


def _csv_logger(*args, **kwargs):
    """Lightning's CSV log, writing a validation row's epoch as the whole number it is (self.log makes it float)."""
    from lightning.pytorch.loggers import CSVLogger

    class WholeEpochs(CSVLogger):
        def log_metrics(self, metrics, step=None):
            super().log_metrics({key: int(value) if key == "epoch" else value for key, value in metrics.items()}, step)

    return WholeEpochs(*args, **kwargs)


class _NoTips(logging.Filter):
    """Lightning's info lines that advertise its cloud services ("💡 Tip: ... try installing litlogger"), and
    under --quiet (`quiet` set) all its info lines (devices found, why fit stopped)."""

    quiet = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.quiet or str(record.msg).startswith("💡 Tip:"))


@contextlib.contextmanager
def without_lightning_noise(resumed: bool, quiet: bool = False):
    """Lightning's lines that a user cannot act on, kept out of the training output."""
    lightning_info = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    tips = next((f for f in lightning_info.filters if isinstance(f, _NoTips)), None)
    if tips is None:
        tips = _NoTips()
        lightning_info.addFilter(tips)
    tips.quiet = quiet
    with warnings.catch_warnings():
        # Lightning's own use of a torch API that torch 2.13 deprecates
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
        if resumed:  # resuming writes into the run's own checkpoint folder by design
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
            # a run resumed without max_time has no timer to give the checkpoint's timer state to
            warnings.filterwarnings("ignore", message=r".*Please add the following callbacks: \['Timer'\]")
        try:
            yield
        finally:
            tips.quiet = False  # later Lightning lines in this process are shown again


# the share of training clips below the model's rate from which the trained model hears such input as it is
BAND_LIMITED_SHARE = 0.25


def band_fill_for(bank: ClipBank) -> bool:
    """Whether the trained model should hear an input's empty upper band filled (ModelConfig.band_fill): not when
    a quarter or more of its training clips came from files below its rate, whose empty band it learned from. A
    model fine-tuned on spoken digits at 8 kHz scored 0.9 dB SI-SDRi lower filled than heard as it was
    (docs/benchmarks.md, "Band-limited input")."""
    limited = sum(bank.band(k) < bank.sample_rate / 2 for k in range(len(bank)))
    fill = limited < BAND_LIMITED_SHARE * len(bank)
    if not fill and first_process():
        print(f"lass: note: {limited} of {len(bank)} training clips are below the model's "
              f"{bank.sample_rate} Hz: the model will hear such input as it is, without the engine's fill of its "
              f"empty upper band (model.band_fill: false; set it in the config to choose)", file=sys.stderr, flush=True)
    return fill


def settle_config(config: TrainConfig, init: str | None, resume: str | None, checkpoint: dict | None = None):
    """What a run trains, whatever its config's model section says: the architecture of the checkpoint it resumes,
    else of the model it fine-tunes (returned, with its weights), and a learning rate where the config sets none:
    the rate the resumed run started with, else one for fine-tuning or from scratch. `checkpoint`: `resume`'s
    contents, where already read."""
    from ..models import registry

    from .module import state_layout

    if resume and init:
        raise ValueError("--init starts a new run from a model and --resume goes on with a run: give one of them")
    if resume and checkpoint is None:
        checkpoint = read_checkpoint(resume)
    initial = registry.load(init) if init and checkpoint is None else None  # a resumed run has its weights
    if checkpoint is not None:
        trained, planned = checkpoint.get("global_step", 0), trainer_settings(config).get("max_steps", -1)
        if planned is not None and 0 <= planned <= trained:
            raise ValueError(f"{resume} has trained {trained} steps already, and trainer.max_steps is {planned}: set "
                             f"max_steps above {trained} to train on (--set max_steps=N)")
        scheduled = checkpoint.get("lass_max_steps")
        if (isinstance(scheduled, int) and 0 < scheduled != planned and planned is not None and planned > 0
                and first_process()):
            print(f"lass: note: {resume} planned its learning-rate schedule (warm-up, then cosine decay) over "
                  f"{scheduled} steps, and this run plans {planned} (trainer.max_steps): the schedule is "
                  f"{'stretched' if planned > scheduled else 'squeezed'} to end at step {planned}, so from step "
                  f"{trained} on the rate follows the new one", file=sys.stderr, flush=True)
        layout = checkpoint.get("lass_state_layout", {})
        for key, value in state_layout(config.optim).items():
            if key in layout and layout[key] != value:
                name = key.split(" ")[0]  # "optim.ema_decay above 0": True -> "optim.ema_decay above 0"

                def said(v) -> str:
                    return f"{name} {'above 0' if v else 'at 0'}" if isinstance(v, bool) else f"{name} {v}"

                raise ValueError(f"{resume} was trained with {said(layout[key])}, and this config has {said(value)}: "
                                 f"{_resume_as_it_ran(resume)}")
        optim_changes(config, checkpoint, resume)
        saved = ModelConfig.from_json(checkpoint["lass_model_config"])
        if architecture_overridden(config.model, saved):  # as with --init (a fine-tune's was noted at every resume)
            print(f"lass: note: --resume keeps the architecture of the run it resumes ({resume}); the config's "
                  f"model architecture ({', '.join(ARCHITECTURE)}) is not used", file=sys.stderr, flush=True)
        config.model = saved
    elif initial is not None:  # the sample rate and text encoder are the initial model's
        config.model = fine_tune_config(config.model, initial.config, init)
    elif (config.model.source or "").startswith(FINE_TUNED):  # a fine-tuned run's recorded config
        print(f"lass: warning: this config's model was fine-tuned ({config.model.source.split(',')[0]}); without "
              f"--init this run trains from scratch, so its model's source is set to '{ModelConfig.source}', not "
              f"the fine-tune's. Add the same --init to fine-tune again", file=sys.stderr, flush=True)
        config.model.source = ModelConfig.source  # the model file must not claim a fine-tune it was not
    started = checkpoint.get("lass_lr") if checkpoint is not None else None
    if started is not None and config.optim.lr not in (None, started):
        # Lightning restores the optimizer and its schedule, which would keep the run's rate without a word
        print(f"lass: note: --resume continues the run's learning-rate schedule (optim.lr {started:g}); the "
              f"config's optim.lr {config.optim.lr:g} is not used. To train on at another rate, start a new run "
              f"from this one's model: --init {run_model(resume)}",
              file=sys.stderr, flush=True)
    if started is None and config.optim.lr is None and initial is not None:
        _say(f"fine-tuning {init} at optim.lr {FINE_TUNE_LR:g} (set optim.lr to choose another rate)")
    config.optim.lr = started or config.optim.lr or (FINE_TUNE_LR if initial is not None else SCRATCH_LR)
    check_crops(config)  # against the STFT of the model the run trains
    max_steps = trainer_settings(config).get("max_steps", -1)
    if resume is None and isinstance(max_steps, int) and 0 < max_steps < config.optim.warmup_steps:
        print(f"lass: note: the learning rate warms up over optim.warmup_steps {config.optim.warmup_steps}, and this "
              f"run stops at step {max_steps}: it never reaches optim.lr {config.optim.lr:g} (a short run: set "
              f"optim.warmup_steps to a tenth of its steps or so)", file=sys.stderr, flush=True)
    # an epoch is steps_per_epoch optimizer steps, shared by the processes of a multi-process run (each draws its
    # part of the epoch's mixtures), unless batches are accumulated or limited, or the processes are not
    # counted in numbers ("auto"): then not said
    processes = [config.trainer.get(key, 1) for key in ("devices", "num_nodes")]
    plain_epochs = (not {"accumulate_grad_batches", "limit_train_batches"} & set(config.trainer)
                    and all(isinstance(n, int) and n > 0 for n in processes))
    # each process gets its share of the epoch's examples, rounded up (DistributedSampler), in whole batches
    batch = config.data.batch_size
    steps = max(1, -(-config.data.steps_per_epoch * batch // math.prod(processes)) // batch) if plain_epochs else 0
    unreached = [phase["from_epoch"] for phase in config.data.phases if plain_epochs and isinstance(max_steps, int)
                 and 0 < max_steps <= phase["from_epoch"] * steps]
    if unreached:  # the recipe's from_epoch: 5, copied into a short run
        print(f"lass: note: data.phases from epoch {min(unreached)} start at step {min(unreached) * steps} ({steps} "
              f"step{'s' * (steps != 1)} an epoch), and this run stops at step {max_steps}: they are never trained",
              file=sys.stderr, flush=True)
    return initial


# restored with the optimizer's state, whatever the config says (its parameter groups carry them)
OPTIMIZER_STATE = ("weight_decay", "muon_lr_scale")


def optim_changes(config: TrainConfig, checkpoint: dict, resume: str) -> None:
    """Optim settings a resumed run's config changes: those restored with the optimizer are the run's (and
    recorded so), the others apply from here on; both said, not taken or dropped silently. lr: settle_config."""
    recorded = checkpoint.get("lass_optim")  # None: a checkpoint of an older lass, which did not record them
    if not isinstance(recorded, dict):
        return
    changed = [key for key, value in recorded.items()
               if key != "lr" and hasattr(config.optim, key) and getattr(config.optim, key) != value]
    unused = {"muon_lr_scale"} if config.optim.optimizer != "muon" else set()  # read by Muon alone
    kept = [key for key in changed if key in OPTIMIZER_STATE and key not in unused]
    taken = [key for key in changed if key not in OPTIMIZER_STATE and key not in unused]
    said = lambda keys, values: ", ".join(f"optim.{key} {values[key]!r}" for key in keys)  # noqa: E731
    if kept and first_process():
        print(f"lass: note: --resume keeps the run's {said(kept, recorded)} (restored with its optimizer's state); "
              f"the config's {said(kept, vars(config.optim))} is not used. To train on with another, start a new "
              f"run from this one's model: --init {run_model(resume)}", file=sys.stderr, flush=True)
    for key in kept:
        setattr(config.optim, key, recorded[key])  # so that the run's recorded config says what it trains with
    if taken and first_process():
        print(f"lass: note: this run changes {said(taken, vars(config.optim))} (the run had "
              f"{said(taken, recorded)}): taken from step {checkpoint.get('global_step', 0)} on",
              file=sys.stderr, flush=True)


def settle_model(config: TrainConfig, init: str | None, resume: str | None, checkpoint: dict | None = None):
    """The config as the run trains it (`settle_config`), with the query size of its text encoder, and (the initial
    model or None, the encoder). `lass train --print-config` shows the config so settled."""
    initial = settle_config(config, init, resume, checkpoint)
    encoder = shared_text_encoder(config.model.text_encoder)
    config.model.query_dim = encoder.dim
    return initial, encoder


def run_folder(checkpoint: str | os.PathLike) -> Path | None:
    """The run folder a checkpoint was written in (RUN/checkpoints/NAME.ckpt), or None for one kept elsewhere."""
    path = Path(checkpoint)
    return path.parent.parent if path.parent.name == "checkpoints" else None


def run_model(checkpoint: str | os.PathLike) -> str:
    """For a hint: the model file of the run a checkpoint belongs to, or how to make one from a checkpoint kept
    outside its run folder."""
    folder = run_folder(checkpoint)
    return (str(folder / "model.safetensors") if folder is not None else
            f"MODEL.safetensors (made by: lass export {checkpoint} -o MODEL.safetensors)")


def say_steps_given_up(out: Path, resume: str | None, resumed: dict | None) -> None:
    """Resumed from a checkpoint older than the folder's last.ckpt (its best.ckpt, say): the steps after it are
    given up, as this run's checkpoints replace last.ckpt (which every hint resumes from) and best.ckpt."""
    if resumed is None or not first_process():
        return
    step, later = resumed.get("global_step", 0), {}
    for name in ("last.ckpt", "best.ckpt"):
        path = out / "checkpoints" / name
        if not path.is_file() or os.path.samefile(path, resume):  # the one resumed from holds no later step
            continue
        try:
            held = read_checkpoint(path).get("global_step", 0)
        except (ValueError, OSError):  # none there, or a damaged one, which is replaced all the same
            continue
        if held > step:
            later[name] = held
    if later:
        files = " and ".join(f"{name} (step {held})" for name, held in later.items())
        print(f"lass: note: resuming from step {step}: the steps after it in {out / 'checkpoints'}'s {files} are "
              f"given up, as this run's checkpoints replace {'them' if len(later) > 1 else 'it'} (copy "
              f"{'them' if len(later) > 1 else 'it'} elsewhere to keep them)", file=sys.stderr, flush=True)


def _resume_as_it_ran(resume: str) -> str:
    """What to do instead of resuming a run with settings that its checkpoint cannot carry on with."""
    return (f"resume with the run's own settings (its logs/version_*/config.yaml), or start a new run from its model "
            f"with --init {run_model(resume)}")


def _say(text: str) -> None:
    print(f"lass train: {text}", file=sys.stderr, flush=True)


def refuse_earlier_run(out: Path, resume: str | None = None) -> None:
    """Two runs in one folder would mix their checkpoints and logs (Lightning writes last-v1.ckpt beside the
    earlier run's last.ckpt), and the new model.safetensors would silently replace the earlier one. `resume`: the
    checkpoint of another folder's run, resumed into this one."""
    found = sorted((out / "checkpoints").glob("*.ckpt")) if (out / "checkpoints").is_dir() else []
    if found and resume:  # the run meant is elsewhere: the config's output_dir is not its folder
        home = run_folder(resume) or "ITS_RUN_FOLDER"
        raise ValueError(f"{out} (the output folder: the config's output_dir, or --output) already holds another "
                         f"training run: to go on with {resume} in its own folder, give --output {home}, or a new "
                         f"folder with --output NEW_FOLDER")
    if found:
        last = out / "checkpoints" / "last.ckpt"
        raise ValueError(f"{out} already holds a training run ({found[0]}): resume it with --resume "
                         f"{last if last.exists() else found[0]}, or start a new run in another folder with "
                         f"--output NEW_FOLDER (or delete {out})")
    if (out / "model.safetensors").exists():  # a run whose checkpoints were deleted to save space
        raise ValueError(f"{out} already holds a model ({out / 'model.safetensors'}): start a new run in another "
                         f"folder with --output NEW_FOLDER (or move the model away)")


LOCK_NAME = ".lass-train.lock"


def first_process() -> bool:
    """Whether this is the first process of a run (the others of a multi-process run work under its lock)."""
    try:
        from lightning.fabric.utilities.rank_zero import _get_rank  # RANK, LOCAL_RANK, SLURM_PROCID, ...

        rank = _get_rank()
    except ImportError:  # pragma: no cover - a Lightning without it
        rank = int(os.environ.get("LOCAL_RANK", "0"))
    return rank in (None, 0) and os.environ.get("NODE_RANK", "0") == "0"


def _lock(out: Path, keep: bool):
    """The run folder's lock (an exclusive flock, which the system releases when its process ends, however it
    ends): the open lock file where it was taken and `keep`, None where taken and let go or where the system has
    no such locks; a ValueError naming the holder where another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on this project's platforms
        return None
    path = out / LOCK_NAME
    try:
        handle = open(path, "a+")
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ValueError(f"another lass train ({holder}) is writing to {out} (it holds {path}): wait for it to end, "
                         f"or choose another folder with --output") from None
    except OSError:  # a file system without locks
        handle.close()
        return None
    if not keep:
        handle.close()
        return None
    import socket

    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} on {socket.gethostname()}")
    handle.flush()
    return handle


def take_run_lock(out: Path):
    """Two trainings started into one folder at once would both pass `refuse_earlier_run` (neither has written a
    checkpoint yet), then mix their checkpoints and replace each other's model: the first to start holds the folder
    until it ends. Returns the lock to release (`release_run_lock`), None in the other processes of a run."""
    return _lock(out, keep=True) if first_process() else None


def release_run_lock(handle) -> None:
    Path(handle.name).unlink(missing_ok=True)  # while still held: a run starting now finds no lock to wait for
    handle.close()


def check_output_folder(folder: Path) -> None:
    """Before the data loads: a run folder that could not be made would otherwise fail after minutes of loading."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output folder {folder} is a file: choose a folder with --output")
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"cannot make the output folder {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot make the output folder {folder}: {existing} is not writable")


def train(config: TrainConfig, resume: str | None = None, init: str | None = None,
          progress: bool = True) -> Path | None:
    """Trains and exports `output_dir/model.safetensors`; returns its path (None in the other processes of a
    multi-process run, which write nothing)."""
    locks: list = []
    try:
        return _train(config, resume, init, progress, locks)
    finally:
        for lock in locks:
            release_run_lock(lock)


def _train(config: TrainConfig, resume: str | None, init: str | None, progress: bool, locks: list):
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import LearningRateMonitor

    from ..models import registry
    from ..signals import StoppedBySignal, signals_held
    from .checkpoints import RunCheckpoint
    from .module import LassModule, MixtureData
    from .progress import KeepConfig, ProgressLines, progress_bar
    from .stopping import StopOnSignal

    check_trainer_settings(config.trainer)  # with --set's overrides, before the data loads
    config.output_dir = os.path.expanduser(config.output_dir)  # Lightning expands `~` in its own paths: one folder
    check_output_folder(Path(config.output_dir))
    if first_process() and Path(config.output_dir, LOCK_NAME).exists():  # before the data loads: say it now
        _lock(Path(config.output_dir), keep=False)
    resumed = read_checkpoint(resume) if resume else None  # once, before anything is checked against it
    home = run_folder(resume) if resume else None
    resumed_here = home is not None and os.path.realpath(home) == os.path.realpath(config.output_dir)
    if not resumed_here:  # a new run, or one resumed into another folder: that folder must not hold a run
        refuse_earlier_run(Path(config.output_dir), resume)
    L.seed_everything(config.seed, verbose=False)
    initial, encoder = settle_model(config, init, resume, resumed)  # before the data: its rate is the model's
    say_steps_given_up(Path(config.output_dir), resume, resumed)  # once the resume is not refused
    out = Path(config.output_dir)

    try:
        items = [item for spec in config.data.train for item in read_dataset(spec)]
    except (ValueError, OSError) as err:
        raise ValueError(f"data.train: {err}") from None
    if not items:
        raise ValueError("the training data is empty: check data.train in the config")
    items, repeated = merge_repeated_files(items)
    if repeated and first_process():
        print(f"lass: {len(repeated)} training file{'s are' if len(repeated) > 1 else ' is'} listed more than once "
              f"in data.train (first: {repeated[0]}): each is one clip, with its first listing's label and the "
              f"other captions as more ways to ask for it", file=sys.stderr, flush=True)
    validation_items = None
    if config.data.validation:
        try:
            validation_items = read_dataset(config.data.validation)
        except (ValueError, OSError) as err:  # say which part of the config it is about
            raise ValueError(f"data.validation: {err}") from None
        # scores on clips the model trains on say nothing of new recordings
        heard = {os.path.realpath(item.path) for item in items}
        shared = sum(os.path.realpath(item.path) in heard for item in validation_items)
        if shared and first_process():
            print(f"lass: warning: {shared} validation clip{'s are' if shared > 1 else ' is'} also in the training "
                  f"data: validation scores will be too high (use held-out clips, e.g. another fold)",
                  file=sys.stderr, flush=True)
    validation_id = fingerprint(validation_items, config)
    started_from = None  # a fine-tune's starting model and its validation SDRi: {"model": ..., "sdri": ...}
    if resumed is not None:  # its best checkpoint was chosen on its own validation mixtures: others do not compare
        recorded = resumed.get("lass_validation")
        started_from = resumed.get("lass_initial")
        if recorded is not None and recorded != validation_id:
            other = ("on mixtures this config does not make (it has no data.validation)" if validation_id is None else
                     "on other mixtures than this config's data.validation makes (other clips, validation_mixtures "
                     "or validation_interferers)")
            raise ValueError(f"{resume} was validated {other}, so its best checkpoint could not be compared with the "
                             f"steps to come: {_resume_as_it_ran(resume)}")
    bank = ClipBank(items, config.model.sample_rate, kind="training")
    if not bank.clips:
        raise ValueError(f"none of the {len(items)} training clips could be used (see the lines above)")
    if config.model.band_fill is None:  # not set in the config (nor decided by the run this one resumes)
        config.model.band_fill = band_fill_for(bank)
    if len(bank.label_names) < 2:
        raise ValueError("training needs at least two classes (labels) to build mixtures")
    groups = sound_groups(bank.label_names) if config.data.mixing.group_prob > 0 else {}
    table, query_index = build_query_table(bank.label_names, encoder, bank.captions, list(groups))
    dataset = TrainingMixtures(bank, config.data.mixing, query_index, config.data.examples_per_epoch,
                               config.seed, groups)
    data = MixtureData(dataset, config.data, build_validation(config, encoder, validation_items))
    module = LassModule(config, table, len(bank.label_names))
    module.model.vocabulary = training_vocabulary(table, initial, resumed)
    module.validation_id = validation_id
    module.started_from = started_from
    if initial is not None:
        module.model.load_state_dict(initial.state_dict())

    keep_config = KeepConfig(config, resume, init)
    stopper = StopOnSignal(validates=data.validation is not None)  # Ctrl-C: finish the step, keep it
    callbacks = [LearningRateMonitor("step"), keep_config, stopper]
    if config.optim.ema_decay > 0:
        from lightning.pytorch.callbacks import EMAWeightAveraging

        callbacks.append(EMAWeightAveraging(decay=config.optim.ema_decay))
    best_checkpoint = None
    if data.validation is not None:
        # before the "last" checkpoint, so that last.ckpt carries this epoch's best score and path: resuming
        # from it then overwrites best.ckpt only with a better model, instead of writing best-v1.ckpt beside it.
        # It saves at validation's end only: a resumed run replays the restored epoch's end before any validation,
        # which made it look for a score that was not there (Lightning's "could not find the monitored key")
        # (both callbacks: best.ckpt and last.ckpt are always those names; resumed from an older checkpoint,
        # Lightning's version counter wrote last-v1.ckpt beside a last.ckpt of the steps given up)
        best_checkpoint = RunCheckpoint(dirpath=out / "checkpoints", filename="best", monitor="val_sdri",
                                         mode="max", save_top_k=1, save_on_train_epoch_end=False,
                                         resumed_from=resume, enable_version_counter=False)
        callbacks.append(best_checkpoint)
    callbacks.append(RunCheckpoint(dirpath=out / "checkpoints", filename="last", save_last=False,
                                    every_n_epochs=1, save_top_k=1, enable_version_counter=False))
    bar = progress and sys.stderr.isatty()
    step_bar = progress_bar() if bar else None
    if step_bar is not None:
        callbacks.append(step_bar)
    if progress and not bar:  # output to a log file: the redrawn bar would show nothing until the end
        callbacks.append(ProgressLines())
    trainer_args = choose_precision({"enable_progress_bar": bar, **trainer_settings(config)})
    keep_config.precision = trainer_args.get("precision")
    if data.validation is None:  # no empty validation loop (Lightning warned of its zero length)
        trainer_args.setdefault("limit_val_batches", 0)
        _say("no data.validation in the config: no validation scores, and the exported model is the last one")
    with without_lightning_noise(resumed=bool(resume), quiet=not progress):
        try:
            trainer = L.Trainer(default_root_dir=str(out), logger=_csv_logger(str(out), name="logs"),
                                callbacks=callbacks, **trainer_args)
        except (TypeError, ValueError, MisconfigurationException, ModuleNotFoundError) as err:  # a value Lightning
            raise ValueError(f"trainer: {err}") from None  # refuses, or a device whose package is missing (tpu)
        out.mkdir(parents=True, exist_ok=True)  # after data and trainer: a mistake there leaves no empty folder
        locks.extend(lock for lock in [take_run_lock(out)] if lock is not None)
        try:
            if initial is not None and not resume and data.validation is not None:
                # the score to beat: whether fine-tuning helped is the first thing its user asks
                scores = trainer.validate(module, data.val_dataloader(), verbose=False)[0]
                module.started_from = {"model": str(init), "sdri": float(scores["val_sdri"])}  # kept by checkpoints
                if trainer.is_global_zero:
                    _say(f"the initial model ({init}) on the validation data: SDRi {scores['val_sdri']:.2f} dB, "
                         f"SI-SDRi {scores['val_si_sdri']:.2f} dB")
            trainer.fit(module, datamodule=data, ckpt_path=resume)  # read_checkpoint has read it weights-only first
        except SystemExit:  # how Lightning ends a run after Ctrl-C and its graceful shutdown (SIGINT ignored now)
            if trainer.is_global_zero:
                keep_what_was_trained(out, trainer.global_step, module.started_from)
            raise KeyboardInterrupt from None
    max_steps = trainer_args.get("max_steps", -1)
    # a signal in the last step or validation of a finished run stops nothing: the run ends as it would
    stopped = stopper.signum is not None and not 0 < max_steps <= trainer.global_step
    if (trainer_args.get("max_time") and 0 < max_steps and trainer.global_step < max_steps and not trainer.interrupted
            and not stopped):
        # a slower machine than the recipe's reaches the time limit first: the model is then a truncated one
        print(f"lass: warning: trainer.max_time ({trainer_args['max_time']}) stopped training at step "
              f"{trainer.global_step} of {max_steps}, so the model is not what the config's full run gives. To go "
              f"on from where it stopped: {go_on_command(out, out / 'checkpoints' / 'last.ckpt')} "
              f"--set max_time=DD:HH:MM:SS "
              f"(a longer limit; Lightning's timer counts the time trained so far). Lightning will warn that the "
              f"checkpoint ended inside an epoch: the rest of that epoch then repeats its first mixtures instead of "
              f"drawing new ones, while the steps, schedule, optimizer and timer carry on", file=sys.stderr, flush=True)

    best = out / "checkpoints" / "best.ckpt"
    if best_checkpoint is not None and best_checkpoint.best_model_path:
        best = Path(best_checkpoint.best_model_path)  # the file the callback keeps, whatever it is named
    best_score = None  # the best validation SDRi of the run
    if best_checkpoint is not None and best_checkpoint.best_model_score is not None:
        best_score = float(best_checkpoint.best_model_score)
    score = None  # the validation SDRi of the steps trained since the last check
    if best_checkpoint is not None and module.validated_step != trainer.global_step:
        # stopped between validations (max_steps, max_time or Ctrl-C inside an epoch): the steps since the
        # last check are validated too, so the exported model is not silently an older one
        try:
            with without_lightning_noise(resumed=bool(resume), quiet=not progress):
                score = trainer.validate(module, data.val_dataloader(), verbose=False)[0]["val_sdri"]
        except SystemExit:  # Ctrl-C during that validation (Lightning's graceful shutdown): keep what was checked
            if trainer.is_global_zero:
                keep_what_was_trained(out, trainer.global_step, module.started_from)
            raise KeyboardInterrupt from None
    with signals_held():  # a Ctrl-C now waits until the last files are whole, then stops the run
        if score is not None and (best_score is None or score > best_score):
            best_checkpoint.record_best(best, score)
            trainer.save_checkpoint(best, weights_only=False)
            best_score = score
            last = out / "checkpoints" / "last.ckpt"
            if trainer.is_global_zero and last.exists():
                best_checkpoint.rewrite_record(last)
        if module.started_from is not None and best_score is not None and trainer.is_global_zero:
            say_what_fine_tuning_gained(best_score, module.started_from)
        source = best if best.exists() else out / "checkpoints" / "last.ckpt"
        if not trainer.is_global_zero:
            return None
        if stopped:  # exports the best model as below, says how to go on, and exits as interrupted
            keep_what_was_trained(out, trainer.global_step)
            raise StoppedBySignal(stopper.signum)
        model = load_checkpoint(source) if source.exists() else module.model
        return registry.save_model(model, out / "model.safetensors")


def say_what_fine_tuning_gained(best_score: float, started_from: dict) -> None:
    """Whether fine-tuning helped is the first thing its user asks: the best score against the starting model's,
    also after a resume or Ctrl-C (the checkpoints keep the starting score)."""
    initial, model = started_from["sdri"], started_from["model"]
    if best_score > initial:
        _say(f"fine-tuning raised validation SDRi from {initial:.2f} ({model}) to {best_score:.2f} dB")
    else:
        print(f"lass: warning: fine-tuning did not beat the initial model on the validation data (best "
              f"{best_score:.2f} dB SDRi against {initial:.2f} dB before training); the exported model is the "
              f"best fine-tuned one. Try a lower optim.lr, fewer steps or more training clips, or keep "
              f"using {model}", file=sys.stderr, flush=True)


def go_on_command(out: Path, checkpoint: Path) -> str:
    """The whole command that carries a run on from `checkpoint`, with the config the run recorded last (its
    `--set` overrides included: the config file alone may make other validation mixtures, and be refused)."""
    def version(path: Path) -> int:
        number = path.parent.name.removeprefix("version_")
        return int(number) if number.isdigit() else -1

    recorded = max(out.glob("logs/version_*/config.yaml"), key=version, default=None)
    config = shlex.quote(str(recorded)) if recorded is not None else "CONFIG.yaml"
    return f"lass train --config {config} --resume {shlex.quote(str(checkpoint))} --output {shlex.quote(str(out))}"


def keep_what_was_trained(out: Path, step: int, started_from: dict | None = None) -> None:
    """After Ctrl-C: the best model so far becomes model.safetensors, and the run says how to go on."""
    from ..models import registry
    from .checkpoints import recorded_best

    best, last = out / "checkpoints" / "best.ckpt", out / "checkpoints" / "last.ckpt"
    source = best if best.exists() else last
    if not source.exists():
        _say(f"stopped at step {step}, before the first checkpoint: nothing was kept")
        return
    kept = read_checkpoint(source)
    path = registry.save_model(load_checkpoint(source, kept), out / "model.safetensors")
    what = "the best validated model" if source == best else "the model"
    go_on = last if last.exists() else source
    go_on_step = kept["global_step"] if go_on == source else read_checkpoint(go_on)["global_step"]
    _say(f"stopped at step {step}; {path} holds {what} so far (step {kept['global_step']}). "
         f"To go on from step {go_on_step}: {go_on_command(out, go_on)}")
    best_score = recorded_best(kept)
    if started_from is not None and best_score is not None:
        say_what_fine_tuning_gained(best_score, started_from)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """A `lass train` checkpoint's contents; anything else (a config, a damaged file) is one clear error."""
    from ..models import registry

    if registry.is_safetensors(path):  # by its contents: a checkpoint renamed .safetensors is still a checkpoint
        try:
            registry.read_config(path)
        except registry.ModelNotFound as err:  # a model file that does not load: say why, not "not a pickle"
            raise ValueError(f"{err}; not a training checkpoint either") from None  # our own line: not cut
        raise ValueError(f"{path}: an exported model, not a training checkpoint: separate with it (-m {path}), or "
                         f"fine-tune from it (lass train --init {path}); checkpoints are the .ckpt files of a run's "
                         f"checkpoints/ folder")
    neither = f"{path}: neither a lass training checkpoint nor a lass model file"
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ValueError(f"{neither} (an empty file)")
    try:  # weights only: tensors and plain values, so a checkpoint from elsewhere cannot run code when read
        with open(path, "rb") as file:  # a file, not a name: torch reads a name ending in .safetensors as one
            ckpt = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's weights-only reader: objects beyond those, or not a pickle
        if "Unsupported global" not in str(err):
            raise ValueError(f"{neither} (not a PyTorch or safetensors file)") from None
        raise ValueError(f"{path}: not a lass training checkpoint (it holds Python objects beyond tensors and "
                         "plain values, which lass does not load)") from None
    except Exception as err:  # zip and torch have their own ways of saying "not a checkpoint"
        raise ValueError(f"{neither} (unreadable: {type(err).__name__})") from None
    if not isinstance(ckpt, dict) or "lass_model_config" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a lass training checkpoint")
    return ckpt


def load_checkpoint(path: str | os.PathLike, ckpt: dict | None = None):
    """Lightning checkpoint -> MaskSeparator (for `lass export`); `ckpt`: its contents, where already read. A
    config or weights that do not fit this lass (a checkpoint of an older network) are one line naming the file."""
    from ..models import registry
    from ..models.separator import MaskSeparator

    ckpt = read_checkpoint(path) if ckpt is None else ckpt
    try:
        model = MaskSeparator(ModelConfig.from_json(ckpt["lass_model_config"]))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: its model config is unusable here ({first_line(err)})") from None
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
        vocabulary = ckpt.get("lass_query_vocabulary")  # None: a checkpoint from before query anchoring
        model.vocabulary = None if vocabulary is None else vocabulary.float()
    except RuntimeError as err:
        raise ValueError(f"{path}: the weights do not match the model its config describes "
                         f"({registry.weights_mismatch(err)})") from None
    return model.eval()
