"""Inference engines: parity with eager fp32, the interface, availability and ``auto`` selection.

CPU parity runs here (onnx, compile, bf16/fp16 eager); the CUDA checks at the bottom are
skipped without a GPU and run as-is on a CUDA machine (TensorRT ones also need torch-tensorrt).
"""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch
from conftest import face_image

from faceanything_ros.engines import ENGINE_NAMES, EngineUnavailableError, create_engine, resolve_engine
from faceanything_ros.engines.registry import ENGINE_CLASSES
from faceanything_ros.engines.onnx_engine import onnx_available
from faceanything_ros.engines.tensorrt_engine import tensorrt_available
from faceanything_ros.io.frames import read_image
from faceanything_ros.model.checkpoint import load_checkpoint
from faceanything_ros.model.prediction import OUTPUT_KEYS
from faceanything_ros.predictor import Predictor

# fp32 engines compute the same graph with re-associated sums (fused kernels, other GEMM
# blocking): float32 rounding is ~6e-8 relative per operation and grows to ~1e-6 over the 12
# blocks for outputs of order 1 (depth in metres, unit rays, canonical in [-1, 1], logits). 1e-4
# leaves two orders of margin for other CPUs' kernels while a real bug (wrong op, layout, weight)
# shows up as >= 1e-2. In metres 1e-4 is 0.1 mm.
FP32_ATOL = 1e-4
FP32_RTOL = 1e-4
# Reduced-precision autocast: bf16 keeps 8 mantissa bits (rounding 2^-9 ~ 0.2 % per value),
# fp16 11 bits (~0.05 %); errors add up over 12 attention blocks and 3 DPT heads. Measured on
# the untrained tiny model: max abs error ~7e-3 (bf16), ~2e-3 (fp16) at outputs of order 1.
BF16_TOLERANCE = 5e-2
FP16_TOLERANCE = 2e-2
# GPU fp16 (TensorRT, CUDA autocast) uses fp16 accumulation in places: the fp16 bound above, doubled.
GPU_FP16_TOLERANCE = 4e-2

needs_onnx = pytest.mark.skipif(not onnx_available(), reason="onnxruntime / onnx not installed")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_tensorrt = pytest.mark.skipif(not tensorrt_available(), reason="needs torch-tensorrt and a CUDA GPU")


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    """(model, checkpoint path) of the untrained tiny model (224 px input)."""
    model, _ = load_checkpoint(tiny_checkpoint)
    return model, tiny_checkpoint


def face_batch(frames: int, size: int, batch: int = 1) -> torch.Tensor:
    """``(B, T, 3, S, S)`` float images in [0, 1]: real face photos resized to ``S``."""
    names = ["mica_carell.jpg", "3ddfa_v2_emma.jpg", "deca_exp_1.jpg", "deca_aflw2000_image00202.jpg"]
    images = [cv2.resize(read_image(face_image(names[i % len(names)])), (size, size), interpolation=cv2.INTER_AREA)
              for i in range(batch * frames)]
    array = np.stack(images).reshape(batch, frames, size, size, 3)
    return torch.from_numpy(array).permute(0, 1, 4, 2, 3).float() / 255.0


def assert_outputs_close(expected: dict, actual: dict, atol: float, rtol: float) -> None:
    """Same keys, shapes and float32 dtype; values within ``atol + rtol * |expected|``."""
    assert set(actual) == set(OUTPUT_KEYS) == set(expected)
    for name in OUTPUT_KEYS:
        assert actual[name].shape == expected[name].shape, name
        assert actual[name].dtype == torch.float32, name
        np.testing.assert_allclose(actual[name].cpu().numpy(), expected[name].cpu().numpy(), atol=atol, rtol=rtol,
                                   err_msg=name)


def reference(model, images: torch.Tensor) -> dict:
    """Eager fp32 outputs on CPU (the parity reference)."""
    with torch.inference_mode():
        return model.to("cpu")(images)


@needs_onnx
def test_onnx_matches_eager_fp32_for_a_batch_of_windows(tiny, tmp_path):
    model, checkpoint = tiny
    images = face_batch(frames=2, size=224, batch=2)
    engine = create_engine("onnx", model, checkpoint, cache_dir=tmp_path)
    assert (engine.name, engine.precision, engine.input_size) == ("onnx", "fp32", 224)
    assert_outputs_close(reference(model, images), engine.run(images), FP32_ATOL, FP32_RTOL)


@pytest.mark.slow
def test_compile_matches_eager_fp32(tiny):
    model, checkpoint = tiny
    images = face_batch(frames=1, size=224)
    engine = create_engine("compile", model, checkpoint)
    assert_outputs_close(reference(model, images), engine.run(images), FP32_ATOL, FP32_RTOL)


@pytest.mark.parametrize(("precision", "tolerance"), [("bf16", BF16_TOLERANCE), ("fp16", FP16_TOLERANCE)])
def test_reduced_precision_eager_on_cpu_is_close_but_not_identical(tiny, precision, tolerance):
    model, checkpoint = tiny
    images = face_batch(frames=1, size=224)
    expected = reference(model, images)
    actual = create_engine("torch", model, checkpoint, precision=precision).run(images)
    assert_outputs_close(expected, actual, atol=tolerance, rtol=tolerance)
    # autocast really ran in reduced precision: the outputs are not bit-identical to fp32
    assert (actual["depth"] - expected["depth"]).abs().max() > 0


