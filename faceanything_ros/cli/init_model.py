"""``faceanything init-model``: an UNTRAINED checkpoint (random weights) for pipeline checks."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import MODEL_SIZES
from ..model.checkpoint import init_checkpoint


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``init-model``."""
    parser = commands.add_parser("init-model", help="write an UNTRAINED checkpoint (random weights) for pipeline checks")
    parser.add_argument("--size", default="tiny", choices=sorted(MODEL_SIZES))
    parser.add_argument("-o", "--out", type=Path, required=True, help="output .safetensors path")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the checkpoint."""
    init_checkpoint(args.out, args.size, seed=args.seed)
    print(f"wrote untrained {args.size} checkpoint {args.out}")
    return 0
