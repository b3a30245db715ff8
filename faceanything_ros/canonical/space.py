"""The canonical face space interface: a template surface whose normalised positions are the canonical coordinates.

A canonical space fixes, for every point of a face surface, one coordinate in ``[-1, 1]^3`` that
is the same for the same facial point across frames, expressions and people: the normalised
position of that point on a neutral template face. The model predicts these coordinates per
pixel and the tracker matches them; both only see ``[-1, 1]^3`` values, so neither depends on
which space produced them (the checkpoint records the space's ``id`` and ``version``).

Adding another space (e.g. FLAME from a user-supplied model file, never shipped): subclass
``CanonicalSpace`` with that model's triangles and neutral template in metres (template frame:
x towards the subject's left = image right in a frontal view, y down, z from the face into the
head; the convention of ``MediaPipeFaceSpace``), pick ``center`` and ``mm_per_unit`` so the template
spans ``[-1, 1]`` on its largest axis and is symmetric about ``x = 0`` (``MIRROR``), and register it
with ``register_canonical_space(id, loader)``; pseudo-labels are then produced by a labeler fitting
that template, and a model trained on them carries the new id. Model and tracker code stay
untouched.
"""
from __future__ import annotations

from abc import ABC
from typing import Callable

import numpy as np


class CanonicalSpace(ABC):
    """A versioned canonical face space: topology, metric neutral template and its normalisation.

    Subclasses set ``id`` (str), ``version`` (str), ``topology`` ((F, 3) int32 triangles),
    ``template`` ((V, 3) float64 metres, template frame), ``center`` ((3,) float64 metres) and
    ``mm_per_unit`` (millimetres of template per canonical unit) in their constructor.
    ``normalize(template)`` lies in ``[-1, 1]^3`` and reaches +-1 on the template's largest axis.
    """

    id: str
    version: str
    topology: np.ndarray
    template: np.ndarray
    center: np.ndarray
    mm_per_unit: float

    @property
    def num_vertices(self) -> int:
        """Number of template vertices ``V``."""
        return int(self.template.shape[0])

    @property
    def canonical_template(self) -> np.ndarray:
        """``(V, 3)`` float64 canonical coordinates of the template vertices, in ``[-1, 1]``."""
        return self.normalize(self.template)

    def normalize(self, points_metric: np.ndarray) -> np.ndarray:
        """``(N, 3)`` template-frame points in metres -> ``(N, 3)`` float64 canonical coordinates."""
        points = np.asarray(points_metric, dtype=np.float64)
        return (points - self.center) / (self.mm_per_unit / 1000.0)

    def denormalize(self, canonical: np.ndarray) -> np.ndarray:
        """``(N, 3)`` canonical coordinates -> ``(N, 3)`` float64 template-frame points in metres (inverse of ``normalize``)."""
        return np.asarray(canonical, dtype=np.float64) * (self.mm_per_unit / 1000.0) + self.center


# canonical coordinates of a facial point's mirror image (its left-right counterpart) = MIRROR * its own:
# every space's template is symmetric about x = 0 (training's flips, model.flip_average)
MIRROR = np.array([-1.0, 1.0, 1.0])
MEDIAPIPE_SPACE_ID = "mediapipe-facemesh-478"
_REGISTERED: dict[str, Callable[[], CanonicalSpace]] = {}


def register_canonical_space(space_id: str, loader: Callable[[], CanonicalSpace]) -> None:
    """Make ``load_canonical_space(space_id)`` call ``loader()`` (for spaces beyond the shipped one)."""
    _REGISTERED[space_id] = loader


def load_canonical_space(space_id: str = MEDIAPIPE_SPACE_ID) -> CanonicalSpace:
    """The canonical space ``space_id`` (the shipped mediapipe one or a registered one); ``KeyError`` otherwise."""
    if space_id == MEDIAPIPE_SPACE_ID:
        from faceanything_ros.canonical.mediapipe_space import MediaPipeFaceSpace

        return MediaPipeFaceSpace()
    if space_id not in _REGISTERED:
        raise KeyError(f"unknown canonical space {space_id!r}; known: {sorted([MEDIAPIPE_SPACE_ID, *_REGISTERED])}")
    return _REGISTERED[space_id]()
