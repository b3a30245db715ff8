import pytest

from faceanything_ros.config import (DetectorConfig, ModelConfig, PredictorConfig, TrackerConfig, from_dict,
                                     load_yaml, save_yaml, to_dict)


def test_presets_differ_and_validate():
    tiny, small, base = (ModelConfig.preset(s) for s in ("tiny", "small", "base"))
    assert (tiny.embed_dim, small.embed_dim, base.embed_dim) == (192, 384, 768)
    assert tiny.size == "tiny" and base.num_heads == 12
    with pytest.raises(ValueError, match="unknown model size 'huge'"):
        ModelConfig.preset("huge")
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        ModelConfig.preset("tiny", image_size=225)


def test_yaml_round_trip_nested(tmp_path):
    config = PredictorConfig(detector=DetectorConfig(max_faces=3, crop_scale=2.0), mask_threshold=0.3,
                             metric_depth="rays")
    save_yaml(config, tmp_path / "p.yaml")
    loaded = load_yaml(PredictorConfig, tmp_path / "p.yaml")
    assert loaded == config and isinstance(loaded.detector, DetectorConfig)
    with pytest.raises(ValueError, match=r"metric_depth = 'focal'; choose one of \['face_size', 'rays'\]"):
        from_dict(PredictorConfig, {"metric_depth": "focal"})
    model = ModelConfig.preset("small", image_size=256)
    assert from_dict(ModelConfig, to_dict(model)) == model  # tuples survive the list round trip


def test_unknown_keys_and_missing_file_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown TrackerConfig keys: \['max_distanse'\]"):
        from_dict(TrackerConfig, {"max_distanse": 0.1})
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_yaml(TrackerConfig, tmp_path / "nope.yaml")
