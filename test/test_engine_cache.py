"""The on-disk engine artefact cache, exercised with real ONNX artefacts of the tiny model.

Hit, miss on every key component, stale / foreign / corrupt / truncated entries rebuilt (never
loaded), temp-file + rename writes under concurrency, the cache folder override, and
``faceanything build-engine``. TensorRT artefacts go through the same ``EngineCache`` code.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from faceanything_ros.cli import main
from faceanything_ros.engines import CACHE_ENV, CacheKey, EngineCache, create_engine, default_cache_dir
from faceanything_ros.engines.cache import file_sha256
from faceanything_ros.engines.onnx_engine import onnx_available
from faceanything_ros.model.checkpoint import init_checkpoint, load_checkpoint

pytestmark = pytest.mark.skipif(not onnx_available(), reason="onnxruntime / onnx not installed")

SIZE = 64  # small inputs keep each ONNX export ~1 s; the cache logic does not depend on size


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained tiny checkpoint with a 64 px input."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny64.safetensors"
    init_checkpoint(path, "tiny", seed=1, image_size=SIZE)
    return path


def onnx_engine(checkpoint, cache_dir):
    model, _ = load_checkpoint(checkpoint)
    return create_engine("onnx", model, checkpoint, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def built(checkpoint, tmp_path_factory):
    """One real ONNX build for (T=1, 64, 64): (engine, artefact path, sidecar path)."""
    engine = onnx_engine(checkpoint, tmp_path_factory.mktemp("built"))
    engine.prepare(1, SIZE, SIZE)
    key = engine.cache_key(1, SIZE, SIZE)
    return engine, engine.cache.artefact_path(key, ".onnx"), engine.cache.sidecar_path(key)


@pytest.fixture
def entry(built, checkpoint, tmp_path, monkeypatch):
    """A fresh engine over a copy of the built entry in ``tmp_path``; its rebuilds copy the built
    artefact (fast) and are counted in ``engine.builds``. Returns (engine, artefact, sidecar)."""
    _, artefact, sidecar = built
    for path in (artefact, sidecar):
        shutil.copy(path, tmp_path / path.name)
    engine = onnx_engine(checkpoint, tmp_path)
    engine.builds = 0

    def rebuild(example, path):
        engine.builds += 1
        shutil.copy(artefact, path)

    monkeypatch.setattr(engine, "build", rebuild)
    return engine, tmp_path / artefact.name, tmp_path / sidecar.name


def test_second_engine_loads_the_cached_artefact_without_building(built, entry, caplog):
    first, _, _ = built
    engine, artefact, sidecar = entry
    record = json.loads(sidecar.read_text())
    assert record["key"]["input_shape"] == [1, SIZE, SIZE] and record["key"]["engine"] == "onnx"
    assert record["sha256"] == file_sha256(artefact) and record["size_bytes"] == artefact.stat().st_size
    assert dict(record["key"]["library_versions"])["torch"] == torch.__version__
    assert sorted(p.name for p in first.cache.root.iterdir()) == sorted([artefact.name, sidecar.name])  # no temp files

    caplog.set_level(logging.INFO)
    images = torch.rand(1, 1, 3, SIZE, SIZE)
    outputs = engine.run(images)
    assert "engine cache hit" in caplog.text and engine.builds == 0
    expected = first.run(images)
    for name, value in expected.items():
        np.testing.assert_array_equal(outputs[name].numpy(), value.numpy())


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(CacheKey)])
def test_a_change_in_any_key_component_misses(entry, field):
    engine, artefact, _ = entry
    key = engine.cache_key(1, SIZE, SIZE)
    changed = {
        "engine": "tensorrt", "checkpoint_sha256": "0" * 64, "input_shape": (4, SIZE, SIZE), "precision": "fp16",
        "device_model": "cuda NVIDIA H100 80GB HBM3 sm_90",
        "library_versions": key.library_versions[:-1] + (("onnxruntime", "0.0.0"),),
    }[field]
    other = dataclasses.replace(key, **{field: changed})
    assert engine.cache.lookup(key, ".onnx") == artefact
    assert engine.cache.lookup(other, ".onnx") is None
    assert engine.cache.artefact_path(other, ".onnx") != artefact


def test_other_checkpoint_weights_and_window_build_new_entries(built, tmp_path):
    other_checkpoint = tmp_path / "other.safetensors"
    init_checkpoint(other_checkpoint, "tiny", seed=2, image_size=SIZE)  # same config, other weights
    first, _, _ = built
    other = onnx_engine(other_checkpoint, first.cache.root)
    assert other.cache_key(1, SIZE, SIZE).checkpoint_sha256 != first.cache_key(1, SIZE, SIZE).checkpoint_sha256
    assert first.cache.lookup(other.cache_key(1, SIZE, SIZE), ".onnx") is None
    assert first.cache.lookup(first.cache_key(2, SIZE, SIZE), ".onnx") is None


def _flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "foreign_sidecar", "unparseable_sidecar",
                                    "missing_sidecar"])
def test_damaged_or_foreign_entries_are_rebuilt_not_loaded(entry, damage, caplog):
    engine, artefact, sidecar = entry
    if damage == "corrupt":
        _flip_byte(artefact, artefact.stat().st_size // 2)
    elif damage == "truncated":
        artefact.write_bytes(artefact.read_bytes()[:1000])
    elif damage == "foreign_sidecar":
        record = json.loads(sidecar.read_text())
        record["key"]["checkpoint_sha256"] = "f" * 64
        sidecar.write_text(json.dumps(record))
    elif damage == "unparseable_sidecar":
        sidecar.write_text("{not json")
    else:
        sidecar.unlink()
    key = engine.cache_key(1, SIZE, SIZE)
    assert engine.cache.lookup(key, ".onnx") is None
    caplog.set_level(logging.INFO)
    engine.prepare(1, SIZE, SIZE)
    assert "building onnx engine" in caplog.text and engine.builds == 1
    assert engine.cache.lookup(key, ".onnx") == artefact
    record = json.loads(sidecar.read_text())
    assert record["key"] == key.to_json() and record["sha256"] == file_sha256(artefact)
    assert engine.run(torch.rand(1, 1, 3, SIZE, SIZE))["depth"].shape == (1, 1, SIZE, SIZE)


def test_an_entry_whose_file_fails_to_load_is_rebuilt(entry, caplog):
    engine, artefact, _ = entry
    key = engine.cache_key(1, SIZE, SIZE)
    # a consistent sidecar for garbage content: hashes match, but ONNX Runtime cannot parse it
    engine.cache.store(key, ".onnx", lambda path: path.write_bytes(b"not an onnx model"))
    caplog.set_level(logging.WARNING)
    engine.prepare(1, SIZE, SIZE)
    assert "failed to load" in caplog.text and engine.builds == 1
    assert artefact.stat().st_size > 1000 and engine.cache.lookup(key, ".onnx") == artefact


def test_failed_build_leaves_no_entry_and_no_temp_file(tmp_path):
    cache = EngineCache(tmp_path)
    key = CacheKey("onnx", "a" * 64, (1, SIZE, SIZE), "fp32", "cpu test", (("torch", "x"),))

    def fail(path):
        path.write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    with pytest.raises(RuntimeError, match="exporter crashed"):
        cache.store(key, ".onnx", fail)
    assert list(tmp_path.iterdir()) == []
    assert cache.lookup(key, ".onnx") is None


def test_concurrent_builders_leave_one_valid_entry(tmp_path):
    cache = EngineCache(tmp_path)
    key = CacheKey("onnx", "b" * 64, (1, SIZE, SIZE), "fp32", "cpu test", (("torch", "x"),))
    writers = 4
    barrier = threading.Barrier(writers)
    payload = bytes(range(256)) * 4096  # 1 MiB: long enough for the writers to overlap

    def write(path):
        barrier.wait()
        with open(path, "wb") as handle:
            for start in range(0, len(payload), 4096):
                handle.write(payload[start:start + 4096])

    threads = [threading.Thread(target=cache.store, args=(key, ".onnx", write)) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    artefact = cache.lookup(key, ".onnx")
    assert artefact is not None and artefact.read_bytes() == payload
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([artefact.name, cache.sidecar_path(key).name])


def test_cache_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "engines"))
    assert default_cache_dir() == tmp_path / "engines"
    assert EngineCache().root == tmp_path / "engines"
    monkeypatch.delenv(CACHE_ENV)
    assert default_cache_dir().parts[-3:] == (".cache", "faceanything_ros", "engines")


def test_build_engine_command_prebuilds_each_window_and_then_hits(built, checkpoint, tmp_path, capsys, caplog):
    for path in built[1:]:  # T = 1 is cached already, T = 2 gets built
        shutil.copy(path, tmp_path / path.name)
    arguments = ["build-engine", "--model", str(checkpoint), "--engine", "onnx", "--window", "1", "2",
                 "--cache-dir", str(tmp_path)]
    assert main(arguments) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 2 and all(name.endswith(".onnx") for name in printed)
    assert [Path(name).name.split("-")[1:3] for name in printed] == [["T1", "64x64"], ["T2", "64x64"]]
    caplog.set_level(logging.INFO)
    assert main(arguments) == 0
    assert caplog.text.count("engine cache hit") == 2
    assert main(["build-engine", "--model", str(checkpoint), "--engine", "onnx", "--sizes", "100",
                 "--cache-dir", str(tmp_path)]) == 2
    assert "multiples of the patch size 16" in caplog.text
