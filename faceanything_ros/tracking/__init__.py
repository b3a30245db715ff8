"""Dense face tracking by nearest-neighbour search of canonical face coordinates.

``CanonicalTracker`` follows query points through ``TrackingFrame``s (canonical map, confidence,
mask, optional depth and intrinsics) and reports ``TrackState`` per frame or ``Tracks`` per
sequence.
"""
from faceanything_ros.tracking.canonical_tracker import CanonicalTracker
from faceanything_ros.tracking.frame import TrackingFrame
from faceanything_ros.tracking.neighbour_search import (
    BACKENDS,
    KDTreeNeighbours,
    NeighbourIndex,
    TorchNeighbours,
    build_neighbour_index,
)
from faceanything_ros.tracking.subpixel import refine_subpixel
from faceanything_ros.tracking.tracks import Tracks, TrackState

__all__ = [
    "BACKENDS",
    "CanonicalTracker",
    "KDTreeNeighbours",
    "NeighbourIndex",
    "TorchNeighbours",
    "TrackState",
    "TrackingFrame",
    "Tracks",
    "build_neighbour_index",
    "refine_subpixel",
]
