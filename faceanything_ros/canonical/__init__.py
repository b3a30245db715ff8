"""Canonical face space (topology, metric template, [-1, 1]^3 normalisation) and face-mesh pseudo-labels.

``load_canonical_space()`` gives the shipped ``mediapipe-facemesh-478`` space; ``FaceMeshLabeler``
turns real frames into posed metric meshes and per-pixel depth / canonical / mask labels.
"""
from faceanything_ros.canonical.pseudo_labels import FaceMeshLabeler, MeshLabel, PixelLabels, label_from_landmarks
from faceanything_ros.canonical.space import (
    MEDIAPIPE_SPACE_ID,
    CanonicalSpace,
    load_canonical_space,
    register_canonical_space,
)

__all__ = [
    "MEDIAPIPE_SPACE_ID",
    "CanonicalSpace",
    "FaceMeshLabeler",
    "MeshLabel",
    "PixelLabels",
    "label_from_landmarks",
    "load_canonical_space",
    "register_canonical_space",
]
