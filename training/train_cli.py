"""``faceanything-train``: train the Face Anything network on a data-engine dataset.

``faceanything-train CONFIG.yaml --data DATASET [DATASET ...] --out RUN [--minutes M] [--init CHECKPOINT] [--resume]``
runs one stage (``training/configs/stage1.yaml``: geometry; ``stage2.yaml``: + canonical coordinates
and multi-frame windows, from stage 1's ``RUN/model.safetensors`` with ``--init``). Several processes:
``torchrun --nproc-per-node N -m training.train_cli ...`` (DistributedDataParallel; NCCL on CUDA,
gloo on CPU; each process its own data stream).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

import torch
import torch.distributed as dist

from faceanything_ros.config import load_yaml
from faceanything_ros.model.checkpoint import CheckpointError
from training.config import TrainConfig
from training.trainer import Process, Trainer

log = logging.getLogger("faceanything-train")


def process_from_environment(device: str | None) -> Process:
    """This process's rank, world size and device, from ``torchrun``'s environment (one process
    without it); joins the process group when there are several."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    cuda = torch.cuda.is_available() if device is None else device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is available")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        torch.backends.cudnn.benchmark = True  # few input shapes (windows of 1, 2, 4 frames): tuned convolutions pay
        chosen = torch.device("cuda", local)
    else:
        chosen = torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    return Process(rank, world, chosen)


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code (2 for bad input)."""
    parser = argparse.ArgumentParser(prog="faceanything-train", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="TrainConfig YAML file (training/configs/stage1.yaml or stage2.yaml)")
    parser.add_argument("--data", nargs="+", required=True,
                        help="dataset folders written by faceanything-data build (each step draws one, by size; "
                             "validation uses the first)")
    parser.add_argument("--out", required=True, help="run folder (new, or existing with --resume)")
    parser.add_argument("--minutes", type=float, help="time budget: the schedule is fitted to it and the run ends "
                                                       "with a validated, exported model")
    parser.add_argument("--init", help="start from this checkpoint's weights (e.g. stage 1's RUN/model.safetensors)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    parser.add_argument("--stop-after", type=int, metavar="STEP",
                        help="end after this step with a resumable state, schedule unchanged (--resume continues)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    parser.add_argument("--threads", type=int, help="CPU threads of this process (default: torch's)")
    parser.add_argument("--seed", type=int, help="random seed of the data stream and augmentations (default: the "
                                                 "config's); a new one per fine-tuning stage draws new samples")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.minutes is not None and not args.minutes > 0:
        log.error("--minutes must be positive, got %s", args.minutes)
        return 2
    if args.resume and args.init:
        log.error("--resume continues a run with its own weights; --init cannot be combined with it")
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        config = load_yaml(TrainConfig, args.config)
        if args.seed is not None:
            config = dataclasses.replace(config, seed=args.seed)
        process = process_from_environment(args.device)
        trainer = Trainer(config, args.data, args.out, args.minutes, args.init, args.resume, process)
        summary = trainer.run(args.stop_after)
    except (FileNotFoundError, FileExistsError, ValueError, CheckpointError, TypeError) as error:
        log.error("%s", error)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if trainer.process.main:
        log.info("exported %s (step %d): %s", trainer.run_folder.model_path, trainer.step, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
