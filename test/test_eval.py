"""``faceanything eval`` and its metrics: a perfect prediction scores zero error, known perturbations
the expected error, both methods go through the same code, and bad input gets clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import face_video
from faceanything_ros.cli import main as cli
from faceanything_ros.data.format import read_manifest
from faceanything_ros.eval.dataset_eval import SamplePrediction, dataset_batches, model_predictions, score_batches, score_sample
from faceanything_ros.eval.metrics import MetricSums, tap_metrics
from faceanything_ros.geometry.face_scale import face_size_scale
from faceanything_ros.geometry.virtual_camera import virtual_rays, virtual_rotation
from faceanything_ros.model.checkpoint import init_checkpoint, load_checkpoint


def truth_prediction(batch, b: int) -> SamplePrediction:
    """The ground truth of sample ``b`` as a method's prediction."""
    mask = batch["mask"][b].numpy()
    return SamplePrediction(np.where(mask, batch["depth"][b].numpy(), np.nan), batch["canonical"][b].numpy(),
                            batch["surface"][b].numpy())


def score(dataset, change=lambda prediction: prediction) -> dict:
    sums = MetricSums(read_manifest(dataset)["canonical_space"]["mm_per_unit"])
    for batch in dataset_batches(dataset, None, limit=16):
        for b in range(batch["images"].shape[0]):
            score_sample(sums, change(truth_prediction(batch, b)), batch, b)
    return sums.summary()


