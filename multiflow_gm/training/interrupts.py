"""Ctrl-C (SIGINT) and SIGTERM during training end it the way ``max_steps`` does.

Without this callback, Lightning turns Ctrl-C into ``sys.exit(1)`` and SIGTERM into
a ``SIGTERMException``: ``trainer.fit`` never returns, so the caller writes no final
checkpoint, no ``summary.json`` and no EMA export. With it, the first signal only
sets a flag; at the end of the optimiser step in progress the trainer is asked to
stop (``trainer.should_stop``), ``fit`` returns normally and the caller's usual end
path runs. A second Ctrl-C while waiting raises ``KeyboardInterrupt`` as usual, for
a user who wants out at once.

Under DDP every rank takes part in one boolean all-reduce per step, so all ranks stop
after the same step even when only one of them received the signal.
"""

from __future__ import annotations

import signal
import threading

import lightning as L

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulInterrupt(L.Callback):
    """Turn SIGINT / SIGTERM into "stop after this step"; ``received`` names the signal seen (or None)."""

    def __init__(self, log=print):
        self.received: str | None = None
        self._previous: dict[int, object] = {}
        self._log = log

    # Installed at train start: Lightning registers its own SIGTERM handler when fit
    # begins, and this one must replace it for the run's duration.
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.received = None
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for signum in HANDLED_SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: the user does not want to wait
        self.received = name
        self._log(f"\n{name} received: stopping after the current step; the checkpoint, summary.json and "
                  "EMA export are written as at a normal end (Ctrl-C again to abort at once)")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        stop = trainer.strategy.reduce_boolean_decision(self.received is not None, all=False)
        if stop:
            trainer.should_stop = True

    def _restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()


def ignore_sigint_in_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=...)``: workers leave Ctrl-C to the main process.

    A terminal sends SIGINT to the whole process group; a worker that died of it would
    make the main process's next fetch fail before the graceful stop completes.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
