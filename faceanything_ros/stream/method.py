"""Which reconstruction method a stream runs: the learned model or the face-mesh method.

``method`` is ``model`` (a checkpoint: the given one, else the bundled one; an error when there is
neither), ``mesh`` (the face-mesh method, no checkpoint) or ``auto`` (the given or bundled model
when there is one, else the face-mesh method). A checkpoint bundled later
(``model.bundled.bundled_checkpoint``) is picked up by ``auto`` with no change here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceanything_ros.config import METHODS, FaceMeshConfig, NodeConfig
from faceanything_ros.model.bundled import NO_BUNDLED_MODEL, bundled_checkpoint
from faceanything_ros.reference import MeshReference, Reconstructor




@dataclass(frozen=True)
class MethodChoice:
    """The method a stream runs: ``method`` ``"model"`` or ``"mesh"``, the ``checkpoint`` of the
    model (None for mesh) and ``reason``, one line saying why (for the log)."""

    method: str
    checkpoint: Path | None
    reason: str


def choose_method(method: str, model: str | Path | None) -> MethodChoice:
    """Resolve ``method`` (``METHODS``) with the checkpoint ``model`` ("" or None = none given).

    Raises ``ValueError`` for an unknown method and ``FileNotFoundError`` (``NO_BUNDLED_MODEL``)
    for ``model`` without a checkpoint.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {list(METHODS)}")
    if method == "mesh":
        return MethodChoice("mesh", None, "the face-mesh method (method mesh)")
    if model:
        return MethodChoice("model", Path(model), f"the model {model}")
    bundled = bundled_checkpoint()
    if bundled is not None:
        return MethodChoice("model", bundled, f"the bundled model {bundled.name}")
    if method == "model":
        raise FileNotFoundError(NO_BUNDLED_MODEL)
    return MethodChoice("mesh", None, "the face-mesh method (method auto: no model given and none bundled)")


def create_reconstructor(choice: MethodChoice, config: NodeConfig) -> Reconstructor:
    """The ``Predictor`` (model, engine, device of ``config``) or ``MeshReference`` (in tracking mode: a
    stream's frames come in order) of ``choice``."""
    if choice.method == "mesh":
        return MeshReference(FaceMeshConfig(max_faces=config.max_faces, min_confidence=config.face_min_confidence),
                             tracking=True)
    from faceanything_ros.predictor import Predictor

    return Predictor(choice.checkpoint, device=config.device, config=config.predictor_config(), engine=config.engine)
