"""FaceAnythingNet: shapes, value ranges, cross-frame attention, inputs, sizes, numpy inference."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from conftest import face_image

from faceanything_ros.config import ModelConfig
from faceanything_ros.model import FaceAnythingNet, ModelPrediction
from faceanything_ros.model.heads.activations import ACTIVATIONS
from faceanything_ros.model.heads.dpt import HeadOutput
from faceanything_ros.model.layers.aggregator import Aggregator
from faceanything_ros.model.layers.patch_embed import sincos_position_embedding

SCALAR_OUTPUTS = ("depth", "depth_confidence", "ray_confidence", "canonical_confidence", "mask_logit")
VECTOR_OUTPUTS = ("rays", "canonical")


@pytest.fixture(scope="module")
def tiny() -> FaceAnythingNet:
    torch.manual_seed(0)
    return FaceAnythingNet(ModelConfig.preset("tiny")).eval()


def run(model: FaceAnythingNet, images: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        return model(images)


@pytest.mark.parametrize("frames", [1, 4])
def test_output_shapes_and_value_ranges(tiny, frames):
    outputs = run(tiny, torch.rand(2, frames, 3, 224, 224, generator=torch.Generator().manual_seed(1)))
    assert set(outputs) == set(SCALAR_OUTPUTS + VECTOR_OUTPUTS)
    for name in SCALAR_OUTPUTS:
        assert outputs[name].shape == (2, frames, 224, 224), name
    for name in VECTOR_OUTPUTS:
        assert outputs[name].shape == (2, frames, 224, 224, 3), name
    for name, value in outputs.items():
        assert value.dtype == torch.float32 and torch.isfinite(value).all(), name
    assert (outputs["depth"] > 0).all()
    assert (outputs["depth_confidence"] >= 1).all() and (outputs["canonical_confidence"] >= 1).all()
    torch.testing.assert_close(outputs["rays"].norm(dim=-1), torch.ones(2, frames, 224, 224), atol=1e-5, rtol=0)
    assert outputs["canonical"].abs().max() <= 1
    # An untrained ray head is biased to look forward (+z of the optical frame).
    assert (outputs["rays"][..., 2] > 0.5).all()


def test_outputs_vary_per_pixel(tiny):
    """Random-init heads are not constant, so range and mixing tests below can fail."""
    outputs = run(tiny, torch.rand(1, 1, 3, 64, 64, generator=torch.Generator().manual_seed(2)))
    for name, value in outputs.items():
        assert value.std() > 1e-4, name


def test_global_attention_mixes_frames_of_a_sequence(tiny):
    images = torch.rand(1, 2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    changed = images.clone()
    changed[:, 1] = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    before, after = run(tiny, images), run(tiny, changed)
    for name in SCALAR_OUTPUTS + VECTOR_OUTPUTS:
        assert (before[name][:, 0] - after[name][:, 0]).abs().max() > 1e-4, name


def test_sequences_of_a_batch_do_not_mix(tiny):
    images = torch.rand(2, 2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    changed = images.clone()
    changed[1] = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    before, after = run(tiny, images), run(tiny, changed)
    for name, value in before.items():
        torch.testing.assert_close(after[name][0], value[0], atol=1e-5, rtol=1e-5)


def small_aggregator() -> Aggregator:
    """Blocks 0, 2 frame-local and 1, 3 global; every block's output is tapped."""
    torch.manual_seed(7)
    config = ModelConfig(embed_dim=64, depth=4, num_heads=2, intermediate_layers=(0, 1, 2, 3))
    return Aggregator(config).eval()


def test_frame_local_block_ignores_other_frames_and_global_block_does_not():
    aggregator = small_aggregator()
    images = torch.rand(1, 2, 3, 32, 48, generator=torch.Generator().manual_seed(8))
    changed = images.clone()
    changed[:, 1] = 1.0 - changed[:, 1]
    with torch.inference_mode():
        before, after = aggregator(images), aggregator(changed)
    assert before[0].shape == (2, 64, 2, 3)
    torch.testing.assert_close(after[0][0], before[0][0], atol=1e-6, rtol=1e-6)  # after block 0 (frame-local)
    assert (after[1][0] - before[1][0]).abs().max() > 1e-3  # after block 1 (global)
    assert (after[0][1] - before[0][1]).abs().max() > 1e-3  # frame 1 itself did change


