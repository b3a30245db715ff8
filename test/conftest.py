"""Shared fixtures: paths of the real face data, a tiny untrained checkpoint, one colcon build."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"  # real face data beside the repository (may be absent)
FACES = SHARED_DATA / "faces"
FACES_TRAIN = SHARED_DATA / "faces_train"


def _shared_file(path: Path) -> Path:
    """``path`` when it is a file, else skip the test (the shared data is absent)."""
    if not path.is_file():
        pytest.skip(f"shared face data not found: {path}")
    return path


def face_image(name: str) -> Path:
    """Path of an image in ../shared/data/faces/images (skips the test when the data is absent)."""
    return _shared_file(FACES / "images" / name)


def face_video(name: str) -> Path:
    """Path of a video in ../shared/data/faces/videos (skips the test when the data is absent)."""
    return _shared_file(FACES / "videos" / name)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """48 two-frame samples at 32 px from CelebA-HQ portraits (several identities land in val/test)."""
    images = FACES_TRAIN / "images" / "stargan_v2_celebahq"
    if not images.is_dir():
        pytest.skip(f"shared face data not found: {images}")
    root = tmp_path_factory.mktemp("data")
    config = root / "data.yaml"
    config.write_text("views_per_label: 2\n")  # 24 identities, so that some land in val and test
    from training.cli import main as data_main

    code = data_main(["build", "--images", str(images), "-o", str(root / "faces32"), "--samples", "48",
                      "--size", "32", "--seq-len", "2", "--config", str(config)])
    assert code == 0
    return root / "faces32"


@pytest.fixture(scope="session")
def source_pack(tmp_path_factory) -> Path:
    """A pack of labelled sources (faceanything-data pack, 1.2 MB): two 4-frame clips of each lia_vox video
    first, then UTKFace portraits (one identity each, so that some land in val and test)."""
    images, videos = FACES_TRAIN / "images" / "utkface_crop", FACES_TRAIN / "videos" / "lia_vox"
    if not images.is_dir() or not videos.is_dir():
        pytest.skip(f"shared face data not found: {images}, {videos}")
    folder = tmp_path_factory.mktemp("pack") / "pack"
    from training.cli import main as data_main

    code = data_main(["pack", "--images", str(images), "--videos", str(videos), "-o", str(folder),
                      "--max-mb", "1.2", "--clips-per-video", "2", "--seq-len", "4"])
    assert code == 0
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained ``tiny`` checkpoint (seeded random weights)."""
    from faceanything_ros.model.checkpoint import init_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    init_checkpoint(path, "tiny", seed=0)
    return path


@pytest.fixture(autouse=True)
def torch_threads():
    """Each test starts with torch's own thread count (a FrameProcessor sets it process-wide: NodeConfig.cpu_threads)."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def engine_cache(tmp_path_factory) -> Path:
    """Compiled engine artefacts of the test session (and the nodes it starts) go to a temporary folder."""
    path = tmp_path_factory.mktemp("engine_cache")
    os.environ["FACEANYTHING_ENGINE_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def built_workspace(tmp_path_factory) -> Path:
    """A colcon-built workspace of this repository (``ros_workspace``), built once per session for the
    tests that run the installed package as it is (a test changing the sources builds its own)."""
    from ros_workspace import build_environment, colcon_build, copy_repository

    root = tmp_path_factory.mktemp("ros_workspace")
    workspace = root / "ws"
    copy_repository(workspace)
    colcon_build(workspace, build_environment(root))
    return workspace
