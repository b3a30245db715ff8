"""Shards, manifest, splits, the torch Dataset and the ``faceanything-data build`` CLI (training.data)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import FACES, FACES_TRAIN

from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.geometry.projection import unproject_depth
from training.cli import main as data_main
from training.data.dataset import FaceDataset
from faceanything_ros.data.format import SAMPLE_ARRAYS, read_manifest, read_sample
from training.data.shards import ShardWriter
from training.data.sources import SourceCatalog
from training.data.splits import check_splits, source_key, split_of

def random_sample(rng: np.random.Generator, frames: int = 2, size: int = 16, tracks: int = 5) -> dict[str, np.ndarray]:
    mask = rng.random((frames, size, size)) < 0.5
    depth = np.where(mask, rng.uniform(0.3, 1.5, mask.shape), np.nan).astype(np.float32)
    canonical = np.where(mask[..., None], rng.uniform(-1, 1, mask.shape + (3,)), np.nan).astype(np.float16)
    K = intrinsics_matrix(20.0, 20.0, 7.5, 7.5)
    return {
        "rgb": rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8), "depth": depth, "canonical": canonical,
        "mask": mask, "surface": mask | (rng.random(mask.shape) < 0.1),
        "intrinsics": np.stack([K + np.diag([i, i, 0]) for i in range(frames)]),
        "world_from_camera": np.stack([np.eye(4)] * frames),
        "tracks": rng.uniform(0, size, (tracks, frames, 2)).astype(np.float32),
        "track_visible": rng.random((tracks, frames)) < 0.7,
        "track_canonical": rng.uniform(-1, 1, (tracks, 3)).astype(np.float32),
        "track_query_frame": rng.integers(0, frames, tracks).astype(np.int32),
    }


def record(split: str, identity: str) -> dict:
    return {"split": split, "source": f"images/set/{identity}.jpg", "source_root": "/data", "identity": identity,
            "video": identity, "frames": [0, 0], "provenance": {"repo": "o/r", "commit": "c", "licence": "MIT", "terms": ""}}


def test_shard_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    samples = [random_sample(rng) for _ in range(5)]
    with ShardWriter(tmp_path / "ds", samples_per_shard=2, metadata={"image_size": 16, "seq_len": 2}) as writer:
        for i, sample in enumerate(samples):
            writer.add(sample, record("train" if i != 3 else "val", f"id{i}"))
    manifest = read_manifest(tmp_path / "ds")
    assert manifest["counts"] == {"train": 4, "val": 1, "test": 0}
    assert [s["num_samples"] for s in manifest["shards"]] == [2, 2, 1]  # train 2+2, val 1
    by_source = {r["source"]: r for r in manifest["samples"]}
    for i, sample in enumerate(samples):
        stored = read_sample(tmp_path / "ds", by_source[f"images/set/id{i}.jpg"])
        for name, value in sample.items():
            assert stored[name].dtype == np.dtype(SAMPLE_ARRAYS[name][0])
            assert stored[name].tobytes() == value.tobytes(), name  # bit-exact, NaN included
    assert by_source["images/set/id3.jpg"]["provenance"]["licence"] == "MIT"
    with pytest.raises(FileExistsError):
        ShardWriter(tmp_path / "ds", 2, {})


def test_shard_writer_rejects_wrong_dtypes_and_mixed_splits(tmp_path):
    sample = random_sample(np.random.default_rng(1))
    writer = ShardWriter(tmp_path / "a", 4, {})
    with pytest.raises(ValueError, match="depth"):
        writer.add({**sample, "depth": sample["depth"].astype(np.float64)}, record("train", "x"))
    writer.add(sample, record("train", "x"))
    writer.add(sample, record("test", "x"))
    with pytest.raises(ValueError, match="identity 'x' appears in splits"):
        writer.close()


def test_split_rules_never_mix_identities_or_videos():
    rows = [line.split("\t")[0] for line in (FACES_TRAIN / "files.tsv").read_text().splitlines()[1:]] \
        if (FACES_TRAIN / "files.tsv").is_file() else pytest.skip("faces_train data not found")
    records = []
    for path in rows:
        key = source_key(path)
        records.append({"identity": key.identity, "video": key.video, "split": split_of(key.identity)})
    check_splits(records)
    splits = {r["split"] for r in records}
    assert splits == {"train", "val", "test"}
    assert source_key("images/pcavs_voxceleb2/input_517600055.jpg").identity == \
        source_key("videos/pcavs_voxceleb2/Pose_Source_517600055.mp4").identity == \
        source_key("images/pcavs_voxceleb2/517600078/000001.jpg").identity == "vox:5176"
    assert source_key("images/pcavs_voxceleb2/517600078/000001.jpg").video == "pcavs_voxceleb2/517600078"
    assert source_key("videos/dreamtalk_mead/mead_W009_front_sad_level3_001.mp4").identity == "mead:W009"
    assert source_key("videos/vtoonify/vtoonify_529_2.mp4").identity == source_key("videos/vtoonify/vtoonify_529.mp4").identity
    assert split_of("vox:5176") == split_of("vox:5176")
    with pytest.raises(ValueError, match="video 'v' appears in splits"):
        check_splits([{"identity": "a", "video": "v", "split": "train"}, {"identity": "b", "video": "v", "split": "val"}])


def test_source_catalog_gives_the_licence():
    catalog = SourceCatalog(FACES_TRAIN) if (FACES_TRAIN / "SOURCES.md").is_file() else pytest.skip("no faces_train")
    utk = catalog.provenance("images/utkface_crop/100_1_0_20170110183726390.jpg.chip.jpg")
    assert utk.repo == "bagashvilit/facial_recognition_bias" and utk.licence.startswith("MIT")
    assert "non-commercial" in utk.terms
    assert catalog.provenance("videos/vtoonify/vtoonify_529.mp4").licence.startswith("S-Lab License 1.0")
    with pytest.raises(KeyError, match="not listed"):
        catalog.provenance("images/unknown/x.jpg")


def test_dataset_gives_model_layout_tensors(tmp_path):
    rng = np.random.default_rng(2)
    samples = [random_sample(rng, frames=3, size=16, tracks=7) for _ in range(3)]
    with ShardWriter(tmp_path / "ds", 2, {"image_size": 16, "seq_len": 3}) as writer:
        for i, sample in enumerate(samples):
            writer.add(sample, {**record("train", f"id{i}"), "source_view": i == 2})
    dataset = FaceDataset(tmp_path / "ds", "train")
    # the source-view sample's K was assumed when labelling: its camera is not known
    assert [bool(dataset[i]["camera_known"]) for i in range(3)] == [True, True, False]
    assert len(dataset) == 3 and len(FaceDataset(tmp_path / "ds", "val")) == 0
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2)))
    assert batch["images"].shape == (2, 3, 3, 16, 16) and batch["images"].dtype == torch.uint8
    assert batch["depth"].shape == (2, 3, 16, 16) and batch["canonical"].shape == (2, 3, 16, 16, 3)
    assert batch["mask"].dtype == torch.bool and batch["rays"].shape == (2, 3, 16, 16, 3)
    assert batch["tracks"].shape == (2, 7, 3, 2) and batch["track_visible"].shape == (2, 7, 3)
    assert batch["intrinsics"].shape == (2, 3, 3, 3) and batch["camera_from_virtual"].shape == (2, 3, 3, 3)
    item = dataset[0]
    source = samples[item["index"]]
    np.testing.assert_array_equal(item["images"].permute(0, 2, 3, 1).numpy(), source["rgb"])
    assert torch.isfinite(item["depth"]).all() and torch.isfinite(item["canonical"]).all()
    assert (item["depth"][~item["mask"]] == 0).all()
    # virtual-camera ground truth: depth along the virtual ray, rotated back, is the stored camera point
    for t in range(3):
        mask = source["mask"][t]
        virtual = item["depth"][t].double().numpy()[..., None] * item["rays"][t].double().numpy()
        virtual /= item["rays"][t].double().numpy()[..., 2:3]
        camera = virtual @ item["camera_from_virtual"][t].double().numpy().T
        stored = unproject_depth(np.where(mask, source["depth"][t], 0.0), source["intrinsics"][t])
        np.testing.assert_allclose(camera[mask], stored[mask], rtol=1e-5, atol=1e-6)
        centre_ray = item["rays"][t].numpy()[7:9, 7:9].mean(axis=(0, 1))
        assert abs(centre_ray[0]) < 0.05 and abs(centre_ray[1]) < 0.05  # the virtual axis looks through the crop
    with pytest.raises(ValueError, match="split"):
        FaceDataset(tmp_path / "ds", "training")
    with pytest.raises(FileNotFoundError):
        FaceDataset(tmp_path / "none")


def test_cli_builds_a_tiny_dataset_with_preview(tmp_path):
    if not (FACES / "SOURCES.md").is_file():
        pytest.skip("shared face data not found")
    out = tmp_path / "tiny"
    code = data_main(["build", "--images", str(FACES / "images"), "--videos", str(FACES / "videos"), "-o", str(out),
                      "--samples", "4", "--size", "64", "--seq-len", "2", "--preview"])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seq_len"] == 2 and manifest["image_size"] == 64
    assert len(manifest["samples"]) == 4  # failed draws are replaced, never lost
    for sample in manifest["samples"]:
        assert sample["provenance"]["licence"] and sample["source"].split("/")[0] in ("images", "videos")
        assert sample["split"] in ("train", "val", "test") and len(sample["frames"]) == 2
        assert sample["source_view"] is False  # novel cameras only by default
    import cv2

    preview = cv2.imread(str(out / "preview.png"))
    assert preview.shape[1] == 4 * 64 and preview.shape[0] in (64, 128, 192, 256, 320, 384)  # a row per task
    item = FaceDataset(out, None)[0]
    assert item["images"].shape == (2, 3, 64, 64) and item["mask"].any() and item["in_frame"].any()
    assert data_main(["build", "--images", str(FACES / "images"), "-o", str(out), "--samples", "1"]) == 2  # exists


def test_data_config_yaml_round_trip(tmp_path):
    from faceanything_ros.config import load_yaml, save_yaml
    from training.data.config import AugmentConfig, CameraSamplerConfig, DataEngineConfig

    config = DataEngineConfig(image_size=128, seq_len=4, cameras=CameraSamplerConfig(yaw_deg=(-10.0, 10.0)),
                              augment=AugmentConfig(jpeg_probability=0.0))
    save_yaml(config, tmp_path / "data.yaml")
    assert load_yaml(DataEngineConfig, tmp_path / "data.yaml") == config
    with pytest.raises(ValueError, match="yaw_deg"):
        CameraSamplerConfig(yaw_deg=(10.0, -10.0))
    with pytest.raises(ValueError, match="unknown"):
        (tmp_path / "bad.yaml").write_text("image_sise: 3\n")
        load_yaml(DataEngineConfig, tmp_path / "bad.yaml")


def test_augmentation_keeps_ground_truth_exact(small_dataset):
    """Crop jitter and flips move the ground truth with the image: every visible track pixel still shows
    the track's (mirrored) canonical point, and virtual depth reprojects onto its pixel centre."""
    from faceanything_ros.data.samples import to_item
    from faceanything_ros.data.format import ShardReader
    from training.data.dataset import TrainAugmentConfig, augment_sample

    dataset = FaceDataset(small_dataset, None)
    reader = ShardReader(small_dataset)
    flips = 0
    for index in range(12):
        raw = reader.sample(dataset.record(index))
        rng = np.random.default_rng(index)
        arrays = augment_sample(rng, raw, TrainAugmentConfig(zoom=(0.8, 1.2), shift=0.1))
        flipped = np.linalg.det(arrays["world_from_camera"][0]) < 0
        flips += flipped
        item = to_item(arrays, index, True)
        size = item["mask"].shape[-1]
        for t in range(item["mask"].shape[0]):
            visible = item["track_visible"][:, t].numpy()
            pixels = np.rint(item["tracks"][visible, t].numpy()).astype(int)
            on_mask = item["mask"][t].numpy()[pixels[:, 1], pixels[:, 0]]
            seen = item["canonical"][t].numpy()[pixels[on_mask, 1], pixels[on_mask, 0]]
            truth = item["track_canonical"].numpy()[visible][on_mask]
            error = np.linalg.norm(seen - truth, axis=1)
            assert np.median(error) < 0.06  # nearest resampling: within a pixel (~0.1 units at 32 px)
            if flipped and len(truth) > 10:  # an unmirrored canonical map would be far off
                unmirrored = np.linalg.norm(seen * np.array([-1, 1, 1]) - truth, axis=1)
                assert np.median(unmirrored) > 0.15
            mask = item["mask"][t].numpy()
            rays = item["rays"][t].double().numpy()
            camera = (item["depth"][t].double().numpy()[..., None] * rays / rays[..., 2:3]) @ \
                item["camera_from_virtual"][t].double().numpy().T
            projected = camera @ item["intrinsics"][t].double().numpy().T
            grid = np.stack(np.meshgrid(np.arange(size), np.arange(size)), axis=-1)
            np.testing.assert_allclose(projected[mask][:, :2] / projected[mask][:, 2:], grid[mask], atol=1e-3)
    assert 0 < flips < 12


def test_corrupt_shard_arrays_get_clear_errors(tmp_path):
    rng = np.random.default_rng(4)
    with ShardWriter(tmp_path / "ds", 4, {"image_size": 16, "seq_len": 1}) as writer:
        writer.add(random_sample(rng, frames=1, size=16, tracks=3), record("train", "id0"))
    dataset = FaceDataset(tmp_path / "ds", "train")
    (tmp_path / "ds" / dataset.record(0)["shard"] / "depth.npy").write_bytes(b"\x93NUMPY truncated")
    with pytest.raises(ValueError, match="corrupt or missing dataset array"):
        FaceDataset(tmp_path / "ds", "train")[0]
