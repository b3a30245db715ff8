"""Identity- and video-level train/val/test splits derived from source file paths.

Every source file gets an ``identity`` (the person) and a ``video`` (the clip or photo it comes
from). The split is a deterministic hash of the identity, so every frame, clip and photo of one
person lands in one split and a video never straddles splits. Identity rules (relative paths
under the data root, e.g. ``images/utkface_crop/26_0_1_2017.jpg``):

- VoxCeleb2 (``pcavs_voxceleb2``): the 9-digit clip number's first 4 digits are the speaker
  (``517600055`` -> ``vox:5176``), for frame folders, single frames and videos alike.
- MEAD (``mead_M030_...``): the actor code (``mead:M030``).
- ``vtoonify_529_2`` is the same woman as ``vtoonify_529``.
- frame folders (``images/<set>/<folder>/<frame>``): the folder is one video of one identity.
- otherwise each file is its own identity (e.g. UTKFace has no identity labels).
Grouping more files than necessary is safe (it never mixes); the rules err on that side.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from faceanything_ros.data.format import SPLITS
from training.data.config import SplitConfig

_VOXCELEB = re.compile(r"(?<!\d)(\d{4})(\d{5})(?!\d)")
_MEAD = re.compile(r"mead_([MW]\d{3})_")
_ALIASES = {"vtoonify_529_2": "vtoonify_529"}


@dataclass(frozen=True)
class SourceKey:
    """Identity and video ids of one source file (strings, stable across runs)."""

    identity: str
    video: str


def source_key(relative_path: str) -> SourceKey:
    """``SourceKey`` of a source file from its path relative to the data root (POSIX separators)."""
    path = PurePosixPath(relative_path)
    if len(path.parts) < 2:
        raise ValueError(f"source path must be relative to the data root (e.g. images/set/file.jpg), got {relative_path!r}")
    stem = _ALIASES.get(path.stem, path.stem)
    collection = path.parts[1] if len(path.parts) > 2 else path.parts[0]
    in_frame_folder = path.parts[0] == "images" and len(path.parts) > 3
    video = "/".join(path.parts[1:-1]) if in_frame_folder else f"{collection}/{stem}"
    if "voxceleb" in collection:
        match = _VOXCELEB.search(path.parent.name if in_frame_folder else stem)
        if match:
            return SourceKey(f"vox:{match.group(1)}", video)
    match = _MEAD.search(stem)
    if match:
        return SourceKey(f"mead:{match.group(1)}", video)
    return SourceKey(video, video)


def split_of(identity: str, config: SplitConfig | None = None) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for an identity (SHA-256 of the id -> uniform [0, 1))."""
    config = config or SplitConfig()
    digest = hashlib.sha256(identity.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2.0**64
    if position < config.test_fraction:
        return "test"
    if position < config.test_fraction + config.val_fraction:
        return "val"
    return "train"


def check_splits(records: list[dict]) -> None:
    """Raise ``ValueError`` if any ``identity`` or ``video`` of ``records`` (dicts with keys
    ``identity``, ``video``, ``split``) appears in more than one split."""
    for key in ("identity", "video"):
        seen: dict[str, str] = {}
        for record in records:
            previous = seen.setdefault(record[key], record["split"])
            if previous != record["split"]:
                raise ValueError(f"{key} {record[key]!r} appears in splits {previous!r} and {record['split']!r}")
