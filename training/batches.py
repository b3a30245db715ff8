"""Deterministic batch streams: which samples and which frame window each training step sees.

Each step draws one of the datasets (probability proportional to its size; a batch never mixes
datasets, whose samples may have different frame counts) from ``(seed, step)``. A dataset's sample
stream is one seeded permutation of it per epoch; the ``k``-th step that draws it takes positions
``[k * B, (k + 1) * B)`` of its stream and process ``r`` of ``W`` its ``r``-th slice of ``B / W``
samples, so one process and ``W`` DDP processes see the same global batches, and a resumed run
continues exactly where it stopped. Each step's window (length and first frame) is drawn from
``(seed, step)`` alone.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
from torch.utils.data import Dataset, Sampler

WINDOW_STREAM = 7  # seed-sequence tag of the window draws (distinct from the data order's)
DATASET_STREAM = 11  # seed-sequence tag of the per-step dataset draws


class StepBatches(Sampler[list[tuple[int, int, int]]]):
    """Per-process batches of ``(dataset, epoch, index)`` keys for steps ``start_step .. end_step - 1``."""

    def __init__(self, lengths: list[int], global_batch: int, rank: int, world: int, seed: int, start_step: int,
                 end_step: int) -> None:
        if not lengths or min(lengths) < 1:
            raise ValueError("a training split holds no sample")
        if global_batch % world:
            raise ValueError(f"batch_size {global_batch} is not divisible by the {world} training processes")
        self.lengths, self.local = lengths, global_batch // world
        self.global_batch, self.rank, self.seed = global_batch, rank, seed
        self.start_step, self.end_step = start_step, end_step
        self._permutations: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)

    def dataset_of(self, step: int) -> int:
        """The dataset drawn for ``step``."""
        if len(self.lengths) == 1:
            return 0
        weights = np.asarray(self.lengths, dtype=np.float64)
        return int(np.random.default_rng((self.seed, step, DATASET_STREAM)).choice(len(weights), p=weights / weights.sum()))

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        drawn = [0] * len(self.lengths)  # steps so far that drew each dataset
        for step in range(self.start_step):
            drawn[self.dataset_of(step)] += 1
        for step in range(self.start_step, self.end_step):
            dataset = self.dataset_of(step)
            first = drawn[dataset] * self.global_batch + self.rank * self.local
            drawn[dataset] += 1
            yield [self._key(dataset, position) for position in range(first, first + self.local)]

    def _key(self, dataset: int, position: int) -> tuple[int, int, int]:
        epoch, offset = divmod(position, self.lengths[dataset])
        if (dataset, epoch) not in self._permutations:
            self._permutations[(dataset, epoch)] = np.random.default_rng((self.seed, dataset, epoch)).permutation(
                self.lengths[dataset])
        return dataset, epoch, int(self._permutations[(dataset, epoch)][offset])


class EpochKeyed(Dataset):
    """Wraps ``FaceDataset``s: item ``(dataset, epoch, index)`` is ``index`` of that dataset with epoch
    ``epoch``'s augmentation."""

    def __init__(self, datasets: list) -> None:
        self.datasets = datasets

    def __len__(self) -> int:
        return sum(len(dataset) for dataset in self.datasets)

    def __getitem__(self, key: tuple[int, int, int]):
        dataset, epoch, index = key
        return self.datasets[dataset].item(index, epoch)


def window(seed: int, step: int, seq_lens: tuple[int, ...], frames: int) -> tuple[int, int]:
    """``(first frame, length)`` of step ``step``'s window: a length of ``seq_lens`` (<= ``frames``)
    and a first frame, drawn from ``(seed, step)``."""
    usable = [length for length in seq_lens if length <= frames]
    if not usable:
        raise ValueError(f"no window length of {seq_lens} fits samples of {frames} frames")
    rng = np.random.default_rng((seed, step, WINDOW_STREAM))
    length = int(rng.choice(usable))
    return int(rng.integers(frames - length + 1)), length
