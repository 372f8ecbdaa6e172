"""Stopping a run on Ctrl-C or SIGTERM without losing the steps since its last checkpoint.

Lightning's own handling of Ctrl-C stops at once, and a run then keeps only what its last checkpoint holds: the end
of its last epoch, which on a CPU can be an hour back. Here the first signal asks the run to stop after the step it
is in, as `max_time` does: the last checkpoint is written at that step, its weights are validated, and the best
model is exported. A second signal stops at once, as before.
"""
from __future__ import annotations

import os
import signal

from lightning.pytorch.callbacks import Callback

from ..signals import handled_signals


class StopOnSignal(Callback):
    """The first Ctrl-C or SIGTERM sets `trainer.should_stop`; the second goes to the handler before ours (Ctrl-C:
    KeyboardInterrupt at once). Only in a one-process run: the processes of a multi-process run would stop at
    different steps."""

    def __init__(self, validates: bool = True):
        self.validates = validates  # whether the kept step is validated (the config has data.validation)
        self.signum: int | None = None
        self._previous: dict = {}
        self._trainer = None

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.world_size > 1:
            return
        self._trainer = trainer
        for signum in handled_signals():
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def on_train_end(self, trainer, pl_module) -> None:
        self.restore()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.restore()

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # the second: stop now, as the handler before ours would
            previous = self._previous.get(signum)
            self.restore()
            if callable(previous):
                previous(signum, frame)
            raise KeyboardInterrupt
        self.signum = signum
        self._trainer.should_stop = True
        kept = "saved, validated and exported" if self.validates else "saved and exported"
        when = "after this step" if self._trainer.fit_loop._can_stop_early else (
            "once trainer.min_steps or min_epochs are reached")
        # os.write, not print: a handler that runs while print holds stderr's lock would fail inside it
        os.write(2, f"\nlass train: stopping {when}; its weights are {kept} (a second Ctrl-C or SIGTERM stops at "
                    f"once, keeping only the last checkpoint)\n".encode())
