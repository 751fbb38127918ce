"""A batch sampler indexed by the number of batches consumed, for exact resumption.

Batch ``k`` of the run is a pure function of ``(seed, k, rank, world_size)``: the epochs
of any :class:`EpochBatches` (for proteins, ``LengthBatchSampler``) are laid end to end.
The :class:`BatchCounter` callback counts the batches the trainer has handed to the
training step; a resumed run restores it from the checkpoint and the sampler continues
from there, whatever the trainer thinks an epoch is.

The counter is not ``trainer.global_step``: a batch skipped for a non-finite loss is
consumed without an optimiser step, and the next step must see the next batch.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import lightning as L
from torch.utils.data import Sampler


class EpochBatches(Protocol):
    """Seeded epochs of batches: what :class:`StepBatchSampler` lays end to end."""

    def num_batches(self, epoch: int) -> int:
        """Number of batches in ``epoch`` (for this rank)."""

    def batches(self, epoch: int) -> Sequence[Sequence[int]]:
        """The batches of ``epoch``: lists of dataset indices."""


class BatchCounter(L.Callback):
    """Number of training batches consumed so far, shared by the training step and the sampler.

    Incremented when a batch reaches the training step (``on_train_batch_start``), so inside
    ``training_step`` the batch being processed has index ``value - 1``. Saved in the
    checkpoint as ``checkpoint[checkpoint_key]["batches_consumed"]`` (an int).
    """

    def __init__(self, value: int = 0, checkpoint_key: str = "multiflow_gm"):
        self.value = int(value)
        self.checkpoint_key = checkpoint_key

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.value += 1

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint.setdefault(self.checkpoint_key, {})["batches_consumed"] = self.value

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self.value = int(checkpoint[self.checkpoint_key]["batches_consumed"])


def batch_counter(trainer: L.Trainer) -> BatchCounter:
    """The trainer's one :class:`BatchCounter` callback."""
    counters = [c for c in trainer.callbacks if isinstance(c, BatchCounter)]
    if len(counters) != 1:
        raise RuntimeError(f"the trainer needs exactly one BatchCounter callback; it has {len(counters)}")
    return counters[0]


class StepBatchSampler(Sampler):
    """Yields batches ``counter.value, counter.value + 1, ...`` up to ``total_batches`` (exclusive).

    Each batch is a list of ``(index, epoch)`` pairs so the dataset can seed per-epoch choices.
    """

    def __init__(self, epochs: EpochBatches, counter: BatchCounter, total_batches: int):
        if epochs.num_batches(0) == 0:
            raise ValueError("the dataset yields no batch for this rank (too few chains?)")
        self.epochs = epochs
        self.counter = counter
        self.total_batches = int(total_batches)
        self._epoch_sizes: list[int] = []

    def _epoch_size(self, epoch: int) -> int:
        while len(self._epoch_sizes) <= epoch:
            self._epoch_sizes.append(self.epochs.num_batches(len(self._epoch_sizes)))
        return self._epoch_sizes[epoch]

    def batch_at(self, k: int) -> list:
        """The ``k``-th batch of the run (list of ``(index, epoch)`` pairs)."""
        epoch = 0
        while k >= (n := self._epoch_size(epoch)):
            k -= n
            epoch += 1
        return [(index, epoch) for index in self.epochs.batches(epoch)[k]]

    def __len__(self) -> int:
        return max(0, self.total_batches - self.counter.value)

    def __iter__(self):
        for k in range(self.counter.value, self.total_batches):
            yield self.batch_at(k)
