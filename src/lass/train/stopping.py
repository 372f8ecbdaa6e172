"""Stopping a run on Ctrl-C or SIGTERM without losing the steps since its last checkpoint.

Lightning's own handling of Ctrl-C stops at once, and a run then keeps only what its last checkpoint holds: the end
of its last epoch, which on a CPU can be an hour back. Here the first signal asks the run to stop after the step it
is in, as `max_time` does: the last checkpoint is written at that step, its weights are validated, and the best
model is exported. A second signal stops at once, as before.
"""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager

from lightning.pytorch.callbacks import Callback


class StoppedBySignal(KeyboardInterrupt):
    """The run stopped after a signal, with its steps kept; `signum` gives the exit status (130, 143)."""

    def __init__(self, signum: int):
        super().__init__()
        self.signum = signum


class StopOnSignal(Callback):
    """The first Ctrl-C or SIGTERM sets `trainer.should_stop`; the second raises KeyboardInterrupt at once.
    Only in a one-process run's main thread: the processes of a multi-process run would stop at different steps."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}
        self._trainer = None

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.world_size > 1 or threading.current_thread() is not threading.main_thread():
            return
        self._trainer = trainer
        for signum in self.SIGNALS:
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
        print("\nlass train: stopping after this step; its weights are saved, validated and exported "
              "(Ctrl-C again to stop at once, keeping only the last checkpoint)", file=sys.stderr, flush=True)


@contextmanager
def signals_held():
    """Ctrl-C or SIGTERM while a run writes its last checkpoint and model (seconds) waits until they are written,
    then interrupts: a signal in the middle left a `.part` file and no word of what was kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in StopOnSignal.SIGNALS}
    for signum in StopOnSignal.SIGNALS:
        signal.signal(signum, lambda signum, frame: came.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if came:
        raise StoppedBySignal(came[-1])
