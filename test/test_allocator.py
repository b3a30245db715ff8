"""glibc's malloc kept from handing freed buffers back between frames (stream.allocator), measured by
the page faults of a frame-like loop in a fresh process."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
pytestmark = [
    pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's malloc's"),
    pytest.mark.skipif(THP.is_file() and "[always]" in THP.read_text(),
                       reason="transparent huge pages always on: the faults are not counted per 4 KiB page"),
]

BUFFERS, BUFFER_MIB = 12, 3  # a 1280x720 frame's large buffers: images, maps, messages

FRAME_LOOP = f"""
import json, resource, sys
import numpy as np
from faceanything_ros.stream.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None

def frame():
    buffers = [np.ones({BUFFER_MIB} << 18, np.float32) for _ in range({BUFFERS})]  # written: every page touched
    return sum(float(buffer[-1]) for buffer in buffers)

for _ in range(3):
    frame()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    frame()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start
print(json.dumps({{"kept": kept, "faults_per_frame": faults / 20}}))
"""


def frame_loop(mode: str) -> dict:
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith("MALLOC_") and key != "GLIBC_TUNABLES"}  # glibc's own defaults
    done = subprocess.run([sys.executable, "-c", FRAME_LOOP, mode], capture_output=True, text=True, check=True,
                          env=clean)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_freed_frame_buffers_are_reused_without_page_faults():
    pages_per_frame = BUFFERS * (BUFFER_MIB << 20) // 4096
    default = frame_loop("default")
    assert default["faults_per_frame"] > 0.8 * pages_per_frame  # glibc's own thresholds: new pages every frame
    kept = frame_loop("keep")
    assert kept["kept"] is True
    assert kept["faults_per_frame"] < 0.01 * pages_per_frame  # the last frame's memory, already mapped
