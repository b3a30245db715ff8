"""Typed configuration of a training run (YAML: ``training/configs/*.yaml``, loaded by
``faceanything_ros.config.load_yaml``). Learning rates are per step of the global batch."""
from __future__ import annotations

from dataclasses import dataclass, field

from faceanything_ros.config import MODEL_SIZES
from training.data.dataset import TrainAugmentConfig
from training.losses import LossWeights

PRECISIONS = ("fp32", "bf16")  # bf16 autocast applies on CUDA only; CPU runs fp32


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warmup and cosine decay to ``min_lr_ratio * lr``; gradient clipping; EMA."""

    lr: float = 5e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0  # max global gradient norm (0 = no clipping)
    ema_decay: float = 0.998  # exponential moving average of the weights (validated and exported)

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"invalid optimiser settings: {self}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass(frozen=True)
class TrainConfig:
    """One training stage.

    stage: 1 = geometry (depth, rays, mask), 2 = adds canonical supervision and multi-frame windows;
    model_size / image_size: the network (``ModelConfig.preset``) and its square input side (pixels);
    batch_size: global batch (split evenly over DDP processes); seq_lens: window lengths T drawn
    uniformly per step (each <= the dataset's T); steps: schedule length (a ``--minutes`` budget may end
    the run earlier, with the schedule shortened to fit); eval_every: validation + checkpoint interval
    (steps); val_samples: validation samples (first of the split); select_metric: ``family.metric``
    of the validation summary that picks the best checkpoint (lower is better); workers: data
    loader processes per training process; precision / compile: bf16 autocast and torch.compile.
    """

    stage: int = 1
    model_size: str = "tiny"
    image_size: int = 128
    batch_size: int = 16
    seq_lens: tuple[int, ...] = (1,)
    steps: int = 20000
    eval_every: int = 500
    log_every: int = 10
    val_samples: int = 256
    select_metric: str = "depth.rmse_aligned_mm"
    workers: int = 2
    seed: int = 0
    precision: str = "bf16"
    compile: bool = False
    losses: LossWeights = field(default_factory=LossWeights)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: TrainAugmentConfig = field(default_factory=TrainAugmentConfig)

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {self.stage}")
        if self.model_size not in MODEL_SIZES:
            raise ValueError(f"unknown model_size {self.model_size!r}; choose one of {sorted(MODEL_SIZES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not self.seq_lens or min(self.seq_lens) < 1:
            raise ValueError(f"seq_lens must hold window lengths >= 1, got {self.seq_lens}")
        for name in ("batch_size", "steps", "eval_every", "log_every", "val_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if "." not in self.select_metric:
            raise ValueError(f"select_metric must be 'family.metric', got {self.select_metric!r}")
