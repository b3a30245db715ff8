"""Posed metric face mesh in the camera frame from 2D face-mesh landmarks: pose against the template, then lifting.

Model (optical frame: x right, y down, z forward; metres; pixels of ``geometry.camera``):

1. Initial pose: a similarity Procrustes fit of the template ``T`` (metres, template frame) onto
   mediapipe's pseudo-3D landmarks ``Q_i = (u_i, v_i, d_i)`` (``d`` = relative depth in pixels,
   same scale as ``u``) gives a rotation and ``s`` pixels per template metre; a face of
   ``face_scale * T`` seen at depth ``z`` spans ``f * face_scale / z`` pixels per metre, so the
   initial depth is ``f * face_scale / s`` along the ray of the fitted template origin.
2. Refinement: ``cv2.solvePnP`` (iterative Levenberg-Marquardt from that guess) of the 468
   surface points of ``face_scale * T`` against their pixels with the frame's intrinsics ``K``
   gives ``R, t`` (template frame -> camera frame). Iris points are left out (gaze moves them).
   From one view the metric face size is unobservable (scaling the face and its distance
   together gives the same image), so the scale is the prior ``face_scale`` (1 = the template,
   63 mm inter-pupil distance).
3. Lifting (expression): the posed template only fixes the face's centre ``c`` (mean of
   ``face_scale * R T + t``). mediapipe's relative depth runs along the view of the face, i.e. the
   optical axis ``a = c / |c|`` of the virtual camera looking at the face
   (``geometry.virtual_camera``), which is not the image's z for an off-centre face. Each
   landmark is placed on its own camera ray ``K^-1 (u_i, v_i, 1)`` where its distance along ``a`` is
   ``|c| + (d_i - mean(d)) * |c| / f`` (the relative depth converted from pixels of that view to
   metres at the face's distance, ``f`` = mean focal length), so the mesh keeps mediapipe's
   expression geometry and projects exactly onto the landmarks.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from faceanything_ros.canonical.topology import NUM_SURFACE_LANDMARKS
from faceanything_ros.geometry.camera import mean_focal, validate_intrinsics
from faceanything_ros.geometry.projection import unproject_pixels
from faceanything_ros.geometry.virtual_camera import rotation_onto


@dataclass(frozen=True)
class FacePose:
    """Template -> camera similarity and the lifted mesh: ``camera = scale * rotation @ template + translation``.

    ``rotation``: (3, 3) float64; ``translation``: (3,) float64 metres; ``scale``: float (template
    metres -> face metres); ``vertices``: (V, 3) float64 lifted landmark mesh in the camera optical
    frame, metres (model step 3).
    """

    rotation: np.ndarray
    translation: np.ndarray
    scale: float
    vertices: np.ndarray


def similarity_transform(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``target ~ scale * R @ source + t`` (Umeyama) of two ``(N, 3)`` point sets.

    Returns ``scale`` (float > 0), ``R`` ((3, 3) proper rotation) and ``t`` ((3,)), in target units.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    centred_source, centred_target = source - source_mean, target - target_mean
    rotation, _ = Rotation.align_vectors(centred_target, centred_source)
    R = rotation.as_matrix()
    scale = float(np.sum(centred_target * (centred_source @ R.T)) / np.sum(centred_source ** 2))
    return scale, R, target_mean - scale * R @ source_mean


def fit_face_pose(pixels: np.ndarray, relative_depth_px: np.ndarray, template: np.ndarray, intrinsics: np.ndarray,
                  face_scale: float = 1.0) -> FacePose:
    """Pose of ``face_scale * template`` seen at ``pixels`` through ``intrinsics``, and the lifted mesh (module docstring).

    Args:
        pixels: ``(V, 2)`` landmark pixels ``(u, v)``.
        relative_depth_px: ``(V,)`` landmark depth relative to the face, pixels (positive = farther).
        template: ``(V, 3)`` template points, metres, template frame (x right, y down, z into the head).
        intrinsics: ``(3, 3)`` pinhole K, pixels.
        face_scale: metric face size / template size (> 0).
    """
    K = validate_intrinsics(intrinsics)
    pixels = np.asarray(pixels, dtype=np.float64)
    relative_depth_px = np.asarray(relative_depth_px, dtype=np.float64)
    template = np.asarray(template, dtype=np.float64)
    if pixels.shape != (len(template), 2) or relative_depth_px.shape != (len(template),):
        raise ValueError(f"pixels (V, 2) and relative_depth_px (V,) must match the template's V = {len(template)}, "
                         f"got {pixels.shape} and {relative_depth_px.shape}")
    if not (np.all(np.isfinite(pixels)) and np.all(np.isfinite(relative_depth_px))):
        raise ValueError("face landmarks contain NaN or infinite values")
    if not face_scale > 0:
        raise ValueError(f"face_scale must be > 0, got {face_scale}")
    focal = mean_focal(K)
    surface = slice(0, NUM_SURFACE_LANDMARKS)
    pixels_per_metre, rotation, offset = similarity_transform(
        template[surface], np.column_stack([pixels, relative_depth_px])[surface])
    depth_guess = focal * face_scale / pixels_per_metre
    translation_guess = unproject_pixels(offset[None, :2], np.array([depth_guess]), K)[0]
    ok, rvec, tvec = cv2.solvePnP(face_scale * template[surface], pixels[surface], K, None,
                                  rvec=cv2.Rodrigues(rotation)[0], tvec=translation_guess.reshape(3, 1),
                                  useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise ValueError("solvePnP found no pose for the face landmarks")
    R = cv2.Rodrigues(rvec)[0]
    t = tvec.reshape(3)
    centre = np.mean(face_scale * template[surface] @ R.T + t, axis=0)
    if not centre[2] > 0:
        raise ValueError(f"the fitted face lies behind the camera (depth {centre[2]:.3f} m)")
    relief = (relative_depth_px - relative_depth_px[surface].mean()) * np.linalg.norm(centre) / focal
    axis = rotation_onto(centre)[:, 2]  # the optical axis of the virtual camera looking at the face
    along_axis = unproject_pixels(pixels, np.ones(len(pixels)), K) @ axis  # metres along it per metre of z
    depth = (np.linalg.norm(centre) + relief) / along_axis
    return FacePose(rotation=R, translation=t, scale=float(face_scale), vertices=unproject_pixels(pixels, depth, K))
