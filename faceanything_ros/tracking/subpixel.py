"""Sub-pixel refinement of nearest-pixel matches by a local linear model of the canonical map.

Around the matched pixel ``p*`` the canonical map is modelled as ``c(p* + o) ~ c(p*) + J o``;
the ``(3, 2)`` Jacobian ``J`` is the least-squares fit over the valid pixels of the 3x3
neighbourhood, and the step ``delta`` is the least-squares solution of ``J delta = q - c(p*)``,
clamped to ``max_step`` pixels per axis. The result is exact when the map is locally affine.
"""
from __future__ import annotations

import numpy as np

from faceanything_ros.geometry.projection import sample_bilinear_or_nearest

NEIGHBOUR_OFFSETS = np.array([(du, dv) for dv in (-1, 0, 1) for du in (-1, 0, 1)], dtype=np.float64)  # (9, 2) (u, v)
OFFSET_PRODUCTS = np.einsum("ni,nj->nij", NEIGHBOUR_OFFSETS, NEIGHBOUR_OFFSETS).reshape(9, 4)  # o o^T per offset
MIN_RELATIVE_DETERMINANT = 1e-9  # det / trace^2 of a 2x2 normal matrix below which the fit is degenerate


def refine_subpixel(
    canonical: np.ndarray, valid: np.ndarray, pixels: np.ndarray, targets: np.ndarray, max_step: float = 1.0
) -> np.ndarray:
    """``(Q, 2)`` float64 refined pixels ``(u, v)`` where the canonical map best equals ``targets``.

    canonical: ``(H, W, 3)`` canonical map. valid: ``(H, W)`` bool, pixels usable in the fit.
    pixels: ``(Q, 2)`` integer matched pixels ``p*`` ``(u, v)``, inside the image and valid.
    targets: ``(Q, 3)`` query canonical coordinates ``q``.
    max_step: largest correction per axis, pixels; refined pixels are also kept inside the image.
    A match whose valid neighbours cannot determine both columns of ``J`` (none, or all on one
    line through ``p*``), or whose ``J`` has rank < 2, keeps its pixel.
    """
    height, width = valid.shape
    pixels = np.asarray(pixels, dtype=np.int64)
    neighbours = pixels[:, None, :] + NEIGHBOUR_OFFSETS.astype(np.int64)[None]  # (Q, 9, 2)
    inside = (neighbours >= 0).all(axis=2) & (neighbours[..., 0] < width) & (neighbours[..., 1] < height)
    cols = np.where(inside, neighbours[..., 0], 0)
    rows = np.where(inside, neighbours[..., 1], 0)
    usable = inside & valid[rows, cols]  # (Q, 9)
    centre = canonical[pixels[:, 1], pixels[:, 0]].astype(np.float64)  # (Q, 3)
    differences = np.where(usable[..., None], canonical[rows, cols] - centre[:, None], 0.0)  # (Q, 9, 3)
    # Least squares differences_n ~ J offset_n: (sum o o^T) J^T = sum o d^T.
    offset_normal = (usable @ OFFSET_PRODUCTS).reshape(-1, 2, 2)
    jacobian_t, fitted = _solve_symmetric_2x2(offset_normal, np.einsum("ni,qnk->qik", NEIGHBOUR_OFFSETS, differences))
    residual = np.asarray(targets, dtype=np.float64) - centre  # (Q, 3)
    # Least squares J step ~ residual: (J^T J) step = J^T residual.
    step, solved = _solve_symmetric_2x2(jacobian_t @ np.swapaxes(jacobian_t, 1, 2), jacobian_t @ residual[..., None])
    step = np.where((fitted & solved)[:, None], np.clip(step[..., 0], -max_step, max_step), 0.0)
    return np.clip(pixels + step, 0.0, [width - 1, height - 1])


def refine_matches(canonical: np.ndarray, valid: np.ndarray, pixels: np.ndarray, targets: np.ndarray,
                   distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel ``(Q, 2)`` float64 pixels of integer matches (``refine_subpixel``) and their ``(Q,)``
    canonical distances to ``targets`` there (bilinear, nearest at the edge of ``valid``); a refined
    pixel off ``valid`` keeps its integer pixel and its ``distance``."""
    refined = refine_subpixel(canonical, valid, pixels, targets)
    refined_distance = np.linalg.norm(sample_bilinear_or_nearest(canonical, refined, valid) - targets, axis=1)
    on_face = np.isfinite(refined_distance)
    return (np.where(on_face[:, None], refined, np.asarray(pixels, dtype=np.float64)),
            np.where(on_face, refined_distance, distance))


def _solve_symmetric_2x2(matrix: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``(Q, 2, 2)`` symmetric positive semi-definite systems for ``(Q, 2, K)`` right-hand sides.

    Returns ``(solution (Q, 2, K), solved (Q,) bool)``; degenerate systems (``det <= 1e-9 trace^2``)
    get a zero solution and ``solved`` False.
    """
    a, b, d = matrix[:, 0, 0], matrix[:, 0, 1], matrix[:, 1, 1]
    determinant = a * d - b * b
    solved = determinant > MIN_RELATIVE_DETERMINANT * (a + d) ** 2
    adjugate = np.stack([np.stack([d, -b], -1), np.stack([-b, a], -1)], -2)
    inverse = adjugate / np.where(solved, determinant, 1.0)[:, None, None]
    return np.where(solved[:, None, None], inverse @ rhs, 0.0), solved
