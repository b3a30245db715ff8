"""Deterministic batch streams: which samples and which frame window each training step sees.

The global sample stream is one seeded permutation of the dataset per epoch; step ``s`` takes
positions ``[s * B, (s + 1) * B)`` of it and process ``r`` of ``W`` its ``r``-th slice of ``B / W``
samples, so one process and ``W`` DDP processes see the same global batches, and a resumed run
continues exactly where it stopped. Each step's window (length and first frame) is drawn from
``(seed, step)`` alone.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
from torch.utils.data import Dataset, Sampler

WINDOW_STREAM = 7  # seed-sequence tag of the window draws (distinct from the data order's)


class StepBatches(Sampler[list[tuple[int, int]]]):
    """Per-process batches of ``(epoch, index)`` keys for steps ``start_step .. end_step - 1``."""

    def __init__(self, length: int, global_batch: int, rank: int, world: int, seed: int, start_step: int,
                 end_step: int) -> None:
        if length < 1:
            raise ValueError("the training split holds no sample")
        if global_batch % world:
            raise ValueError(f"batch_size {global_batch} is not divisible by the {world} training processes")
        self.length, self.local = length, global_batch // world
        self.global_batch, self.rank, self.seed = global_batch, rank, seed
        self.start_step, self.end_step = start_step, end_step
        self._permutations: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.end_step):
            first = step * self.global_batch + self.rank * self.local
            yield [self._key(position) for position in range(first, first + self.local)]

    def _key(self, position: int) -> tuple[int, int]:
        epoch, offset = divmod(position, self.length)
        if epoch not in self._permutations:
            self._permutations = {epoch: np.random.default_rng((self.seed, epoch)).permutation(self.length)}
        return epoch, int(self._permutations[epoch][offset])


class EpochKeyed(Dataset):
    """Wraps a ``FaceDataset``: item ``(epoch, index)`` is ``index`` with epoch ``epoch``'s augmentation."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        return self.dataset.item(index, epoch)


def window(seed: int, step: int, seq_lens: tuple[int, ...], frames: int) -> tuple[int, int]:
    """``(first frame, length)`` of step ``step``'s window: a length of ``seq_lens`` (<= ``frames``)
    and a first frame, drawn from ``(seed, step)``."""
    usable = [length for length in seq_lens if length <= frames]
    if not usable:
        raise ValueError(f"no window length of {seq_lens} fits samples of {frames} frames")
    rng = np.random.default_rng((seed, step, WINDOW_STREAM))
    length = int(rng.choice(usable))
    return int(rng.integers(frames - length + 1)), length
