"""Training losses on analytic cases: zero at a perfect prediction, the invariances each term
claims, finite gradients with empty masks, and the confidence trade-off."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from faceanything_ros.geometry.camera import intrinsics_matrix
from faceanything_ros.geometry.virtual_camera import virtual_rays, virtual_rotation
from faceanything_ros.model.focal import focal_from_rays
from training.losses import (
    LossWeights, compute_losses, confidence_weighted, depth_losses, gradient_matching, ray_angle, selected_thresholds,
    sorted_thresholds, trimmed,
)

SIZE = 16


def virtual_ray_map(focal: float, cx: float, cy: float) -> torch.Tensor:
    K = intrinsics_matrix(focal, focal, cx, cy)
    return torch.from_numpy(virtual_rays(K, virtual_rotation(K, SIZE, SIZE), SIZE, SIZE)).float()


def perfect_batch(frames: int = 2) -> tuple[dict, dict]:
    """A batch (B = 2) and the network outputs that predict it exactly (confidence 1)."""
    generator = torch.Generator().manual_seed(0)
    depth = 0.5 + torch.rand(2, frames, SIZE, SIZE, generator=generator)
    canonical = torch.rand(2, frames, SIZE, SIZE, 3, generator=generator) * 2 - 1
    rays = virtual_ray_map(40.0, 7.5, 7.5).expand(2, frames, SIZE, SIZE, 3).clone()
    mask = torch.zeros(2, frames, SIZE, SIZE, dtype=torch.bool)
    mask[..., 3:13, 4:12] = True
    tracks = torch.rand(2, 5, frames, 2, generator=generator) * (SIZE - 1)
    batch = {"depth": depth * mask, "canonical": canonical * mask[..., None], "rays": rays, "mask": mask,
             "surface": mask.clone(), "in_frame": torch.ones_like(mask), "tracks": tracks,
             "track_visible": torch.ones(2, 5, frames, dtype=torch.bool), "camera_known": torch.ones(2, dtype=torch.bool)}
    # tracks read the canonical map at their exact pixels: make the map constant so any pixel agrees
    batch["canonical"][:] = 0.25
    batch["track_canonical"] = torch.full((2, 5, 3), 0.25)
    outputs = {"depth": depth.clone().requires_grad_(), "depth_confidence": torch.ones(2, frames, SIZE, SIZE),
               "rays": rays.clone(), "ray_confidence": torch.ones(2, frames, SIZE, SIZE),
               "canonical": torch.full((2, frames, SIZE, SIZE, 3), 0.25, requires_grad=True),
               "canonical_confidence": torch.ones(2, frames, SIZE, SIZE),
               "mask_logit": (mask.float() * 2 - 1) * 30.0}
    return batch, outputs


def test_perfect_prediction_has_zero_loss_in_every_term():
    batch, outputs = perfect_batch()
    terms = compute_losses(outputs, batch, LossWeights(tracks=1.0))
    for name in ("depth", "depth_scale_invariant", "depth_gradient", "depth_shape", "rays", "focal", "canonical", "tracks"):
        assert abs(float(terms[name].detach())) < 1e-4, name
    assert float(terms["mask"]) < 1e-6  # BCE of saturated correct logits


def test_focal_estimate_recovers_the_virtual_cameras_focal():
    for focal in (20.0, 60.0, 300.0):
        rays = virtual_ray_map(focal, 7.5, 7.5)[None, None]
        estimate = focal_from_rays(rays, torch.ones(1, 1, SIZE, SIZE, dtype=torch.bool))
        assert float(estimate) == pytest.approx(focal, rel=1e-3)


def test_metric_depth_term_follows_the_focal_ratio_like_the_predictor():
    """A network whose rays say focal f/2 and whose depth is half the truth is metrically right
    once scaled by true/predicted focal (what Predictor does with a CameraInfo)."""
    depth = torch.full((1, 1, SIZE, SIZE), 2.0)
    valid = torch.ones(1, 1, SIZE, SIZE, dtype=torch.bool)
    terms = depth_losses(depth / 2, torch.ones_like(depth), depth, valid, torch.tensor([[2.0]]), alpha=0.0, metric_valid=valid)
    assert float(terms["depth"]) < 1e-6
    wrong = depth_losses(depth / 2, torch.ones_like(depth), depth, valid, torch.tensor([[1.0]]), alpha=0.0, metric_valid=valid)
    assert float(wrong["depth"]) == pytest.approx(math.log(2.0), rel=1e-5)


def test_scale_invariant_and_gradient_terms_ignore_a_global_scale_but_not_shape():
    generator = torch.Generator().manual_seed(1)
    target = 0.5 + torch.rand(1, 1, SIZE, SIZE, generator=generator)
    valid = torch.ones(1, 1, SIZE, SIZE, dtype=torch.bool)
    scaled = depth_losses(target * 1.7, torch.ones_like(target), target, valid, torch.ones(1, 1), alpha=0.0, metric_valid=valid)
    assert float(scaled["depth_gradient"]) < 1e-5 and float(scaled["depth_shape"]) < 1e-5
    assert float(scaled["depth_scale_invariant"]) == pytest.approx((1 - 0.85) * math.log(1.7) ** 2, rel=1e-4)
    bumped = target.clone()
    bumped[..., 8:, :] *= 1.3
    shaped = depth_losses(bumped, torch.ones_like(target), target, valid, torch.ones(1, 1), alpha=0.0, metric_valid=valid)
    assert float(shaped["depth_gradient"]) > 1e-3 and float(shaped["depth_shape"]) > 1e-2


def test_ray_angle_is_the_angle_between_rays():
    a = torch.tensor([[0.0, 0.0, 1.0]])
    b = torch.tensor([[math.sin(0.1), 0.0, math.cos(0.1)]])
    assert float(ray_angle(a, b)) == pytest.approx(0.1, rel=1e-5)
    assert float(ray_angle(a, a)) < 1e-6


def test_confidence_trades_error_against_its_log_penalty():
    """For an error e, c * e - alpha * log c is smallest at c = alpha / e (so clamped at 1 when e > alpha)."""
    error = torch.full((1, 4), 0.05)
    valid = torch.ones(1, 4, dtype=torch.bool)
    losses = {c: float(confidence_weighted(error, torch.full((1, 4), c), valid, 0.2)) for c in (1.0, 4.0, 8.0)}
    assert losses[4.0] < losses[1.0] and losses[4.0] < losses[8.0]


def test_trimming_drops_the_top_two_percent_per_sample():
    error = torch.arange(100, dtype=torch.float32).reshape(1, 100)
    keep = trimmed(error, torch.ones(1, 100, dtype=torch.bool))
    assert int(keep.sum()) == 98 and not keep[0, -1]


def test_empty_masks_give_zero_loss_and_finite_gradients():
    batch, outputs = perfect_batch()
    for name in ("mask", "surface", "in_frame"):
        batch[name] = torch.zeros_like(batch[name])
    batch["track_visible"][:] = False
    outputs["depth"] = (outputs["depth"].detach() * 3).requires_grad_()
    terms = compute_losses(outputs, batch, LossWeights(tracks=1.0))
    terms["total"].backward()
    assert float(terms["total"]) == 0.0
    assert torch.isfinite(outputs["depth"].grad).all() and torch.isfinite(outputs["canonical"].grad).all()


def test_batch_split_in_halves_averages_to_the_whole_batch_loss():
    """Per-sample means make two DDP halves average exactly to the whole batch's loss."""
    batch, outputs = perfect_batch()
    outputs = {k: (v.detach() * 1.1 if k in ("depth", "canonical") else v) for k, v in outputs.items()}
    whole = compute_losses(outputs, batch, LossWeights(tracks=1.0))["total"]
    halves = [compute_losses({k: v[i:i + 1] for k, v in outputs.items()}, {k: v[i:i + 1] for k, v in batch.items()},
                             LossWeights(tracks=1.0))["total"] for i in range(2)]
    assert float(whole) == pytest.approx(float(sum(halves)) / 2, rel=1e-6)