def test_reference_frame_has_its_own_camera_token():
    """Identical frames: frame 0 differs from later frames, later frames equal each other."""
    aggregator = small_aggregator()
    frame = torch.rand(1, 1, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    with torch.inference_mode():
        taps = aggregator(frame.expand(1, 3, 3, 32, 32).contiguous())
    for tap in taps:
        torch.testing.assert_close(tap[2], tap[1], atol=1e-5, rtol=1e-5)
        assert (tap[0] - tap[1]).abs().max() > 1e-3


@pytest.mark.parametrize("height, width", [(256, 256), (224, 160), (240, 176)])
def test_any_multiple_of_the_patch_size_works(tiny, height, width):
    outputs = run(tiny, torch.rand(1, 2, 3, height, width))
    assert outputs["depth"].shape == (1, 2, height, width)
    assert outputs["rays"].shape == (1, 2, height, width, 3)


def test_patch_size_14():
    torch.manual_seed(0)
    model = FaceAnythingNet(ModelConfig.preset("tiny", patch_size=14)).eval()
    outputs = run(model, torch.rand(1, 1, 3, 70, 98))
    assert outputs["canonical"].shape == (1, 1, 70, 98, 3)


@pytest.mark.parametrize("images, error, message", [
    (torch.rand(1, 3, 64, 64), ValueError, r"\(B, T, 3, H, W\), got \(1, 3, 64, 64\)"),
    (torch.rand(1, 1, 4, 64, 64), ValueError, r"got \(1, 1, 4, 64, 64\)"),
    (torch.rand(1, 1, 3, 64, 70), ValueError, "multiples of the patch size 16, got 64 x 70"),
    (torch.zeros(1, 1, 3, 64, 64, dtype=torch.uint8), TypeError, "floating-point"),
    (np.zeros((1, 1, 3, 64, 64), np.float32), TypeError, "ndarray"),
])
def test_bad_images_raise(tiny, images, error, message):
    with pytest.raises(error, match=message):
        tiny(images)


def test_infer_bad_input_raises(tiny):
    with pytest.raises(TypeError, match="uint8"):
        tiny.infer(np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(ValueError, match=r"images\[None\]"):
        tiny.infer(np.zeros((64, 64, 3), np.uint8))


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("size, part, expected", [("tiny", "total", 6e6), ("small", "backbone", 22e6),
                                                   ("base", "backbone", 86e6)])
def test_parameter_counts(size, part, expected):
    with torch.device("meta"):
        model = FaceAnythingNet(ModelConfig.preset(size))
    measured = count(model) if part == "total" else count(model.aggregator)
    assert abs(measured - expected) <= 0.15 * expected, f"{size} {part}: {measured / 1e6:.2f} M"


def test_infer_on_a_face_photo_matches_forward(tiny):
    rgb = cv2.cvtColor(cv2.resize(cv2.imread(str(face_image("deca_exp_1.jpg"))), (224, 224)), cv2.COLOR_BGR2RGB)
    frames = np.stack([rgb, rgb[:, ::-1]])
    prediction = tiny.infer(frames)
    assert isinstance(prediction, ModelPrediction) and prediction.num_frames == 2
    assert prediction.depth.shape == (2, 224, 224) and prediction.canonical.shape == (2, 224, 224, 3)
    assert all(getattr(prediction, name).dtype == np.float32 for name in vars(prediction))
    assert ((prediction.mask_probability >= 0) & (prediction.mask_probability <= 1)).all()
    manual = torch.from_numpy(frames.astype(np.float32) / 255.0).permute(0, 3, 1, 2)[None]
    expected = ModelPrediction.from_outputs(run(tiny, manual))
    for name in vars(prediction):
        np.testing.assert_allclose(getattr(prediction, name), getattr(expected, name), atol=1e-5, rtol=1e-5)
    second = prediction.select(1)
    assert second.depth.shape == (1, 224, 224)
    np.testing.assert_array_equal(second.rays[0], prediction.rays[1])
    np.testing.assert_array_equal(prediction.select(-1).depth, second.depth)


def fake_outputs(batch: int = 2, frames: int = 1) -> dict[str, np.ndarray]:
    scalar = np.zeros((batch, frames, 2, 2), np.float32)
    vector = np.zeros((batch, frames, 2, 2, 3), np.float32)
    outputs = {name: scalar + 1 for name in SCALAR_OUTPUTS} | {name: vector for name in VECTOR_OUTPUTS}
    outputs["mask_logit"] = np.broadcast_to(np.float32([[0.0, math.log(3.0)], [-100.0, 100.0]]), scalar.shape).copy()
    outputs["depth"] = np.arange(batch, dtype=np.float32).reshape(batch, 1, 1, 1) + scalar
    return outputs


def test_from_outputs_takes_numpy_or_torch_and_applies_sigmoid():
    outputs = fake_outputs()
    from_numpy = ModelPrediction.from_outputs(outputs, batch_index=1)
    from_torch = ModelPrediction.from_outputs({k: torch.from_numpy(v) for k, v in outputs.items()}, batch_index=1)
    np.testing.assert_array_equal(from_numpy.depth, np.ones((1, 2, 2)))  # sequence 1 has depth 1
    np.testing.assert_allclose(from_numpy.mask_probability[0], [[0.5, 0.75], [0.0, 1.0]], atol=1e-7)
    for name in vars(from_numpy):
        np.testing.assert_array_equal(getattr(from_numpy, name), getattr(from_torch, name))


def test_from_outputs_rejects_missing_keys_and_bad_index():
    outputs = fake_outputs()
    with pytest.raises(KeyError, match="rays"):
        ModelPrediction.from_outputs({k: v for k, v in outputs.items() if k != "rays"})
    with pytest.raises(IndexError, match="batch_index 2 out of range for a batch of 2"):
        ModelPrediction.from_outputs(outputs, batch_index=2)


def test_activations_exact_values():
    raw = torch.tensor([-100.0, 0.0, math.log(2.0), 100.0]).view(1, 4, 1, 1)
    torch.testing.assert_close(ACTIVATIONS["exp"](raw).flatten(), torch.tensor([math.exp(-8), 1.0, 2.0, math.exp(8)]))
    torch.testing.assert_close(ACTIVATIONS["expp1"](raw).flatten(),
                               torch.tensor([1.0, 2.0, 3.0, 1.0 + math.exp(20)]))
    torch.testing.assert_close(ACTIVATIONS["tanh"](raw).flatten(), torch.tensor([-1.0, 0.0, 0.6, 1.0]))
    assert torch.equal(ACTIVATIONS["identity"](raw), raw)
    rays = ACTIVATIONS["unit_ray"](torch.tensor([[0.0, 0.0, 0.0], [3.0, 4.0, -1.0]]).T.reshape(1, 3, 2, 1))
    torch.testing.assert_close(rays[0, :, :, 0].T, torch.tensor([[0.0, 0.0, 1.0], [0.6, 0.8, 0.0]]))


def test_head_output_validation():
    with pytest.raises(ValueError, match="unknown activation 'softplus'"):
        HeadOutput("depth", 1, "softplus")
    with pytest.raises(ValueError, match="needs 3 channels, got 2"):
        HeadOutput("rays", 2, "unit_ray")


def test_sincos_position_embedding_formula():
    embedding = sincos_position_embedding(2, 3, 8).numpy()
    assert embedding.shape == (6, 8)
    omega = np.array([1.0, 0.01])
    for index in range(6):
        row, col = divmod(index, 3)
        expected = np.concatenate([np.sin(row * omega), np.cos(row * omega), np.sin(col * omega), np.cos(col * omega)])
        np.testing.assert_allclose(embedding[index], expected, atol=1e-6)
    with pytest.raises(ValueError, match="divisible by 4, got 6"):
        sincos_position_embedding(2, 2, 6)


@pytest.mark.slow
def test_forward_exports_with_dynamic_batch_frames_and_size():
    """No data-dependent Python control flow: torch.export traces one graph for any B, T, H, W."""
    from torch.export import Dim

    torch.manual_seed(0)
    config = ModelConfig(embed_dim=32, depth=4, num_heads=2, intermediate_layers=(0, 1, 2, 3),
                         head_features=8, head_out_channels=(8, 8, 8, 8))
    model = FaceAnythingNet(config).eval()
    dynamic = {0: Dim("B", min=1, max=8), 1: Dim("T", min=1, max=16),
               3: 16 * Dim("h", min=2, max=64), 4: 16 * Dim("w", min=2, max=64)}
    exported = torch.export.export(model, (torch.rand(2, 2, 3, 64, 48),), dynamic_shapes={"images": dynamic})
    for shape in [(1, 3, 3, 64, 64), (2, 1, 3, 48, 80)]:
        images = torch.rand(*shape)
        expected, actual = run(model, images), exported.module()(images)
        for name, value in expected.items():
            torch.testing.assert_close(actual[name], value, atol=1e-5, rtol=1e-5)
