"""Stage timing: what each pipeline stage records, and the recorder's statistics."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from faceanything_ros.stages import STAGE_TIMES, STAGES, StageTimes, timed


def test_recorder_statistics_over_a_bounded_window():
    times = StageTimes(window=3)
    for seconds in (0.001, 0.002, 0.003, 0.010):
        times.record("detect", seconds, cpu_seconds=seconds / 2)
    summary = times.summary()
    assert list(summary) == ["detect"]
    detect = summary["detect"]
    assert detect["calls"] == 4 and detect["total_s"] == pytest.approx(0.016) and detect["cpu_s"] == pytest.approx(0.008)
    assert detect["mean_ms"] == pytest.approx(5.0) and detect["p50_ms"] == pytest.approx(3.0)  # last 3 calls kept
    times.reset()
    assert times.summary() == {}
    with pytest.raises(ValueError, match="unknown stage 'nap'"):
        times.record("nap", 1.0)
    with pytest.raises(ValueError, match="window must be >= 1"):
        StageTimes(window=0)


def test_a_with_block_records_wall_and_thread_cpu_time_also_when_it_raises():
    times = StageTimes()
    with times.stage("cloud"):
        time.sleep(0.02)  # wall time, no CPU
    with pytest.raises(KeyError), times.stage("cloud"):
        raise KeyError("x")
    cloud = times.summary()["cloud"]
    assert cloud["calls"] == 2 and cloud["total_s"] >= 0.02 and cloud["cpu_s"] < 0.01


def test_threads_record_into_one_recorder():
    times = StageTimes()

    def work() -> None:
        for _ in range(500):
            times.record("convert", 0.001)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert times.summary()["convert"]["calls"] == 2000


def test_the_decorated_pipeline_functions_record_their_stages():
    from faceanything_ros.geometry.camera import intrinsics_matrix
    from faceanything_ros.geometry.pointcloud import point_cloud_from_depth
    from faceanything_ros.ros.conversions import image_to_rgb, make_header, rgb_to_image
    from faceanything_ros.ros.message_types import typestore

    STAGE_TIMES.reset()
    types = typestore().types
    image_to_rgb(rgb_to_image(types, make_header(types, 0, "cam"), np.zeros((4, 6, 3), np.uint8)))
    point_cloud_from_depth(np.ones((4, 6), np.float32), intrinsics_matrix(10.0, 10.0, 2.5, 1.5))
    summary = STAGE_TIMES.summary()
    assert summary["convert"]["calls"] == 1 and summary["cloud"]["calls"] == 1
    assert set(summary) <= set(STAGES)
    with pytest.raises(ValueError, match="unknown stage"):
        timed("everything")


def test_the_stream_processor_records_every_stage_of_a_frame():
    from conftest import face_video
    from faceanything_ros.config import NodeConfig
    from faceanything_ros.io.frames import open_frames
    from faceanything_ros.stream.processing import FrameProcessor

    with open_frames(face_video("liveportrait_d18_man_frontal_mouth.mp4"), max_frames=3) as source:
        frames = [frame.rgb for frame in source]
    with FrameProcessor(NodeConfig(method="mesh", num_tracks=32)) as processor:
        STAGE_TIMES.reset()
        for index, rgb in enumerate(frames):
            processor.process(rgb, index, "cam")
    stages = STAGE_TIMES.summary()
    assert {"mesh", "paste_back", "cloud", "reconstruct", "tracking", "head_pose"} <= set(stages)
    assert stages["reconstruct"]["calls"] == stages["tracking"]["calls"] == stages["head_pose"]["calls"] == 3
    # the parts lie inside the whole reconstruction
    assert stages["mesh"]["total_s"] + stages["cloud"]["total_s"] < stages["reconstruct"]["total_s"]
