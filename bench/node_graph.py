"""The colcon-built node in a real ROS 2 graph: a camera process at a fixed rate, every output subscribed.

Usage (repository root, the venv holding rclpy and colcon)::

    python -m bench.node_graph --method mesh [--sizes 640x480 1280x720] [--rate-hz 30] [--frames 300]
    python -m bench.node_graph --method model --engine onnx --rate-hz 15   # the bundled model
    python -m bench.node_graph --method mesh --sizes 640x480 --frames 10000   # a soak: RSS over time
    python -m bench.node_graph --method mesh --before bench/results/node_graph_mesh_cpu.json --json new.json
    python -m bench.node_graph --method mesh --content 640x480   # the same face pixels in both sizes

Per image size, the installed ``faceanything_node`` runs in one process and
``bench/node_graph_client.py`` in a second (both from ``--workspace``, a colcon build of this
repository; without it one is built in a temporary folder): the client publishes a shared face
video (centre-cropped to the size's aspect and resized, so the face grows with the image; with
``--content WxH`` resized to that size and centred, black around it, in every image size, so only
the frame grows) with a CameraInfo at ``--rate-hz``, both
with ``--fastdds-profile`` (the package's large shared-memory profile unless told otherwise),
subscribes to every private output and to ``/diagnostics``. After ``--warmup-frames`` the measured
``--frames`` are sent. Reported per size: images received by the node, processed and dropped (the
node's own diagnostics counters over the measured frames), frames/s processed, latency from the
send to the last output of a frame (client clock; p50/p99 over frames whose outputs all
arrived, and the longest) and the node's own latency percentiles (its window includes the warm-up),
the per-frame time of every pipeline stage (``faceanything_ros.stages``, from the node's
diagnostics), the garbage collections during the measurement and the longest pauses since the
node was configured, and the
node's resident memory (RSS) over the measured frames with its growth per 1000 processed frames
and the RSS series itself (at most ``RSS_SERIES_POINTS`` samples: a long run is a soak),
and the node's CPU time per processed frame (all its threads: on a machine shared with other work,
what a frame costs when wall times are stretched by waiting for a core), with the load average.
``--rounds N`` measures every size N times, the sizes taken in turn, so that a slow spell of the
shared machine falls on every size; the JSON's ``summary`` holds each size's median figures over
its rounds and the range of its p99 (the runs stay in ``results``, each with its ``round``).
``--before`` copies the headline figures and stage breakdown of an earlier run's JSON into this
one's settings (``before``), so a change is recorded with what it changed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import SHARED_DATA, report
from faceanything_ros.config import ENGINES, METHODS, NodeConfig
from faceanything_ros.ros.outputs import GLOBAL_TOPICS, OUTPUT_TYPES
from faceanything_ros.ros.transport import PROFILE_NAME, profile_environment
from faceanything_ros.stages import STAGES

REPO_ROOT = Path(__file__).resolve().parents[1]
CLIENT = REPO_ROOT / "bench" / "node_graph_client.py"
FASTDDS_PROFILE = REPO_ROOT / "config" / PROFILE_NAME  # what faceanything.launch.py gives the node
DEFAULT_VIDEO = SHARED_DATA / "faces" / "videos" / "liveportrait_src_s18_woman_talking_720p.mp4"
NODE_NAME = "faceanything_bench"
CAMERA = "/bench_camera"
OUTPUTS = {key: kind for key, kind in OUTPUT_TYPES.items() if key not in GLOBAL_TOPICS}  # all subscribed by the client
RSS_PERIOD_S = 0.5
BEFORE_KEYS = ("size", "content", "round", "received_pct", "fps", "p50_ms", "p99_ms", "max_ms", "node_p50_ms",
               "node_p99_ms", "node_cpu_ms_per_frame", "node_page_faults_per_frame", "stages_ms_per_frame",
               "stages_cpu_ms_per_frame")
RSS_SERIES_POINTS = 100
SUMMARY_KEYS = ("received_pct", "fps", "p50_ms", "p99_ms", "max_ms", "node_cpu_ms_per_frame")  # medians over rounds


def build_workspace(folder: Path) -> Path:
    """colcon-build this repository in ``folder`` (the test suite's workspace helpers); the workspace."""
    sys.path.insert(0, str(REPO_ROOT / "test"))
    from ros_workspace import build_environment, colcon_build, copy_repository

    workspace = folder / "ws"
    copy_repository(workspace)
    colcon_build(workspace, build_environment(folder))
    return workspace


def graph_environment(fastdds_profile: str) -> dict[str, str]:
    """This environment with DDS on loopback in a domain of its own, this interpreter's ``bin`` first on
    PATH (the installed executables run ``python3`` from PATH), PYTHONPATH left to the install, and
    ``fastdds_profile`` as both processes' Fast DDS profile ("" = Fast DDS's defaults)."""
    env = profile_environment({k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, fastdds_profile)
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(101 + os.getpid() % 100),
               PYTHONUNBUFFERED="1")
    return env


def sourced(workspace: Path, command: list[str]) -> list[str]:
    """``bash -c`` argv running ``command`` (exec'd, so its pid is the process's) after sourcing the install."""
    return ["bash", "-c", f'source "{workspace / "install" / "setup.bash"}" && exec "$@"', "bash", *command]


def memory_and_cpu(pid: int) -> tuple[float, float, int] | None:
    """Resident set size (MiB), CPU time so far (user + system seconds, all threads) and minor page
    faults so far of process ``pid``, or None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return rss_kib / 1024, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[7])


def run_size(args: argparse.Namespace, workspace: Path, size: str, folder: Path) -> dict:
    """Run the node and the camera client for one image size; the result row."""
    env = graph_environment(args.fastdds_profile)
    node_executable = workspace / "install" / "faceanything_ros" / "lib" / "faceanything_ros" / "faceanything_node"
    parameters = {"method": args.method, "engine": args.engine, "num_tracks": args.num_tracks,
                  "point_stride": args.point_stride, "face_redetect_every": args.face_redetect_every,
                  "cpu_threads": args.cpu_threads, "flip_average": args.flip_average,
                  **({"model": str(args.model)} if args.model else {})}
    ros_args = ["--ros-args", "-r", f"__node:={NODE_NAME}", "-r", f"image:={CAMERA}/image",
                "-r", f"camera_info:={CAMERA}/camera_info"]
    for name, value in parameters.items():
        ros_args += ["-p", f"{name}:={value}"]
    node_log = folder / f"node_{size}.log"
    record_path = folder / f"record_{size}.json"
    with open(node_log, "w") as log:
        node = subprocess.Popen(sourced(workspace, [str(node_executable), *ros_args]), cwd=folder, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        samples: list[tuple[float, float, float, int]] = []  # wall time, RSS MiB, CPU seconds, minor faults
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(RSS_PERIOD_S):
                value = memory_and_cpu(node.pid)
                if value is not None:
                    samples.append((time.time(), *value))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            client = subprocess.run(
                sourced(workspace, [sys.executable, str(CLIENT), "--video", str(args.video), "--size", size,
                                    "--rate-hz", str(args.rate_hz), "--frames", str(args.frames),
                                    "--warmup-frames", str(args.warmup_frames),
                                    "--video-frames", str(args.video_frames), "--node", f"/{NODE_NAME}",
                                    "--camera", CAMERA, "--connect-timeout-s", str(args.connect_timeout_s),
                                    *(["--content", args.content] if args.content else []),
                                    "--outputs", *(f"{key}={kind}" for key, kind in OUTPUTS.items()),
                                    "--out", str(record_path)]),
                cwd=folder, env=env, capture_output=True, text=True, check=False)
        finally:
            stop.set()
            node.send_signal(signal.SIGINT)
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
    if client.returncode != 0 or not record_path.is_file():
        raise SystemExit(f"camera client failed ({client.returncode}):\n{client.stderr[-3000:]}\n"
                         f"node log tail:\n{node_log.read_text()[-3000:]}")
    return summarise(json.loads(record_path.read_text()), samples, size, args)


def diagnostic_number(values: dict[str, str], key: str) -> float:
    """A number from the node's diagnostics key/values (0 when the key is absent)."""
    return float(values.get(key, 0.0))


def summarise(record: dict, samples: list[tuple[float, float, float, int]], size: str,
              args: argparse.Namespace) -> dict:
    """The result row of one size from the client's record and the node's (time, RSS, CPU, faults) samples."""
    (_, before), (_, after) = record["diagnostics_before"], record["diagnostics_after"]

    def delta(key: str) -> float:
        return diagnostic_number(after, key) - diagnostic_number(before, key)

    frames_out = delta("frames_out")
    sent = {int(stamp): t for stamp, t in record["sent"].items()}
    arrivals: dict[int, list[float]] = {}
    for times in record["received"].values():
        for stamp, t in times.items():
            arrivals.setdefault(int(stamp), []).append(t)
    complete = {stamp: max(times) - sent[stamp] for stamp, times in arrivals.items() if len(times) == len(OUTPUTS)}
    latency_ms = np.asarray(list(complete.values())) * 1e3
    def per_frame_ms(name: str, total: str) -> float:
        return delta(f"stages.{name}.{total}") * 1e3 / max(delta("frames_in" if name == "convert" else "frames_out"), 1)

    present = [name for name in STAGES if f"stages.{name}.total_s" in after]
    stages = {name: per_frame_ms(name, "total_s") for name in present}
    stages_cpu = {name: per_frame_ms(name, "cpu_s") for name in present}
    window_start = record["measure_start_wall"]
    window_end = window_start + record["send_s"]
    rss = np.array([sample for sample in samples if window_start <= sample[0] <= window_end]).reshape(-1, 4)
    fps = frames_out / record["send_s"]
    growth = float(np.polyfit(rss[:, 0], rss[:, 1], 1)[0] * 1000 / max(fps, 1e-9)) if len(rss) > 2 else float("nan")
    node_cpu_ms = page_faults = float("nan")
    if len(rss) > 1:  # per frame processed between the first and last sample
        sampled_frames = max(frames_out * (rss[-1, 0] - rss[0, 0]) / record["send_s"], 1)
        node_cpu_ms = (rss[-1, 2] - rss[0, 2]) * 1e3 / sampled_frames
        page_faults = (rss[-1, 3] - rss[0, 3]) / sampled_frames
    return {
        "size": size, "content": args.content, "sent": len(sent), "received": int(delta("frames_in")), "processed": int(frames_out),
        "dropped": int(delta("dropped")), "errors": int(delta("errors")),
        "received_pct": 100.0 * delta("frames_in") / max(len(sent), 1), "fps": fps,
        "complete_outputs": len(complete),
        "p50_ms": float(np.percentile(latency_ms, 50)) if latency_ms.size else float("nan"),
        "p99_ms": float(np.percentile(latency_ms, 99)) if latency_ms.size else float("nan"),
        "max_ms": float(latency_ms.max()) if latency_ms.size else float("nan"),
        "node_p50_ms": diagnostic_number(after, "latency.p50_ms"),
        "node_p99_ms": diagnostic_number(after, "latency.p99_ms"),
        "stages_ms_per_frame": stages, "stages_cpu_ms_per_frame": stages_cpu, "engine": after.get("engine", ""),
        "gc_frozen_objects": int(diagnostic_number(after, "gc.frozen_objects")),
        "gc_collections": {f"gen{g}": int(delta(f"gc.gen{g}.calls")) for g in range(3)},
        "gc_max_pause_ms": {f"gen{g}": diagnostic_number(after, f"gc.gen{g}.max_pause_ms") for g in range(3)},
        "rss_start_mb": float(rss[0, 1]) if len(rss) else float("nan"),
        "rss_end_mb": float(rss[-1, 1]) if len(rss) else float("nan"),
        "rss_growth_mb_per_1k": growth, "node_cpu_ms_per_frame": node_cpu_ms,
        "node_page_faults_per_frame": float(page_faults), "load_average": os.getloadavg(),
        "rss_series_mb": [[float(t - window_start), float(mb)] for t, mb, _, _ in
                          rss[np.linspace(0, len(rss) - 1, min(len(rss), RSS_SERIES_POINTS)).astype(int)]],
    }


def size_summary(runs: list[dict]) -> dict:
    """One size's figures over its rounds (``runs``: its result rows): the median of each of ``SUMMARY_KEYS``
    and of every stage's time, and the smallest and largest p99."""
    def median(values: list[float]) -> float:
        return float(np.median(values))

    stages = {kind: {name: median([run[kind][name] for run in runs]) for name in runs[0][kind]}
              for kind in ("stages_ms_per_frame", "stages_cpu_ms_per_frame")}
    return {"size": runs[0]["size"], "rounds": len(runs),
            **{key: median([run[key] for run in runs]) for key in SUMMARY_KEYS},
            "p99_ms_range": [min(run["p99_ms"] for run in runs), max(run["p99_ms"] for run in runs)], **stages}


def main() -> None:
    """Parse arguments, run every size, print the table and the stage breakdown (and write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=METHODS, default="mesh")
    parser.add_argument("--model", help="checkpoint for --method model (default: the bundled one)")
    parser.add_argument("--engine", choices=ENGINES, default="auto", help="engine for --method model")
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"], help="image sizes, WIDTHxHEIGHT")
    parser.add_argument("--content", help="WIDTHxHEIGHT: the video resized to this, centred (black around) in "
                                          "every size, so the face has the same pixels in each (default: the "
                                          "video fills each size, the face growing with it)")
    parser.add_argument("--rate-hz", type=float, default=30.0, help="camera rate (default: 30)")
    parser.add_argument("--frames", type=int, default=300, help="measured frames per size (default: 300)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every size this many times, the sizes in turn (default: 1); the JSON's "
                             "summary holds the medians")
    parser.add_argument("--warmup-frames", type=int, default=60, help="frames sent before measuring")
    parser.add_argument("--video", default=str(DEFAULT_VIDEO), help="face video, looped")
    parser.add_argument("--video-frames", type=int, default=90, help="frames decoded from the video and looped")
    parser.add_argument("--num-tracks", type=int, default=256)
    parser.add_argument("--point-stride", type=int, default=1, help="the node's point_stride")
    parser.add_argument("--cpu-threads", type=int, default=NodeConfig.cpu_threads,
                        help="the node's cpu_threads (torch and ONNX Runtime intra-op threads; 0 = one per core)")
    parser.add_argument("--flip-average", action=argparse.BooleanOptionalAction, default=NodeConfig.flip_average,
                        help="the node's flip_average (the model method; default: %(default)s)")
    parser.add_argument("--face-redetect-every", type=int, default=NodeConfig.face_redetect_every,
                        help="the node's face_redetect_every (the model method)")
    parser.add_argument("--connect-timeout-s", type=float, default=300.0,
                        help="wait this long for the node to start and its topics to match (default: 300)")
    parser.add_argument("--workspace", help="colcon workspace of this repository (default: build one)")
    parser.add_argument("--fastdds-profile", default=str(FASTDDS_PROFILE),
                        help="Fast DDS profile of the camera and the node (default: the package's "
                             "config/fastdds_large_data.xml, as the launch file sets; '' = Fast DDS's defaults)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--before", type=Path, help="an earlier run's JSON: its figures are recorded beside these")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    before = None
    if args.before is not None:
        earlier = json.loads(args.before.read_text())
        before = {"created": earlier["created"], "settings": earlier["settings"],
                  "results": [{key: row.get(key) for key in BEFORE_KEYS} for row in earlier["results"]],
                  "summary": earlier.get("summary")}
    folder = Path(tempfile.mkdtemp(prefix="node_graph_"))
    try:
        workspace = Path(args.workspace) if args.workspace else build_workspace(folder)
        rows = [{**run_size(args, workspace, size, folder), "round": index}
                for index in range(args.rounds) for size in args.sizes]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    columns = [("size", "size", "s"), ("sent", "sent", "d"), ("recv %", "received_pct", ".1f"),
               ("processed", "processed", "d"), ("dropped", "dropped", "d"), ("fps", "fps", ".1f"),
               ("p50 ms", "p50_ms", ".1f"), ("p99 ms", "p99_ms", ".1f"), ("max ms", "max_ms", ".0f"),
               ("node p99", "node_p99_ms", ".1f"),
               ("node CPU ms", "node_cpu_ms_per_frame", ".1f"), ("faults/fr", "node_page_faults_per_frame", ".0f"),
               ("RSS MB", "rss_end_mb", ".0f"),
               ("MB/1k fr", "rss_growth_mb_per_1k", ".2f")]
    summary = [size_summary([row for row in rows if row["size"] == size]) for size in args.sizes]
    report("node_graph", f"node graph: --method {args.method} at {args.rate_hz:g} Hz, {args.frames} frames of "
           f"{Path(args.video).name}" + (f" at {args.content} centred" if args.content else "")
           + f", {args.num_tracks} tracks, every output subscribed", columns, rows, args,
           summary=summary, before=before)
    for row in rows:
        print(f"{row['size']} ms/frame, wall (thread CPU): " + ", ".join(
            f"{name} {ms:.1f} ({row['stages_cpu_ms_per_frame'][name]:.1f})" for name, ms in
            row["stages_ms_per_frame"].items()))
        print(f"{row['size']} garbage collections (longest pause ms): " + ", ".join(
            f"{gen} {calls} ({row['gc_max_pause_ms'][gen]:.1f})" for gen, calls in row["gc_collections"].items())
            + f"; {row['gc_frozen_objects']} objects frozen")
    for size in summary:
        low, high = size["p99_ms_range"]
        print(f"{size['size']} median of {size['rounds']} round(s): {size['fps']:.1f} frames/s, "
              f"p50 {size['p50_ms']:.1f} ms, p99 {size['p99_ms']:.1f} ms ({low:.1f}-{high:.1f}), "
              f"node CPU {size['node_cpu_ms_per_frame']:.1f} ms a frame")


if __name__ == "__main__":
    main()
