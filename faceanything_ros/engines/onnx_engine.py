"""``onnx`` engine: TorchScript-exported ONNX graph run by ONNX Runtime.

Export uses ``torch.onnx.export(..., dynamo=False)`` (the TorchScript exporter, which needs only
the ``onnx`` package; the dynamo exporter would need ``onnxscript``, whose ``onnx`` requirement
conflicts with mediapipe's protobuf < 5). One static-shape graph per ``(T, H, W)``, batch 1,
cached by ``EngineCache``. Providers: CPU always; on a CUDA device the TensorRT and CUDA
providers come first when this ONNX Runtime build has them. Precision: fp32 only.
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
from torch import Tensor

from ..model.net import FaceAnythingNet
from .base import EngineUnavailableError
from .cache import EngineCache
from .static_engine import Runner, StaticShapeEngine, parameter_millions

ONNX_OPSET = 17  # first opset with LayerNormalization as one op
INPUT_NAME = "images"
# Export + graph load on the 2-core CPU here: ~1.5 s for tiny (6 M parameters); scale linearly.
EXPORT_S_PER_MILLION_PARAMETERS = 0.25
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
MISSING = "the onnx engine needs the onnxruntime and onnx packages (pip install onnxruntime onnx)"


def onnx_available() -> bool:
    """True when onnxruntime and onnx (the exporter's dependency) are importable."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


class OnnxEngine(StaticShapeEngine):
    """ONNX Runtime inference session per input shape."""

    name = "onnx"
    suffix = ".onnx"
    backend = "onnxruntime"

    def __init__(self, model: FaceAnythingNet, device: torch.device, precision: str, checkpoint_sha256: str,
                 cache: EngineCache):
        if not onnx_available():
            raise EngineUnavailableError(MISSING)
        if precision != "fp32":
            raise EngineUnavailableError(f"the onnx engine runs fp32 only, got precision {precision!r}")
        super().__init__(model, device, precision, checkpoint_sha256, cache)
        import onnxruntime

        available = onnxruntime.get_available_providers()
        wanted = GPU_PROVIDERS if device.type == "cuda" else ()
        self.providers = [p for p in wanted if p in available] + ["CPUExecutionProvider"]

    def backend_version(self) -> str:
        import onnxruntime

        return onnxruntime.__version__

    def estimate_build_s(self) -> float:
        return 1.0 + EXPORT_S_PER_MILLION_PARAMETERS * parameter_millions(self.model)

    def build(self, example: Tensor, path: Path) -> None:
        output_names = list(self.model(example).keys())
        with warnings.catch_warnings():
            # shape checks in forward are constant for a static-shape graph; the tracer says so
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(self.model, (example,), str(path), dynamo=False, input_names=[INPUT_NAME],
                              output_names=output_names, opset_version=ONNX_OPSET)

    def load(self, path: Path) -> Runner:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # idle worker threads sleep instead of spinning: on a robot's shared CPU (other nodes, the
        # face detector, the tracker) spinning steals cores; measured no slower on 2 cores here
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # as many threads as torch's pool (the node sets both: NodeConfig.cpu_threads); on the 2-core
        # CPU a second thread cost 25-40 % more CPU per frame (tiny at 128 px: 12.4-14.0 ms against
        # 9.8 ms) for 1-2 ms less wall time
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(path), options, providers=self.providers)
        names = [output.name for output in session.get_outputs()]
        device = self.device

        def run(images: Tensor) -> dict[str, Tensor]:
            arrays = session.run(names, {INPUT_NAME: images.detach().cpu().numpy()})
            return {name: torch.from_numpy(array).to(device) for name, array in zip(names, arrays)}

        return run
