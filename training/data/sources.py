"""Provenance of source files: repository, commit and licence from a data folder's SOURCES.md.

``SOURCES.md`` lines look like ``- target | origin repo | path(s) | commit | licence | ...`` where
``target`` is a file or folder relative to the data root (``images/utkface_crop/``) and an optional
last field ``dataset/terms: ...`` gives the dataset's own terms. A file's entry is the one with the
longest target that is the file itself or a folder containing it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

TERMS_PREFIX = "dataset/terms:"


@dataclass(frozen=True)
class Provenance:
    """Where a source file comes from: ``repo`` (owner/name), ``commit``, the repository's
    ``licence`` and the dataset's own ``terms`` ("" when not stated)."""

    repo: str
    commit: str
    licence: str
    terms: str

    def as_dict(self) -> dict[str, str]:
        """Plain dict for the manifest."""
        return asdict(self)


class SourceCatalog:
    """Licence look-up for the files under one data root, parsed from its ``SOURCES.md``."""

    def __init__(self, data_root: str | Path) -> None:
        self.root = Path(data_root)
        sources = self.root / "SOURCES.md"
        if not sources.is_file():
            raise FileNotFoundError(f"no SOURCES.md in data root {self.root}: every source needs a licence record")
        self._entries: dict[str, Provenance] = {}
        for line in sources.read_text(encoding="utf-8").splitlines():
            fields = [f.strip() for f in line[2:].split("|")] if line.startswith("- ") else []
            if len(fields) < 5:
                continue
            terms = fields[-1][len(TERMS_PREFIX):].strip() if fields[-1].startswith(TERMS_PREFIX) else ""
            for target in fields[0].split(","):
                self._entries[target.strip()] = Provenance(fields[1], fields[3], fields[4], terms)

    def provenance(self, relative_path: str) -> Provenance:
        """``Provenance`` of a file given relative to the data root; ``KeyError`` naming it if unlisted."""
        best = ""
        for target in self._entries:
            folder = target.endswith("/") and relative_path.startswith(target)
            if (folder or relative_path == target) and len(target) > len(best):
                best = target
        if not best:
            raise KeyError(f"{relative_path} is not listed in {self.root / 'SOURCES.md'}; its licence is unknown")
        return self._entries[best]
