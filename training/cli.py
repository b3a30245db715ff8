"""``faceanything-data``: build exact-geometry training datasets from real face images and videos.

``faceanything-data build --images DIR --videos DIR -o DATASET --samples N [--size 256]
[--seq-len T] [--preview] [--workers N]`` labels the sources with the face mesh, re-renders them
from random cameras (``training.data``) and writes shards + ``manifest.json`` (``training.data.shards``).
``faceanything-data pack --images DIR --videos DIR -o PACK [--max-mb 45]`` labels them once into a small
pack (``training.data.pack``) that ``build --pack PACK`` renders without the face mesh, e.g. on another
machine. ``faceanything-data ingest-multiview`` does the same for a NeRSemble-layout capture.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import multiprocessing
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from faceanything_ros.canonical.space import CanonicalSpace, load_canonical_space
from faceanything_ros.config import load_yaml, to_dict
from faceanything_ros.data.format import space_metadata
from faceanything_ros.io.frames import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from training.data.config import DataEngineConfig
from training.data.generator import FileSources, SampleGenerator, Task, discover, plan_tasks
from training.data.pack import PackConfig, SourcePack, write_pack
from training.data.preview import PREVIEW_FILE, PREVIEW_SAMPLES, write_preview
from training.data.shards import ShardWriter

log = logging.getLogger("faceanything-data")

REFILL_ROUNDS = 3  # rounds of replacement tasks planned for failed samples before giving up

_worker: SampleGenerator | None = None


def _start_worker(config: DataEngineConfig, pack: str | None) -> None:
    """Pool initialiser: one canonical space, source reader (the pack, else a face-mesh labeler) and
    generator per process."""
    global _worker
    space = load_canonical_space()
    _worker = SampleGenerator(space, config, SourcePack(pack, space, config) if pack else _file_sources(space, config))


def _file_sources(space: CanonicalSpace, config: DataEngineConfig) -> FileSources:
    from faceanything_ros.canonical.pseudo_labels import FaceMeshLabeler

    return FileSources(space, config, FaceMeshLabeler(space))


def _run_task(task: Task) -> tuple[list, list]:
    if _worker is None:
        raise RuntimeError("data worker used before _start_worker initialised it")
    return _worker.run(task)


def build(args: argparse.Namespace) -> int:
    """Run the ``build`` command; returns the exit code."""
    config = load_yaml(DataEngineConfig, args.config) if args.config else DataEngineConfig()
    config = dataclasses.replace(config, image_size=args.size or config.image_size,
                                 seq_len=args.seq_len or config.seq_len,
                                 seed=config.seed if args.seed is None else args.seed)
    space = load_canonical_space()
    if args.pack:
        if args.images or args.videos:
            raise ValueError("give either --pack PACK or --images/--videos, not both")
        images, videos = SourcePack(args.pack, space, config).catalogue()
    else:
        images, videos = _sources(args, config)
    metadata: dict[str, Any] = {
        "image_size": config.image_size, "seq_len": config.seq_len,
        "canonical_space": space_metadata(space),
        "config": to_dict(config), "skipped": [], **({"pack": str(Path(args.pack).resolve())} if args.pack else {}),
    }
    previews: list = []
    written = 0
    with ShardWriter(args.output, config.samples_per_shard, metadata) as writer, \
            tqdm(total=args.samples, unit="sample", desc="building") as progress:
        for round_index in range(REFILL_ROUNDS + 1):
            missing = args.samples - written
            if missing <= 0:
                break
            round_config = dataclasses.replace(config, seed=config.seed + round_index)
            tasks = plan_tasks(images, videos, missing, round_config)
            for samples, skips in _results(tasks, round_config, args.workers, args.pack):
                metadata["skipped"].extend(skips)
                for arrays, record in samples:
                    writer.add(arrays, record)
                if args.preview and samples and len(previews) < PREVIEW_SAMPLES:
                    previews.append(samples[0][0])  # one per task: different sources
                written += len(samples)
                progress.update(len(samples))
    lost = sum(skip["samples"] for skip in metadata["skipped"])
    for skip in metadata["skipped"]:
        log.warning("%d sample(s) of %s replaced: %s", skip["samples"], skip["source"], skip["reason"])
    log.info("wrote %d samples to %s (%d failed and were replaced by new draws)", written, args.output, lost)
    if written < args.samples:
        log.error("%d of the %d samples asked for are missing: every source failed again in %d replacement rounds "
                  "(reasons above)", args.samples - written, args.samples, REFILL_ROUNDS)
    if args.preview:
        if not previews:
            raise ValueError("no sample was written, so there is nothing to preview")
        log.info("preview: %s", write_preview(Path(args.output) / PREVIEW_FILE, previews))
    return 0 if written == args.samples else 1


def _sources(args: argparse.Namespace, config: DataEngineConfig) -> tuple[list, list]:
    """``(images, videos)`` found under ``--images`` and ``--videos`` (``generator.discover``)."""
    if args.images is None and args.videos is None:
        raise ValueError("give --images DIR and/or --videos DIR")
    images = discover(Path(args.images), IMAGE_EXTENSIONS, config) if args.images else []
    videos = discover(Path(args.videos), VIDEO_EXTENSIONS, config) if args.videos else []
    return images, videos


def _results(tasks: list[Task], config: DataEngineConfig, workers: int, pack: str | None):
    """Task results in task order, computed in this process (``workers <= 1``) or a process pool."""
    if workers <= 1 or len(tasks) == 1:
        _start_worker(config, pack)
        yield from map(_run_task, tasks)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_start_worker, initargs=(config, pack)) as pool:
        yield from pool.imap(_run_task, tasks)


def pack(args: argparse.Namespace) -> int:
    """Run the ``pack`` command; returns the exit code."""
    config = DataEngineConfig()
    settings = PackConfig(seq_len=args.seq_len, frame_stride=args.frame_stride, clips_per_video=args.clips_per_video,
                          face_px=args.face_px, max_bytes=round(args.max_mb * 1e6), seed=args.seed)
    images, videos = _sources(args, config)
    write_pack(args.output, images, videos, _file_sources(load_canonical_space(), config), settings)
    return 0


def _add_source_folders(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", help="folder of source images (its data root has SOURCES.md)")
    parser.add_argument("--videos", help="folder of source videos (its data root has SOURCES.md)")


def main(argv: list[str] | None = None) -> int:
    """Console entry point of ``faceanything-data``; returns the exit code (2 for bad input)."""
    parser = argparse.ArgumentParser(prog="faceanything-data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    build_parser = commands.add_parser("build", help="re-render real faces into a sharded training dataset")
    _add_source_folders(build_parser)
    build_parser.add_argument("--pack", help="a pack of labelled sources (faceanything-data pack) instead of the folders")
    build_parser.add_argument("-o", "--output", required=True, help="new dataset folder")
    build_parser.add_argument("--samples", type=int, required=True, help="number of samples to write")
    build_parser.add_argument("--size", type=int, help="output image side in pixels (default 256)")
    build_parser.add_argument("--seq-len", type=int, help="frames per sample T (default 1)")
    build_parser.add_argument("--seed", type=int, help="base random seed (default from the config, 0)")
    build_parser.add_argument("--config", help="DataEngineConfig YAML file")
    build_parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    build_parser.add_argument("--preview", action="store_true", help=f"write {PREVIEW_FILE} (RGB, depth, canonical, mask)")
    build_parser.set_defaults(run=build)
    pack_parser = commands.add_parser("pack", help="label sources once into a small pack that build --pack renders")
    _add_source_folders(pack_parser)
    pack_parser.add_argument("-o", "--output", required=True, help="new pack folder")
    defaults = PackConfig()
    pack_parser.add_argument("--max-mb", type=float, default=defaults.max_bytes / 1e6,
                             help="frames kept, megabytes (default %(default)s): clips first, then images in a seeded order")
    pack_parser.add_argument("--clips-per-video", type=int, default=defaults.clips_per_video)
    pack_parser.add_argument("--seq-len", type=int, default=defaults.seq_len, help="frames per clip")
    pack_parser.add_argument("--frame-stride", type=int, default=defaults.frame_stride, help="video frames between a clip's frames")
    pack_parser.add_argument("--face-px", type=int, default=defaults.face_px, help="largest face extent kept, pixels")
    pack_parser.add_argument("--seed", type=int, default=defaults.seed, help="order of the images")
    pack_parser.set_defaults(run=pack)
    from training.data.multiview import add_ingest_parser

    add_ingest_parser(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except (FileNotFoundError, FileExistsError, ValueError, ImportError, KeyError, OSError) as error:
        log.error("%s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
