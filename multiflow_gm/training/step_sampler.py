"""A batch sampler indexed by the number of batches consumed, for exact resumption.

Batch ``k`` of the run is a pure function of ``(seed, k, rank, world_size)``: the
``LengthBatchSampler`` epochs are laid end to end. The training module advances
the shared :class:`BatchCounter`; a resumed run restores it from the checkpoint
and the sampler continues from there, whatever the trainer thinks an epoch is.
"""

from __future__ import annotations

from torch.utils.data import Sampler

from multiflow_gm.protein.data.batching import LengthBatchSampler


class BatchCounter:
    """Number of training batches consumed so far (shared by the module and the sampler)."""

    def __init__(self, value: int = 0):
        self.value = int(value)


class StepBatchSampler(Sampler):
    def __init__(self, epochs: LengthBatchSampler, counter: BatchCounter, total_batches: int):
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
