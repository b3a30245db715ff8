"""``faceanything``: reconstruct and track faces in videos, images and rosbags.

One module per command, each with ``add_parser(commands)`` registering its sub-parser and
setting ``run(args) -> exit code``; ``COMMANDS`` lists them in help order.
"""
from __future__ import annotations

import argparse
import logging
import sys

from .. import __version__
from . import bag_eval, build_engine, eval as eval_command, info, init_model, reconstruct, video_to_bag

COMMANDS = (reconstruct, eval_command, info, init_model, build_engine, video_to_bag, bag_eval)

log = logging.getLogger("faceanything")


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the process exit code (2 for bad input, named in the log)."""
    parser = argparse.ArgumentParser(prog="faceanything", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"faceanything_ros {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except (ValueError, ImportError, OSError) as error:  # OSError includes FileNotFoundError
        log.error("%s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
