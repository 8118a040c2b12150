#!/usr/bin/env bash
# Side by side: `unet bench` and the PyTorch reference (../shared/reference), same machine, 2 threads,
# alternating per workload. Needs `swift build -c release` and a venv with torch (TORCH_PYTHON).
# It runs with the environment it is given; to let OpenBLAS choose its kernel on a machine that
# pins one, run it as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE tools/bench_side_by_side.sh`.
set -u
cd "$(dirname "$0")/.."
U=.build/release/unet
P="${TORCH_PYTHON:-$HOME/venv-ref/bin/python} ../shared/reference/torch_unet_bench.py"
run() { echo "### $*"; "$@" 2>&1 | grep -E "RESULT|median|peak|{" ; }
$U system
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>}; $(${TORCH_PYTHON:-$HOME/venv-ref/bin/python} -c 'import torch; print("torch", torch.__version__)' 2>/dev/null)"
for spec in "train 16 512 1" "train 16 256 4" "infer 16 512 1" "infer 64 512 1" "train 64 512 1"; do
  set -- $spec
  mode=$1 base=$2 size=$3 batch=$4
  runs=5; [ "$base" = 64 ] && [ "$mode" = train ] && runs=3
  echo "=== $mode base $base ${batch}x${size}^2  load $(cut -d' ' -f1 /proc/loadavg)"
  run $U bench $mode --base-filters $base --size $size --batch $batch --threads 2 --runs $runs --json
  run $P --base $base --mode $mode --size $size --batch $batch --threads 2 --runs $runs
done
