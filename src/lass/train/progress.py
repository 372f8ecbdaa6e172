"""What a run says as it goes: progress as plain lines, and the config it runs with, beside its log.

Progress as plain lines is for training whose output goes to a log file (`nohup lass train ... > log`).

Lightning's progress bar redraws one line in place: written to a file it shows nothing until the run ends, so a
run in the background (hours on a CPU) gave no sign of life. These lines say where it is and when it will end.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from .config import FINE_TUNED, TrainConfig, config_yaml


def _duration(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))  # "about 0 min" left a user wondering whether it had stopped
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


class ProgressLines(Callback):
    """A line after the first step (which includes compiling), then every `every` steps and after each validation."""

    def __init__(self, every: int = 100, stream=None):
        self.every = every
        self.stream = stream
        self._since = None  # (time, step) of the last line, for the rate
        self._first = True

    def _print(self, text: str) -> None:
        print(f"lass train: {text}", file=self.stream or sys.stderr, flush=True)

    def on_train_start(self, trainer, pl_module) -> None:
        self._since = (time.monotonic(), trainer.global_step)
        self._first = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or not (self._first or step % self.every == 0):
            return
        now = time.monotonic()
        elapsed, steps = now - self._since[0], step - self._since[1]
        line = f"step {step}" + (f"/{trainer.max_steps}" if trainer.max_steps > 0 else "")
        line += f" (epoch {trainer.current_epoch})"
        loss = trainer.callback_metrics.get("train_loss_step")
        if loss is not None:
            line += f", loss {float(loss):.2f}"
        if self._first:
            line += f", first step took {elapsed:.0f} s" if elapsed >= 1 else ", first step took under 1 s"
        elif steps > 0:
            per_step = elapsed / steps
            line += f", {per_step:.2f} s/step"
            if trainer.max_steps > step:
                line += f", about {_duration(per_step * (trainer.max_steps - step))} to step {trainer.max_steps}"
        self._print(line)
        self._first = False
        self._since = (now, step)

    def on_validation_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        if trainer.sanity_checking or not trainer.is_global_zero or "val_sdri" not in metrics:
            return
        if trainer.global_step == 0 and trainer.state.fn != TrainerFn.FITTING:
            return  # the initial model's score before fine-tuning, which lass train prints itself
        self._print(f"step {trainer.global_step} validation: SDRi {float(metrics['val_sdri']):.2f} dB, "
                    f"SI-SDRi {float(metrics['val_si_sdri']):.2f} dB")
        self._since = (time.monotonic(), trainer.global_step)  # validation time is not step time


def epochs_in_run(trainer) -> int | None:
    """How many epochs a run bounded by max_steps takes (every epoch has the same number of steps)."""
    per_epoch = trainer.num_training_batches
    if not trainer.max_steps or trainer.max_steps < 0 or not per_epoch or per_epoch == float("inf"):
        return None
    return math.ceil(trainer.max_steps / per_epoch)


def progress_bar() -> Callback | None:
    """Lightning's rich bar, saying how many epochs the run has: it said "Epoch 0/-2" for a run bounded by
    max_steps, as lass's runs are. None without rich, where Lightning's tqdm bar says "Epoch N"."""
    try:
        from lightning.pytorch.callbacks import RichProgressBar
        from lightning.pytorch.utilities.imports import _RICH_AVAILABLE
    except ImportError:
        return None
    if not _RICH_AVAILABLE:
        return None

    class StepBoundedBar(RichProgressBar):
        def _get_train_description(self, current_epoch: int) -> str:
            total = epochs_in_run(self.trainer)
            text = f"Epoch {current_epoch}/{total - 1}" if total else f"Epoch {current_epoch}"
            return f"{text:{len(self.validation_description)}}"

    return StepBoundedBar()


class KeepConfig(Callback):
    """Writes the run's every setting (defaults and `--set` overrides included) to `config.yaml` beside its CSV
    log, at each start or resume, so a run says what it was trained with and `lass train --config` can rerun it."""

    def __init__(self, config: TrainConfig, resume: str | None = None, init: str | None = None):
        self.config, self.resume, self.init = config, resume, init
        self.precision = None  # what precision: auto became on this machine

    def on_fit_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.logger is None or trainer.logger.log_dir is None:
            return
        from .. import __version__

        header = [f"lass train, lass {__version__}, torch {torch.__version__}, "
                  f"started {time.strftime('%Y-%m-%d %H:%M:%S')}"]
        if self.resume:
            header.append(f"resumed from {self.resume}")
        if self.config.trainer.get("precision") == "auto" and self.precision:
            header.append(f"precision auto -> {self.precision} on this machine")
        init = self.init
        source = self.config.model.source or ""
        if init is None and self.resume and source.startswith(FINE_TUNED):  # resumed: its first part had --init
            init = source[len(FINE_TUNED):].split(", from ")[0]
        init = f" --init {init}" if init else ""
        header.append(f"to train it again: lass train --config THIS_FILE{init} --output NEW_FOLDER (output_dir "
                      f"is this run's folder)")
        path = Path(trainer.logger.log_dir) / "config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config_yaml(self.config, "\n".join(header)))