def test_gradient_matching_is_zero_for_a_constant_error_with_holes():
    error = torch.full((1, 1, SIZE, SIZE), 0.3)
    valid = torch.from_numpy(np.random.default_rng(0).random((1, 1, SIZE, SIZE)) > 0.3)
    assert float(gradient_matching(error, valid)) == 0.0


def test_shape_term_counts_millimetres_alike_at_every_distance():
    """A 5 mm bump costs the same shape loss at 0.3 m and at 3 m (the log terms would differ 10x)."""
    valid = torch.ones(1, 1, SIZE, SIZE, dtype=torch.bool)
    costs = []
    for distance in (0.3, 3.0):
        target = torch.full((1, 1, SIZE, SIZE), distance)
        bumped = target.clone()
        bumped[..., :4, :] += 0.005
        terms = depth_losses(bumped, torch.ones_like(target), target, valid, torch.ones(1, 1), alpha=0.0, metric_valid=valid)
        costs.append(float(terms["depth_shape"]))
    assert costs[0] == pytest.approx(costs[1], rel=1e-3) and costs[0] == pytest.approx(0.25 * 0.005 / 0.1, rel=1e-2)


def test_focal_term_is_the_log_focal_ratio():
    batch, outputs = perfect_batch(frames=1)
    outputs["rays"] = virtual_ray_map(80.0, 7.5, 7.5).expand(2, 1, SIZE, SIZE, 3).clone()  # twice the true focal
    terms = compute_losses(outputs, batch, LossWeights())
    assert float(terms["focal"]) == pytest.approx(math.log(2.0), rel=1e-3)