@needs_onnx
def test_infer_through_an_engine_equals_the_models_own_infer(tiny, tmp_path):
    model, checkpoint = tiny
    frames = (face_batch(frames=2, size=224)[0].permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    expected = model.infer(frames)
    actual = create_engine("onnx", model, checkpoint, cache_dir=tmp_path).infer(frames)
    assert actual.depth.shape == (2, 224, 224) and actual.rays.shape == (2, 224, 224, 3)
    np.testing.assert_allclose(actual.depth, expected.depth, atol=FP32_ATOL, rtol=FP32_RTOL)
    np.testing.assert_allclose(actual.mask_probability, expected.mask_probability, atol=FP32_ATOL)


@needs_onnx
def test_predictor_with_the_onnx_engine_reconstructs_like_eager(tiny_checkpoint, tmp_path):
    image = read_image(face_image("mica_carell.jpg"))
    results = {}
    for engine in ("torch", "onnx"):
        with Predictor(tiny_checkpoint, engine=engine, engine_cache=tmp_path) as predictor:
            assert predictor.engine.name == engine
            (results[engine],) = predictor.predict(image)
    eager, onnx = results["torch"], results["onnx"]
    assert eager.found and onnx.found
    np.testing.assert_array_equal(eager.mask, onnx.mask)
    np.testing.assert_allclose(onnx.intrinsics, eager.intrinsics, rtol=1e-4)
    np.testing.assert_allclose(onnx.depth, eager.depth, atol=FP32_ATOL, rtol=FP32_RTOL, equal_nan=True)


def test_engine_rejects_bad_images(tiny):
    model, checkpoint = tiny
    engine = create_engine("torch", model, checkpoint)
    with pytest.raises(ValueError, match="multiples of the patch size 16"):
        engine.run(torch.zeros(1, 1, 3, 100, 100))
    with pytest.raises(TypeError, match="uint8"):
        engine.infer(np.zeros((1, 224, 224, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        engine.infer(np.zeros((224, 224, 3), np.uint8))


def test_unavailable_engines_and_bad_names_are_named(tiny):
    model, checkpoint = tiny
    if not tensorrt_available():
        with pytest.raises(EngineUnavailableError, match="torch-tensorrt is not installed / needs an NVIDIA GPU"):
            create_engine("tensorrt", model, checkpoint)
    with pytest.raises(ValueError, match="unknown engine 'tensorrtx'"):
        create_engine("tensorrtx", model, checkpoint)
    with pytest.raises(ValueError, match="precision must be one of"):
        create_engine("torch", model, checkpoint, precision="int8")
    if onnx_available():
        with pytest.raises(EngineUnavailableError, match="fp32 only"):
            create_engine("onnx", model, checkpoint, precision="fp16")


def test_auto_picks_and_says_the_fastest_available_engine(caplog):
    caplog.set_level(logging.INFO)
    chosen = resolve_engine("auto", "cpu")
    assert chosen == ("onnx" if onnx_available() else "torch")
    assert f"engine auto -> {chosen} on cpu" in caplog.text
    assert resolve_engine("compile", "cpu") == "compile"


def test_engine_names_are_auto_and_one_class_each():
    assert sorted(ENGINE_NAMES) == sorted(["auto", *ENGINE_CLASSES])


# --- CUDA: skipped here (no GPU), run on a GPU machine -----------------------------------------

@needs_cuda
@pytest.mark.parametrize(("engine", "precision", "tolerance"), [
    ("torch", "fp32", FP32_ATOL), ("torch", "fp16", GPU_FP16_TOLERANCE), ("compile", "fp32", FP32_ATOL)])
def test_cuda_engines_match_eager_cpu_fp32(tiny, engine, precision, tolerance):
    model, checkpoint = tiny
    images = face_batch(frames=2, size=224)
    expected = reference(model, images)
    cuda_engine = create_engine(engine, model, checkpoint, device="cuda", precision=precision)
    for _ in range(2):  # the second call replays the CUDA graph of the compile engine
        actual = cuda_engine.run(images)
    assert_outputs_close(expected, actual, atol=tolerance, rtol=tolerance)


@needs_cuda
@needs_onnx
def test_onnx_on_cuda_matches_eager(tiny, tmp_path):
    model, checkpoint = tiny
    images = face_batch(frames=1, size=224)
    expected = reference(model, images)
    actual = create_engine("onnx", model, checkpoint, device="cuda", cache_dir=tmp_path).run(images)
    assert_outputs_close(expected, actual, FP32_ATOL, FP32_RTOL)


@needs_tensorrt
def test_tensorrt_fp16_matches_eager_and_is_cached(tiny, tmp_path, caplog):
    model, checkpoint = tiny
    images = face_batch(frames=1, size=224)
    expected = reference(model, images)
    actual = create_engine("tensorrt", model, checkpoint, device="cuda", cache_dir=tmp_path).run(images)
    assert_outputs_close(expected, actual, GPU_FP16_TOLERANCE, GPU_FP16_TOLERANCE)
    caplog.set_level(logging.INFO)
    again = create_engine("tensorrt", model, checkpoint, device="cuda", cache_dir=tmp_path).run(images)
    assert "engine cache hit" in caplog.text
    assert_outputs_close(actual, again, FP32_ATOL, FP32_RTOL)
