"""Ctrl+C and SIGTERM during training: stop at the next iteration with a resumable state saved.

Without this, a Ctrl+C (or a job scheduler's SIGTERM before its SIGKILL) loses every iteration
since the last save point. The first signal asks the loop to stop; a second one, later than
``SAME_REQUEST_S``, quits at once as Python normally would. One Ctrl+C under torchrun reaches
each worker twice within milliseconds (from the terminal, and from torchrun passing it on as
SIGTERM); both count as one request. torchrun gives its workers 30 s to exit before it kills
them: enough for an iteration and a save, not for a long validation.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SAME_REQUEST_S = 2.0


class StopRequest:
    """Context manager: while inside, ``name`` becomes "SIGINT"/"SIGTERM" once one arrives."""

    def __init__(self):
        self.name: str | None = None
        self.signum: int | None = None
        self._at = 0.0
        self._previous: dict = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():  # Python's rule for handlers
            self._previous = {s: signal.signal(s, self._receive) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def _receive(self, signum: int, frame) -> None:
        now = time.monotonic()
        if self.name is None:
            self.name, self.signum, self._at = signal.Signals(signum).name, signum, now
            print(f"{self.name}: stopping after this iteration with a resumable state saved "
                  f"(again to quit at once)", file=sys.stderr, flush=True)
        elif now - self._at > SAME_REQUEST_S:
            self.__exit__()
            raise KeyboardInterrupt


def leave_stop_signals_to_the_trainer(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: a Ctrl+C reaches the loader's workers too; one that died of
    it while the trainer waits for its batch would end the run with "worker exited unexpectedly"
    before the state is saved. The workers end with the training process anyway."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
