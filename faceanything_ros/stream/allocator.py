"""glibc's malloc kept from handing a stream's per-frame buffers back to the kernel between frames.

A frame allocates and frees megabytes of short-lived buffers: at 1280x720 the image taken from DDS,
the face's maps, the full-frame depth image, the point cloud and their serialized messages, tens of
MB together. glibc serves a buffer above its mmap threshold from a fresh mapping and hands the free
top of a heap back to the kernel once more than its trim threshold lies there; by default both
follow the largest buffer freed so far (the trim threshold twice that), far below a frame's
buffers together. So each frame's buffers were new memory, every page faulted in, zeroed and
charged to the cgroup again: in the node at 1280x720, 2,200-2,900 page faults a frame, against 1-4
with this setting, and 5-7 ms more CPU a frame (``bench.node_graph``).

``keep_freed_memory`` fixes the mmap threshold at ``MMAP_THRESHOLD`` (glibc's largest) and the trim
threshold at ``TRIM_THRESHOLD``: freed buffers stay mapped for the next frame's, and the process
keeps the memory of its busiest frame (a steady RSS, in the node up to 20 MB above the default's).
The setting is process-wide and lasts; it is glibc's, so elsewhere (musl, macOS) this does nothing
and says so.
"""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # mallopt parameters (glibc's malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # bytes: buffers up to this come from the heaps (glibc refuses more on 64-bit)
TRIM_THRESHOLD = 256 << 20  # bytes of free heap top kept mapped before any is handed back


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds as the module says (idempotent); False where the C library
    has no ``mallopt`` (nothing changed) or refuses a value."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # the mmap threshold first: setting either stops glibc adjusting both, at whatever they are then
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
