"""The checkpoint shipped inside the package, if this version ships one."""
from __future__ import annotations

from pathlib import Path

BUNDLED_CHECKPOINT = Path(__file__).parent / "weights" / "faceanything_tiny.safetensors"

NO_BUNDLED_MODEL = (
    "no trained model is bundled with this version of faceanything_ros; give a checkpoint "
    "(--model PATH, or the node's model parameter), or use the face-mesh method, which needs no "
    "model (--method mesh, or the node's method parameter: mesh or auto); an untrained checkpoint "
    "for pipeline checks is made by `faceanything init-model --size tiny -o tiny_untrained.safetensors`"
)


def bundled_checkpoint() -> Path | None:
    """Path of the bundled checkpoint, or None when this version ships none."""
    return BUNDLED_CHECKPOINT if BUNDLED_CHECKPOINT.is_file() else None


def checkpoint_or_bundled(path: str | Path | None) -> Path:
    """``path`` (when given and not empty), else the bundled checkpoint; ``FileNotFoundError`` saying
    that none is bundled otherwise."""
    if path:
        return Path(path)
    bundled = bundled_checkpoint()
    if bundled is None:
        raise FileNotFoundError(NO_BUNDLED_MODEL)
    return bundled
