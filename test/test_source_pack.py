"""Packs of labelled sources (training.data.pack): labels and face crops kept exactly, renders without the face mesh."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import FACES_TRAIN, REPO
from faceanything_ros.canonical.space import load_canonical_space
from faceanything_ros.data.format import read_manifest
from faceanything_ros.geometry.projection import project_points
from faceanything_ros.io.frames import read_image
from training.cli import main as data_main
from training.data.config import CameraSamplerConfig, DataEngineConfig
from training.data.pack import JPEG_QUALITY, PACK_ARRAYS, PACK_JSON, SourcePack
from training.data.splits import check_splits

MAX_MB = 1.2  # conftest.source_pack's budget


def test_pack_keeps_clips_first_within_its_budget(source_pack):
    pack = source_pack
    manifest = json.loads((pack / PACK_JSON).read_text())
    with np.load(pack / PACK_ARRAYS) as arrays:
        offsets, vertices = arrays["offsets"], arrays["vertices"]
        assert vertices.dtype == np.float16 and vertices.shape[1:] == (478, 3)
    used = int(offsets[-1]) + vertices.size * 2
    assert used <= MAX_MB * 1e6
    clips = [entry["clip"] for entry in manifest["sources"]]
    assert clips[0] and not clips[-1] and clips == sorted(clips, reverse=True)  # every clip before any image
    for entry in manifest["sources"]:
        frames = entry["frames"]
        assert len(entry["rows"]) == (4 if entry["clip"] else 1)
        if entry["clip"]:
            assert np.all(np.diff(frames) == 2) and entry["key"] == f"{entry['record']['source']}#{frames[0]}"
        assert manifest["provenance"][entry["record"]["provenance"]]["terms"]


def test_packed_image_matches_its_direct_label(source_pack):
    """The stored crop, intrinsics and mesh are the image's own label: the mesh projects onto the same pixels."""
    pack = source_pack
    from faceanything_ros.canonical.pseudo_labels import FaceMeshLabeler
    from training.data.generator import FileSources

    space, config = load_canonical_space(), DataEngineConfig(image_size=64, seq_len=2)
    reader = SourcePack(pack, space, config)
    images, videos = reader.catalogue()
    key, record = images[0]
    frames, indices = reader.frames(key, np.random.default_rng(0))
    assert len(frames) == 2 and frames[0] is frames[1] and indices == [0, 0]
    packed = frames[0]
    original = read_image(FACES_TRAIN / record["source"])
    direct = FileSources(space, config, FaceMeshLabeler(space)).label_frame(original, key)
    np.testing.assert_allclose(packed.vertices, direct.vertices, atol=5e-5)  # float16 offsets: < 0.05 mm
    np.testing.assert_allclose(packed.rotation, direct.rotation, atol=1e-9)
    assert packed.rgb.shape[0] < original.shape[0] and packed.intrinsics[0, 0] < direct.intrinsics[0, 0]
    # the packed K is the image's K cut at integer pixel edges (x0, y0) and resized to the stored crop,
    # pixel centres mapped as cv2.resize maps them: u' = (u - x0 + 0.5) * scale - 0.5
    height, width = packed.rgb.shape[:2]
    scale = np.diag(packed.intrinsics)[:2] / np.diag(direct.intrinsics)[:2]
    cut = np.array([width, height]) / scale
    corner = 0.5 - (packed.intrinsics[:2, 2] - scale * direct.intrinsics[:2, 2] + 0.5) / scale
    np.testing.assert_allclose(cut, np.round(cut), atol=1e-6)
    np.testing.assert_allclose(corner, np.round(corner), atol=1e-6)
    (x0, y0), (w, h) = np.round(corner).astype(int), np.round(cut).astype(int)
    assert x0 >= 0 and y0 >= 0 and x0 + w <= original.shape[1] and y0 + h <= original.shape[0]
    resized = cv2.resize(original[y0:y0 + h, x0:x0 + w], (width, height), interpolation=cv2.INTER_AREA)
    coded = cv2.imdecode(cv2.imencode(".jpg", resized[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1],
                         cv2.IMREAD_COLOR)[..., ::-1]
    assert np.mean(np.abs(coded.astype(float) - packed.rgb)) < 0.5  # that crop, JPEG-coded as the pack codes it
    surface = np.unique(space.topology)  # the mesh lands on the same pixels of the cut image
    in_original = project_points(direct.vertices[surface], direct.intrinsics)[0]
    in_pack = project_points(packed.vertices[surface], packed.intrinsics)[0]
    np.testing.assert_allclose(in_pack, (in_original - [x0, y0] + 0.5) * scale - 0.5, atol=0.05)  # float16 steps
    assert reader.image(key).shape == packed.rgb.shape


def test_clip_windows_are_consecutive_frames(source_pack):
    pack = source_pack
    space = load_canonical_space()
    reader = SourcePack(pack, space, DataEngineConfig(image_size=64, seq_len=2, frame_stride=2))
    _, videos = reader.catalogue()
    assert videos and all(record["source"].startswith("videos/") for _, record in videos)
    rng = np.random.default_rng(1)
    starts = set()
    for _ in range(20):
        frames, indices = reader.frames(videos[0][0], rng)
        assert len(frames) == 2 and indices[1] - indices[0] == 2
        assert not np.array_equal(frames[0].vertices, frames[1].vertices)  # a talking head moves
        starts.add(indices[0])
    assert len(starts) == 3  # every window of a 4-frame clip is drawn


def test_build_from_a_pack_needs_no_face_mesh(source_pack, tmp_path):
    """What a machine without mediapipe runs: the dataset is built and mediapipe is never imported."""
    pack = source_pack
    output = tmp_path / "from_pack"
    script = ("import sys; from training.cli import main; "
              f"code = main(['build', '--pack', {str(pack)!r}, '-o', {str(output)!r}, '--samples', '24', "
              "'--size', '32', '--seq-len', '3', '--workers', '1']); "
              "sys.exit(code or ('mediapipe' in sys.modules and 'mediapipe imported'))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = read_manifest(output)
    assert manifest["pack"] == str(pack.resolve()) and manifest["seq_len"] == 3
    records = manifest["samples"]
    assert len(records) == 24 and {r["source"] for r in records} <= {
        e["record"]["source"] for e in json.loads((pack / PACK_JSON).read_text())["sources"]}
    check_splits(records)


def test_bad_packs_get_clear_errors(source_pack, tmp_path):
    pack = source_pack
    space = load_canonical_space()
    with pytest.raises(FileNotFoundError, match="no source pack file"):
        SourcePack(tmp_path / "missing", space, DataEngineConfig())
    with pytest.raises(ValueError, match="clips of 4 frames 2 apart"):
        SourcePack(pack, space, DataEngineConfig(image_size=64, seq_len=5))
    with pytest.raises(ValueError, match="clips of 4 frames 2 apart"):
        SourcePack(pack, space, DataEngineConfig(image_size=64, seq_len=2, frame_stride=3))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / PACK_JSON).write_bytes((pack / PACK_JSON).read_bytes())
    (broken / PACK_ARRAYS).write_bytes((pack / PACK_ARRAYS).read_bytes()[:5000])
    with pytest.raises(ValueError, match="corrupt source pack"):
        SourcePack(broken, space, DataEngineConfig())
    (broken / PACK_ARRAYS).write_bytes((pack / PACK_ARRAYS).read_bytes())
    (broken / PACK_JSON).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="is not a faceanything-source-pack"):
        SourcePack(broken, space, DataEngineConfig())
    with pytest.raises(KeyError, match="is not a source of pack"):
        SourcePack(pack, space, DataEngineConfig(image_size=64)).image("images/nowhere.jpg")
    with pytest.raises(ValueError, match="holds faces at most 96 px wide.*--face-px 197"):
        SourcePack(pack, space, DataEngineConfig(image_size=256))
    with pytest.raises(ValueError, match="keeps 2.2 face extents"):
        SourcePack(pack, space, DataEngineConfig(image_size=128, cameras=CameraSamplerConfig(
            crop_scale=(1.3, 2.2), source_view_probability=1.0)))
    rows = json.loads((pack / PACK_JSON).read_text())
    rows["sources"][0]["rows"][0] = -1
    (broken / PACK_JSON).write_text(json.dumps(rows))
    with pytest.raises(ValueError, match="do not match"):
        SourcePack(broken, space, DataEngineConfig())
    del rows["sources"][0]["rows"]
    (broken / PACK_JSON).write_text(json.dumps(rows))
    with pytest.raises(ValueError, match="lacks 'rows'"):
        SourcePack(broken, space, DataEngineConfig())


def test_pack_command_refuses_what_it_cannot_do(source_pack, tmp_path, caplog):
    images = str(FACES_TRAIN / "images" / "utkface_crop")
    assert data_main(["pack", "--images", images, "-o", str(source_pack)]) == 2
    assert "already holds a pack" in caplog.text  # never overwrites a pack
    assert data_main(["pack", "--images", images, "-o", str(tmp_path / "tiny"), "--max-mb", "0.001"]) == 2
    assert "no source could be packed" in caplog.text
    assert data_main(["build", "--pack", str(source_pack), "--images", images, "-o", str(tmp_path / "x"),
                      "--samples", "1"]) == 2
    assert "either --pack PACK or --images/--videos, not both" in caplog.text
