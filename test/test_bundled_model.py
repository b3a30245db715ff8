"""The bundled default model: a trained checkpoint inside the package, loaded when no model is
given, that finds a shared face and agrees with the face-mesh method's canonical map."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import face_image, face_video
from faceanything_ros.canonical.space import load_canonical_space
from faceanything_ros.cli import main as cli
from faceanything_ros.io.frames import read_image
from faceanything_ros.model.bundled import bundled_checkpoint, checkpoint_or_bundled
from faceanything_ros.model.checkpoint import read_checkpoint_metadata
from faceanything_ros.predictor import Predictor
from faceanything_ros.reference import MeshReference

MAX_MEDIAN_CANONICAL_MM = 15.0  # the shipped model's median canonical difference to the face mesh on this face
MAX_FILE_BYTES = 15_000_000


def test_the_bundled_checkpoint_is_trained_small_and_the_default():
    path = bundled_checkpoint()
    assert path is not None and checkpoint_or_bundled(None) == path
    metadata = read_checkpoint_metadata(path)
    space = load_canonical_space()
    assert metadata.trained and metadata.input_resolution == (128, 128)
    assert (metadata.canonical_space_id, metadata.canonical_space_version) == (space.id, space.version)
    assert path.stat().st_size <= MAX_FILE_BYTES
    compute = metadata.training_data["compute"]
    assert compute[0]["stage"] == 1 and all(entry["hours"] > 0 and entry["steps"] > 0 for entry in compute)
    assert sum(entry["hours"] for entry in compute) >= 2.0  # the shipped lineage trained at least 2 hours
    assert (path.parent / "MODEL_CARD.md").is_file()


def test_the_bundled_model_finds_a_shared_face_and_agrees_with_the_face_mesh():
    rgb = read_image(face_image("deca_exp_1.jpg"))
    with Predictor(bundled_checkpoint()) as predictor, MeshReference() as mesh:
        learned, reference = predictor.predict(rgb[None])[0], mesh.predict(rgb[None])[0]
    assert learned.found and reference.found
    both = learned.mask & reference.mask
    assert both.sum() > 0.5 * reference.mask.sum()
    difference = np.linalg.norm(learned.canonical[both] - reference.canonical[both], axis=-1)
    assert np.median(difference) * load_canonical_space().mm_per_unit < MAX_MEDIAN_CANONICAL_MM
    depth = learned.depth[both]
    assert 0.2 < np.median(depth) < 3.0  # a portrait photo, metres


def test_the_readme_demo_runs_with_the_bundled_model(tmp_path):
    video = face_video("liveportrait_d3_woman_headturns.mp4")
    assert cli(["reconstruct", str(video), "-o", str(tmp_path / "demo"), "--max-frames", "90"]) == 0
    assert len(list((tmp_path / "demo" / "depth").glob("*.png"))) == 90
    assert (tmp_path / "demo" / "tracks.npz").is_file()
