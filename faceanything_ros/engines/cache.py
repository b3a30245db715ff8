"""On-disk cache of compiled engine artefacts (ONNX files, TensorRT exported programs).

An entry is two files in the cache folder: the artefact ``<stem>.<suffix>`` and its JSON
sidecar ``<stem>.json``. ``<stem>`` names the engine, shape and precision for people and ends in
a digest of the full ``CacheKey`` for uniqueness. The sidecar records the key, the artefact's
byte size and SHA-256; an entry is loaded only when all three match, so a stale entry (another
checkpoint, library version or device), a foreign file dropped under the same name, or a
corrupt or truncated artefact is rebuilt, never loaded. Both files are written to temporary
names and renamed into place (sidecar last), so concurrent builders never expose half files.

The folder is ``$FACEANYTHING_ENGINE_CACHE`` when set, else ``~/.cache/faceanything_ros/engines``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from .. import __version__
from ..files import write_atomically

log = logging.getLogger(__name__)

CACHE_ENV = "FACEANYTHING_ENGINE_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/faceanything_ros/engines")
_HASH_CHUNK = 1 << 20  # bytes read per hashing step


@dataclass(frozen=True)
class CacheKey:
    """Everything a compiled artefact depends on; two builds with equal keys are interchangeable."""

    engine: str  # "onnx" or "tensorrt"
    checkpoint_sha256: str  # content hash of the checkpoint file (weights + metadata)
    input_shape: tuple[int, int, int]  # (T, H, W): frames per sequence and input pixels (batch B = 1)
    precision: str  # "fp32", "fp16" or "bf16"
    device_model: str  # CPU model string, or GPU name + compute capability
    library_versions: tuple[tuple[str, str], ...]  # (name, version) of torch, the backend and this package

    def digest(self) -> str:
        """SHA-256 hex digest of the key's canonical JSON."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()

    def to_json(self) -> dict:
        """The key as a JSON-ready dict (tuples as lists)."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["library_versions"] = [list(pair) for pair in self.library_versions]
        return data

    def stem(self) -> str:
        """Readable, unique file stem, e.g. ``onnx-T1-256x256-fp32-3f2a9c0d1e4b5a67``."""
        frames, height, width = self.input_shape
        return f"{self.engine}-T{frames}-{height}x{width}-{self.precision}-{self.digest()[:16]}"


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def device_model(device: torch.device) -> str:
    """What compiled code is specific to: ``"cuda NVIDIA H100 80GB HBM3 sm_90"`` or ``"cpu <model name>"``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        return f"cuda {torch.cuda.get_device_name(index)} sm_{major}{minor}"
    return f"cpu {cpu_model()} {platform.machine()}"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or ``platform.processor()`` where that is absent."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def library_versions(backend: str, backend_version: str) -> tuple[tuple[str, str], ...]:
    """The ``CacheKey.library_versions`` tuple for a backend library (e.g. ``onnxruntime``)."""
    return (("faceanything_ros", __version__), ("torch", torch.__version__), (backend, backend_version))


def default_cache_dir() -> Path:
    """``$FACEANYTHING_ENGINE_CACHE`` when set, else ``~/.cache/faceanything_ros/engines``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR).expanduser()


class EngineCache:
    """Artefact files keyed by ``CacheKey`` under one folder (created on first write)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def artefact_path(self, key: CacheKey, suffix: str) -> Path:
        """Where the artefact of ``key`` lives (``suffix`` like ``".onnx"``)."""
        return self.root / f"{key.stem()}{suffix}"

    def sidecar_path(self, key: CacheKey) -> Path:
        """The JSON sidecar of ``key``'s entry."""
        return self.root / f"{key.stem()}.json"

    def lookup(self, key: CacheKey, suffix: str) -> Path | None:
        """The artefact path when a valid entry for ``key`` exists, else None (reason logged)."""
        artefact, sidecar = self.artefact_path(key, suffix), self.sidecar_path(key)
        if not artefact.is_file() or not sidecar.is_file():
            return None
        problem = self._problem(key, artefact, sidecar)
        if problem:
            log.warning("engine cache entry %s is unusable (%s); rebuilding it", artefact, problem)
            return None
        return artefact

    def _problem(self, key: CacheKey, artefact: Path, sidecar: Path) -> str | None:
        """Why the entry does not belong to ``key`` or is damaged; None when it is good."""
        try:
            record = json.loads(sidecar.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            return f"sidecar unreadable: {error}"
        if not isinstance(record, dict) or record.get("key") != key.to_json():
            return "sidecar key differs (stale or foreign entry)"
        size = artefact.stat().st_size
        if record.get("size_bytes") != size:
            return f"size {size} bytes, sidecar says {record.get('size_bytes')} (truncated or replaced)"
        if record.get("sha256") != file_sha256(artefact):
            return "content hash differs from the sidecar (corrupt or replaced)"
        return None

    def store(self, key: CacheKey, suffix: str, write: Callable[[Path], None]) -> Path:
        """Build an entry: ``write(tmp_path)`` writes the artefact, then it and the sidecar are
        renamed into place (artefact first, sidecar last). Returns the artefact path."""
        self.root.mkdir(parents=True, exist_ok=True)
        artefact = self.artefact_path(key, suffix)
        record = {"key": key.to_json()}

        def write_and_measure(temporary: Path) -> None:
            write(temporary)
            record.update(size_bytes=temporary.stat().st_size, sha256=file_sha256(temporary))

        write_atomically(artefact, write_and_measure)
        write_atomically(self.sidecar_path(key), lambda temporary: temporary.write_text(json.dumps(record, indent=2) + "\n"))
        return artefact

    def get_or_build(self, key: CacheKey, suffix: str, write: Callable[[Path], None],
                     load: Callable[[Path], object], estimate_s: float) -> object:
        """``load(artefact)`` of a valid cached entry, building it with ``write`` first when absent,
        stale or unloadable (a load failure of a cached file is logged and rebuilt once).

        A build is announced in the log with ``estimate_s`` (rough seconds) and shown as a
        two-step tqdm bar (build + record, load)."""
        artefact = self.lookup(key, suffix)
        if artefact is not None:
            try:
                loaded = load(artefact)
            except Exception as error:  # noqa: BLE001 - any backend parse error means a bad entry
                log.warning("engine cache entry %s failed to load (%s); rebuilding it", artefact, error)
            else:
                log.info("engine cache hit: %s", artefact)
                return loaded
        log.info("building %s engine for input (T, H, W) = %s at %s (about %.0f s); cached in %s",
                 key.engine, key.input_shape, key.precision, estimate_s, self.root)
        started = time.perf_counter()
        with tqdm(total=2, desc=f"build {key.stem()}", unit="step", leave=False) as progress:
            artefact = self.store(key, suffix, write)
            progress.update()
            loaded = load(artefact)
            progress.update()
        log.info("built %s in %.1f s", artefact, time.perf_counter() - started)
        return loaded