def test_a_perfect_prediction_has_zero_error(small_dataset):
    summary = score(small_dataset)
    assert summary["depth"]["rmse_mm"] == pytest.approx(0.0, abs=1e-3)
    assert summary["depth"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert summary["depth"]["delta1"] == 1.0
    assert summary["canonical"]["median_mm"] == pytest.approx(0.0, abs=1e-3)
    assert summary["mask"]["iou"] == 1.0 and summary["mask"]["face_found"] == 1.0
    # tracks found by nearest canonical neighbour land on the pixel centre nearest the exact position
    # (at most 0.71 px away); at 32 px the TAP thresholds are 1/8 of their 256 px values, so rounding
    # alone keeps delta_avg below 1
    assert summary["tracking"]["epe_px"] < 0.75
    assert summary["tracking"]["delta_avg"] > 0.55
    assert summary["tracking"]["epe_3d_mm"] < 5.0  # the nearest pixel's surface point, about a pixel away at 32 px


def test_known_perturbations_give_the_expected_errors(small_dataset):
    mm_per_unit = read_manifest(small_dataset)["canonical_space"]["mm_per_unit"]

    def perturb(prediction: SamplePrediction) -> SamplePrediction:
        return SamplePrediction(prediction.depth * 1.1, prediction.canonical + np.array([0.01, 0.0, 0.0]),
                                prediction.mask)

    summary = score(small_dataset, perturb)
    assert summary["depth"]["abs_rel"] == pytest.approx(0.1, rel=1e-5)
    assert summary["depth"]["abs_rel_aligned"] == pytest.approx(0.0, abs=1e-6)  # a pure scale aligns away
    assert summary["depth"]["delta1"] == 1.0
    assert summary["canonical"]["median_mm"] == pytest.approx(0.01 * mm_per_unit, rel=1e-3)
    assert summary["tracking"]["epe_3d_mm"] > 20.0  # 10 % of a 0.3-3 m distance


def test_tap_metrics_count_misses_and_occlusions():
    true = np.zeros((2, 3, 2))
    visible = np.array([[True, True, False], [True, True, True]])
    predicted = true.copy()
    predicted[1, 2] = [3.0, 4.0]  # 5 px off at 256 px: inside 8 and 16, outside 1, 2, 4
    result = tap_metrics(predicted, visible.copy(), true, visible, np.zeros(2, dtype=int), 256)
    # evaluated visible points: (0, 1), (1, 1), (1, 2); the last one is 5 px off
    assert result["delta_avg"] == pytest.approx((3 * 2 / 3 + 2 * 1.0) / 5)
    assert result["epe_px"] == pytest.approx(5.0 / 3)
    assert result["occlusion_accuracy"] == 1.0


def test_eval_cli_scores_both_methods_side_by_side_on_a_dataset(small_dataset, tmp_path, capsys):
    checkpoint = tmp_path / "tiny32.safetensors"
    init_checkpoint(checkpoint, "tiny", image_size=32)
    out = tmp_path / "eval.json"
    assert cli(["eval", str(small_dataset), "--method", "model", "mesh", "--model", str(checkpoint),
                "--split", "all", "--limit", "4", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["methods"] == ["model", "mesh"]
    assert {"depth", "canonical", "mask", "tracking"} <= set(result["model"])
    assert "mask" in result["mesh"]
    table = capsys.readouterr().out
    assert "canonical.median_mm" in table and "model" in table and "mesh" in table


def test_eval_cli_scores_the_model_as_the_predictor_runs_it_with_flip_averaging_or_without(small_dataset, tmp_path):
    checkpoint = tmp_path / "tiny32.safetensors"
    init_checkpoint(checkpoint, "tiny", image_size=32)
    scores = {}
    for switch in ("--flip-average", "--no-flip-average"):
        out = tmp_path / f"{switch}.json"
        assert cli(["eval", str(small_dataset), "--model", str(checkpoint), "--split", "all", "--limit", "8",
                    switch, "--json", str(out)]) == 0
        scores[switch] = json.loads(out.read_text())["canonical"]["median_mm"]
    model, _ = load_checkpoint(checkpoint)
    mm_per_unit = read_manifest(small_dataset)["canonical_space"]["mm_per_unit"]
    for flip_average, switch in ((True, "--flip-average"), (False, "--no-flip-average")):
        direct = score_batches(lambda batch: model_predictions(model, batch, torch.device("cpu"), mm_per_unit,
                                                               flip_average=flip_average),
                               dataset_batches(small_dataset, None, 8), mm_per_unit)
        assert direct["canonical"]["median_mm"] == pytest.approx(scores[switch], rel=1e-6)
    assert scores["--flip-average"] != pytest.approx(scores["--no-flip-average"], rel=1e-3)


def test_eval_cli_rejects_bad_input(small_dataset, tmp_path, caplog):
    out = tmp_path / "e.json"
    assert cli(["eval", str(tmp_path / "missing"), "--json", str(out)]) == 2
    assert "no such dataset or video" in caplog.text
    checkpoint = tmp_path / "tiny64.safetensors"
    init_checkpoint(checkpoint, "tiny", image_size=64)
    assert cli(["eval", str(small_dataset), "--model", str(checkpoint), "--json", str(out)]) == 2
    assert "build the dataset with faceanything-data build --size 64" in caplog.text
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(["eval", str(empty), "--model", str(checkpoint), "--json", str(out)]) == 2
    assert "no dataset manifest" in caplog.text


def test_eval_cli_scores_the_face_mesh_method_on_a_real_video(tmp_path):
    video = face_video("liveportrait_d18_man_frontal_mouth.mp4")
    out = tmp_path / "video.json"
    assert cli(["eval", str(video), "--method", "mesh", "--limit", "12", "--json", str(out)]) == 0
    result = json.loads(out.read_text())["video"]
    assert result["face_rate"] == 1.0 and result["frames"] == 12
    # the mesh method's canonical map locates its own landmarks to within a few percent of the IOD
    assert result["nme_median_pct"] < 3.0
    assert 0.0 <= result["jitter_px"] < 3.0 and result["fps"] > 0
    # its face mask is the face mesh's own surface, so it agrees with the labeller's
    assert result["mask_iou_median"] > 0.9


def test_canonical_points_are_located_at_their_pixels():
    from faceanything_ros.eval.tracking import locate_canonical_points

    v, u = np.mgrid[0:20, 0:30].astype(np.float64)
    canonical = np.stack([u / 30, v / 20, np.zeros_like(u)], axis=-1)  # a plane: each pixel its own coordinate
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:15, 10:25] = True
    points = np.array([[12 / 30, 7 / 20, 0.0], [0.0, 0.0, 0.0], [np.nan, 0.0, 0.0], [12.3 / 30, 7.6 / 20, 0.0]])
    pixels, distance = locate_canonical_points(canonical, mask, points)
    np.testing.assert_array_equal(pixels[0], [12, 7])
    assert distance[0] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(pixels[3], [12.3, 7.6], atol=1e-9)  # between pixels: refined as the tracker refines
    assert distance[3] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_array_equal(pixels[1], [10, 5])  # off the mask: the nearest face pixel, far away
    assert distance[1] == pytest.approx(np.hypot(10 / 30, 5 / 20))
    assert np.isnan(pixels[2]).all() and np.isinf(distance[2])
    empty_pixels, empty_distance = locate_canonical_points(canonical, np.zeros_like(mask), points)
    assert np.isnan(empty_pixels).all() and np.isinf(empty_distance).all()


class FocalStandIn(torch.nn.Module):
    """Predicts a batch's truth as seen by a camera with ``factor`` x the true focal length: that
    camera's virtual rays and depth ``factor`` x farther, as a network fooled about the focal length
    would (the face is the same size in the image)."""

    def __init__(self, batch, factor: float) -> None:
        super().__init__()
        self.batch, self.factor = batch, factor

    def forward(self, images):
        batch, size = self.batch, images.shape[-1]
        rays = np.empty(tuple(batch["rays"].shape))
        for b, t in np.ndindex(*rays.shape[:2]):
            K = batch["intrinsics"][b, t].double().numpy()
            longer = K.copy()
            longer[[0, 1], [0, 1]] *= self.factor
            rays[b, t] = virtual_rays(longer, virtual_rotation(longer, size, size), size, size)
        shape = batch["mask"].shape
        return {"depth": batch["depth"] * self.factor, "rays": torch.from_numpy(rays).float(),
                "ray_confidence": torch.ones(shape), "canonical": batch["canonical"],
                "mask_logit": torch.where(batch["mask"], 10.0, -10.0)}


def test_model_depth_is_rescaled_by_the_focal_its_rays_imply(small_dataset):
    batch = next(dataset_batches(small_dataset, None, limit=8))
    mm_per_unit = read_manifest(small_dataset)["canonical_space"]["mm_per_unit"]
    for factor in (1.0, 1.25):
        predictions = model_predictions(FocalStandIn(batch, factor), batch, torch.device("cpu"), mm_per_unit,
                                        metric_depth="rays")
        for b, prediction in enumerate(predictions):
            face = batch["mask"][b].numpy()
            np.testing.assert_allclose(prediction.focal_error_pct, 100 * (factor - 1), atol=0.2)
            np.testing.assert_allclose(prediction.depth[face], batch["depth"][b].numpy()[face], rtol=2e-3)


def test_model_depth_by_face_size_gives_the_face_the_template_size_whatever_focal_it_believes(small_dataset):
    """Seen along the true camera's rays, each crop's face gets the canonical template's metric size:
    the same depth whether the network believed the true focal or a longer one, the truth times the
    true face's own size ratio to the template."""
    batch = next(dataset_batches(small_dataset, None, limit=8))
    mm_per_unit = read_manifest(small_dataset)["canonical_space"]["mm_per_unit"]
    true_depth = batch["depth"].double().numpy()
    depths = [np.stack([p.depth for p in model_predictions(FocalStandIn(batch, factor), batch, torch.device("cpu"),
                                                           mm_per_unit)]) for factor in (1.0, 1.25)]
    for b, t in np.ndindex(*true_depth.shape[:2]):
        face = (batch["mask"][b, t] & batch["in_frame"][b, t]).numpy()
        true_scale = face_size_scale(true_depth[b, t], batch["rays"][b, t].numpy(), batch["canonical"][b, t].numpy(),
                                     face, mm_per_unit / 1000.0)
        assert 0.8 < true_scale < 1.25  # data-engine faces are about the template's size
        for depth in depths:
            np.testing.assert_allclose(depth[b, t][face], true_depth[b, t][face] * true_scale, rtol=1e-4)
