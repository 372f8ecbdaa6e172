"""Signals for commands that must finish what they write: which ones this process listens to, and holding them
back for the moments a command's last files are put in place."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class StoppedBySignal(KeyboardInterrupt):
    """A command stopped by Ctrl-C or SIGTERM once what it was writing was whole; `signum` gives the exit status
    (130, 143)."""

    def __init__(self, signum: int):
        super().__init__()
        self.signum = int(signum)


def handled_signals() -> list[int]:
    """Ctrl-C and SIGTERM, where this process listens to them: one started with SIGINT ignored (a script's
    background job) must not stop at a Ctrl-C meant for the terminal's foreground."""
    if threading.current_thread() is not threading.main_thread():
        return []
    left_alone = (signal.SIG_IGN, None)  # None: a handler set from C, which Python can neither call nor put back
    return [signum for signum in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(signum) not in left_alone]


@contextmanager
def signals_held():
    """Holds Ctrl-C and SIGTERM back while a command puts its last files in place (a second or so: a signal in
    the middle left half of them), then hands the first that came to the handler it was held from: its files
    are whole, and it still stops as interrupted (`StoppedBySignal`, where that handler raises
    KeyboardInterrupt), so a shell loop around it stops too; a program's own handler decides for itself."""
    held = handled_signals()
    came: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in held}
    for signum in held:
        signal.signal(signum, lambda signum, frame: came.append(signum))
    whole = stopping = False
    try:
        yield
        whole = True
    except KeyboardInterrupt:  # the block stops the command itself (a run stopped by a signal): nothing to add
        stopping = True
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if came and not stopping:  # also where the block failed: the signal still stops the command
            _deliver(came[0], previous[came[0]], whole)


def _deliver(signum: int, handler, whole: bool) -> None:
    if callable(handler):
        try:
            handler(signum, None)
        except KeyboardInterrupt:  # Python's Ctrl-C, or lass's SIGTERM
            if not whole:
                raise
            raise StoppedBySignal(signum) from None  # said as stopped once the files were whole
    elif handler == signal.SIG_DFL:  # SIGTERM's default: the process ends as killed by it
        signal.raise_signal(signum)
