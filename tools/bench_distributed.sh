#!/usr/bin/env bash
# The figures of docs/DISTRIBUTED.md: data-parallel throughput (2 ranks x 1 thread against 1 process x
# 2 threads, same global batch), the gradient all-reduce, and streaming prediction's memory.
# Needs `swift build -c release` and Open MPI. Runs with the environment it is given (see
# docs/PERFORMANCE.md about OPENBLAS_CORETYPE).
set -u
cd "$(dirname "$0")/.."
U=.build/release/unet
MPI="mpirun -q --allow-run-as-root --oversubscribe"
$U system | sed -n '2,5p'
for base in 16 64; do
  runs=5; [ "$base" = 64 ] && runs=3
  echo "=== train base $base, global batch 2 x 512^2  load $(cut -d' ' -f1 /proc/loadavg)"
  $U bench train --base-filters $base --size 512 --batch 2 --threads 2 --runs $runs
  $MPI -np 2 $U bench train --base-filters $base --size 512 --batch 2 --threads 1 --runs $runs
done | grep -E "===|median"
for mb in 9.25 148; do $MPI -np 2 $U bench allreduce --megabytes $mb --runs 20; done

# Streaming prediction: peak RSS for 30 and 300 pages of 512^2 (a base-16 model trained 1 epoch).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$U synth --out "$work/data" --slices 6 --test-slices 300 --size 512 > /dev/null
$U train --data "$work/data" --out "$work/run" --epochs 1 --val-slices 5 > /dev/null 2>&1
$U synth --out "$work/short" --slices 2 --test-slices 30 --size 512 > /dev/null
for stack in short/test-volume.tif data/test-volume.tif; do
  /usr/bin/time -f "peak RSS %M KiB, %e s: predict $stack" $U predict --model "$work/run/best.safetensors" \
    --input "$work/$stack" --output "$work/out.tif" --threads 2 > /dev/null
done
