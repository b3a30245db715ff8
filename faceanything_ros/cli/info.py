"""``faceanything info``: version, model, device and available engines."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .. import __version__
from ..engines import engine_availability, resolve_engine
from ..model.bundled import NO_BUNDLED_MODEL, bundled_checkpoint
from ..model.checkpoint import CheckpointError, read_checkpoint_metadata


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``info``."""
    parser = commands.add_parser("info", help="version, model, device and available engines")
    parser.add_argument("--model", type=Path, help="checkpoint to describe (default: the bundled one)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the facts; exit code 2 when the named checkpoint cannot be read."""
    print(f"faceanything_ros {__version__}")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}")
    cuda = torch.cuda.is_available()
    print(f"device: {'cuda (' + torch.cuda.get_device_name(0) + ')' if cuda else 'cpu'}; "
          f"torch threads: {torch.get_num_threads()}")
    device = "cuda" if cuda else "cpu"
    availability = engine_availability(device)
    print("engines: " + ", ".join(f"{name} ({'available' if reason is None else 'missing'})"
                                  for name, reason in availability.items())
          + f"; auto -> {resolve_engine('auto', device)}")
    for name, reason in availability.items():
        if reason is not None:
            print(f"  {name} missing: {reason}")
    checkpoint = args.model or bundled_checkpoint()
    if checkpoint is None:
        print(f"model: none bundled ({NO_BUNDLED_MODEL})")
        return 0
    try:
        metadata = read_checkpoint_metadata(checkpoint)
    except CheckpointError as error:
        print(f"model: {checkpoint}: {error}")
        return 2
    print(f"model: {checkpoint}")
    print(f"  size {metadata.model_config.size}, input {metadata.model_config.image_size} px, "
          f"{'trained' if metadata.trained else 'UNTRAINED'}, canonical space "
          f"{metadata.canonical_space_id} v{metadata.canonical_space_version}")
    return 0
