"""Signals for commands that must finish what they write: which ones this process listens to, and holding them
back for the moments a command's last files are put in place."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


def handled_signals() -> list[int]:
    """Ctrl-C and SIGTERM, where this process listens to them: one started with SIGINT ignored (a script's
    background job) must not stop at a Ctrl-C meant for the terminal's foreground."""
    if threading.current_thread() is not threading.main_thread():
        return []
    return [signum for signum in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(signum) is not signal.SIG_IGN]


@contextmanager
def signals_held():
    """Ctrl-C or SIGTERM is ignored while a command puts its last files in place (a training run's checkpoint
    and model, an evaluation's tables), for a second or so: it is ending anyway, and a signal in the middle left
    half of them."""
    held = handled_signals()
    previous = {signum: signal.getsignal(signum) for signum in held}
    for signum in held:
        signal.signal(signum, lambda signum, frame: None)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