def test_a_sample_of_unknown_camera_trains_no_rays_focal_or_metric_depth():
    """A source-view sample (K assumed when labelling): wrong rays and a wrong depth scale cost
    nothing, while its relative depth, canonical map and mask still count."""
    batch, outputs = perfect_batch(frames=1)
    batch["camera_known"] = torch.tensor([True, False])
    outputs["rays"] = virtual_ray_map(80.0, 7.5, 7.5).expand(2, 1, SIZE, SIZE, 3).clone()
    outputs["depth"] = outputs["depth"].detach() * 1.5  # scale only: relative depth stays right
    both = compute_losses(outputs, batch, LossWeights())
    known_only = compute_losses({k: v[:1] for k, v in outputs.items()}, {k: v[:1] for k, v in batch.items()}, LossWeights())
    for name in ("rays", "focal", "depth"):
        assert float(known_only[name]) > 0.05, name
        assert float(both[name]) == pytest.approx(float(known_only[name]) / 2, rel=1e-5), name  # sample 2 adds 0
    outputs["canonical"] = outputs["canonical"].detach() + torch.tensor([0.0, 1.0]).reshape(2, 1, 1, 1, 1) * 0.1
    shifted = compute_losses(outputs, batch, LossWeights())
    assert float(shifted["canonical"]) > 0.01  # the unknown-camera sample's canonical error counts


def test_trim_thresholds_of_both_strategies_equal_the_per_sample_quantile():
    """The CPU selection and the GPU sort against a per-sample reference (the kthvalue of each sample's
    valid errors), with ties, empty, one-pixel and fully valid samples, on maps of any shape."""
    generator = torch.Generator().manual_seed(0)
    for case in range(60):
        shape = [(3, 50), (4, 2, 8, 8), (2, 3), (5, 1)][case % 4]
        error = torch.rand(shape, generator=generator)
        if case % 3 == 0:
            error = (error * 4).round()
        valid = torch.rand(shape, generator=generator) < [0.0, 0.05, 0.5, 1.0][case % 4]
        expected = valid.clone()
        for index in range(shape[0]):
            values = error[index][valid[index]]
            if values.numel() >= 2:
                rank = max(1, round(0.98 * values.numel()))
                expected[index] &= error[index] <= values.kthvalue(rank).values
        assert torch.equal(trimmed(error, valid), expected)
        flat, flat_valid = error.flatten(1), valid.flatten(1)
        assert torch.equal(sorted_thresholds(flat, flat_valid), selected_thresholds(flat, flat_valid))
