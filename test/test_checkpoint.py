"""Checkpoints: round trip, header-only metadata, init helper, and every corrupt-file error."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from faceanything_ros import __version__
from faceanything_ros.config import ModelConfig, to_dict
from faceanything_ros.model import (
    CheckpointError,
    CheckpointMetadata,
    FaceAnythingNet,
    init_checkpoint,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from faceanything_ros.model.checkpoint import METADATA_KEY

MICRO = ModelConfig(size="micro", embed_dim=32, depth=4, num_heads=2, intermediate_layers=(0, 1, 2, 3),
                    image_size=64, head_features=8, head_out_channels=(8, 8, 8, 8))


@pytest.fixture()
def micro_file(tmp_path) -> tuple[Path, FaceAnythingNet]:
    torch.manual_seed(0)
    model = FaceAnythingNet(MICRO).eval()
    path = save_checkpoint(tmp_path / "micro.safetensors", model,
                           CheckpointMetadata(MICRO, trained=True, training_data={"frames": 12}))
    return path, model


def test_tiny_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = FaceAnythingNet(ModelConfig.preset("tiny")).eval()
    path = save_checkpoint(tmp_path / "tiny.safetensors", model, CheckpointMetadata(model.config))
    loaded, metadata = load_checkpoint(path)
    assert not loaded.training and metadata.model_config == model.config
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in loaded.parameters())
    images = torch.rand(1, 2, 3, 224, 224)
    with torch.inference_mode():
        expected, actual = model(images), loaded(images)
    for name, value in expected.items():
        assert torch.equal(actual[name], value), name


def test_metadata_is_read_from_the_header(micro_file):
    path, _ = micro_file
    metadata = read_checkpoint_metadata(path)
    assert metadata.model_config == MICRO
    assert metadata.input_resolution == (64, 64)
    assert (metadata.canonical_space_id, metadata.canonical_space_version) == ("mediapipe-facemesh-478", "1")
    assert metadata.trained is True and metadata.training_data == {"frames": 12}
    assert metadata.package_version == __version__ and metadata.format_version == 1
    assert datetime.fromisoformat(metadata.created).tzinfo is not None


def test_init_checkpoint_is_untrained_reproducible_and_keeps_global_rng(tmp_path):
    state = torch.random.get_rng_state()
    metadata = init_checkpoint(tmp_path / "a.safetensors", "tiny", seed=3, canonical_space_version="2")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert metadata.trained is False and metadata.model_config == ModelConfig.preset("tiny")
    assert read_checkpoint_metadata(tmp_path / "a.safetensors").canonical_space_version == "2"
    init_checkpoint(tmp_path / "b.safetensors", "tiny", seed=3)
    init_checkpoint(tmp_path / "c.safetensors", "tiny", seed=4)
    weights = [load_checkpoint(tmp_path / f"{name}.safetensors")[0].state_dict() for name in "abc"]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not torch.equal(weights[0]["aggregator.camera_token"], weights[2]["aggregator.camera_token"])


def test_save_checkpoint_refuses_bad_requests(tmp_path):
    model = FaceAnythingNet(MICRO)
    with pytest.raises(ValueError, match="must end in .safetensors"):
        save_checkpoint(tmp_path / "model.pt", model, CheckpointMetadata(MICRO))
    with pytest.raises(ValueError, match="differs from the model"):
        save_checkpoint(tmp_path / "m.safetensors", model, CheckpointMetadata(ModelConfig.preset("tiny")))
    with torch.no_grad():
        model.aggregator.norm.weight[0] = float("nan")
    with pytest.raises(ValueError, match="aggregator.norm.weight"):
        save_checkpoint(tmp_path / "m.safetensors", model, CheckpointMetadata(MICRO))
    assert not list(tmp_path.iterdir())


def test_metadata_rejects_input_resolution_off_the_patch_grid():
    with pytest.raises(ValueError, match=r"multiples of the patch size 16, got \(64, 70\)"):
        CheckpointMetadata(MICRO, input_resolution=(64, 70))


def weights_of(model: FaceAnythingNet) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def write(path: Path, weights: dict[str, torch.Tensor], header: dict | str | None) -> Path:
    text = header if isinstance(header, str) or header is None else json.dumps(header)
    save_file(weights, str(path), metadata=None if text is None else {METADATA_KEY: text})
    return path


def header_of(**changes) -> dict:
    data = json.loads(CheckpointMetadata(MICRO).to_json())
    data.update(changes)
    return data


def assert_load_fails(path: Path, *fragments: str) -> None:
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    for fragment in fragments:
        assert fragment in str(caught.value), f"{fragment!r} not in {caught.value}"


def test_missing_file(tmp_path):
    assert_load_fails(tmp_path / "absent.safetensors", "not found", str(tmp_path / "absent.safetensors"))
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint_metadata(tmp_path / "absent.safetensors")


@pytest.mark.parametrize("keep", [0.5, 0.999, 20 / 1e9])
def test_truncated_file(micro_file, keep):
    path, _ = micro_file
    data = path.read_bytes()
    path.write_bytes(data[:max(1, int(len(data) * keep))])
    assert_load_fails(path, "not a valid safetensors file", str(path))


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8).numpy().tobytes())
    assert_load_fails(path, "not a valid safetensors file")


def test_safetensors_without_faceanything_metadata(tmp_path, micro_file):
    path = write(tmp_path / "plain.safetensors", weights_of(micro_file[1]), None)
    assert_load_fails(path, "no 'faceanything' metadata")


@pytest.mark.parametrize("header, fragment", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (header_of(format_version=99), "unsupported checkpoint format version 99"),
    (header_of(trained=None), "'trained' must be a bool"),
    ({k: v for k, v in header_of().items() if k != "canonical_space_id"}, "lacks fields ['canonical_space_id']"),
    (header_of(model_config={**to_dict(MICRO), "num_heads": 3}), "model config does not parse"),
    (header_of(model_config={**to_dict(MICRO), "embed_dim": 30}), "does not describe a buildable network"),
    (header_of(model_config={**to_dict(MICRO), "widht": 3}), "model config does not parse"),
    (header_of(input_resolution=[64, 70]), "invalid metadata"),
])
def test_bad_metadata(tmp_path, micro_file, header, fragment):
    path = write(tmp_path / "bad.safetensors", weights_of(micro_file[1]), header)
    assert_load_fails(path, fragment)


def test_missing_and_unexpected_tensors(tmp_path, micro_file):
    weights = weights_of(micro_file[1])
    del weights["ray_head.output_conv.2.weight"]
    weights["extra.bias"] = torch.zeros(3)
    path = write(tmp_path / "names.safetensors", weights, header_of())
    assert_load_fails(path, "1 missing ['ray_head.output_conv.2.weight']", "1 unexpected ['extra.bias']")


def test_shape_mismatch_names_tensor_and_shapes(tmp_path, micro_file):
    weights = weights_of(micro_file[1])
    weights["aggregator.camera_token"] = torch.zeros(3, 1, 32)
    path = write(tmp_path / "shape.safetensors", weights, header_of())
    assert_load_fails(path, "aggregator.camera_token expected (2, 1, 32) got (3, 1, 32)")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights(tmp_path, micro_file, value):
    weights = weights_of(micro_file[1])
    weights["depth_head.projects.0.bias"][1] = value
    path = write(tmp_path / "nan.safetensors", weights, header_of())
    assert_load_fails(path, "NaN or Inf", "depth_head.projects.0.bias")


def test_integer_weights(tmp_path, micro_file):
    weights = weights_of(micro_file[1])
    weights["aggregator.norm.bias"] = torch.zeros(32, dtype=torch.int32)
    path = write(tmp_path / "int.safetensors", weights, header_of())
    assert_load_fails(path, "floating point", "aggregator.norm.bias (torch.int32)")


def test_half_precision_weights_load_as_float32(tmp_path, micro_file):
    weights = {name: tensor.half() for name, tensor in weights_of(micro_file[1]).items()}
    model, _ = load_checkpoint(write(tmp_path / "half.safetensors", weights, header_of()))
    assert all(p.dtype == torch.float32 for p in model.parameters())
