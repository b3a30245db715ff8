"""Dense face tracking by nearest-neighbour search of canonical face coordinates, per face.

``CanonicalTracker`` follows the query points of one face through ``TrackingFrame``s (canonical
map, confidence, mask, optional depth and intrinsics); ``MultiFaceTracker`` runs one per face of
a stream. By default the queries are canonical template points (``canonical_queries``), so track
id ``k`` is the same facial point everywhere. Results: ``TrackState`` per frame, ``Tracks`` per
sequence.
"""
from faceanything_ros.tracking.canonical_tracker import CanonicalTracker
from faceanything_ros.tracking.face_tracks import MultiFaceTracker
from faceanything_ros.tracking.frame import TrackingFrame
from faceanything_ros.tracking.neighbour_search import (
    BACKENDS,
    KDTreeNeighbours,
    NeighbourIndex,
    TorchNeighbours,
    build_neighbour_index,
)
from faceanything_ros.tracking.one_euro import OneEuroFilter
from faceanything_ros.tracking.subpixel import refine_subpixel
from faceanything_ros.tracking.template_surface import TemplateSurface, canonical_queries, template_surface
from faceanything_ros.tracking.tracks import Tracks, TrackState

__all__ = [
    "BACKENDS",
    "CanonicalTracker",
    "KDTreeNeighbours",
    "MultiFaceTracker",
    "NeighbourIndex",
    "OneEuroFilter",
    "TemplateSurface",
    "TorchNeighbours",
    "TrackState",
    "TrackingFrame",
    "Tracks",
    "build_neighbour_index",
    "canonical_queries",
    "refine_subpixel",
    "template_surface",
]
