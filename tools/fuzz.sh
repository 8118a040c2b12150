#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ and runs one or all of them.
#
#   tools/fuzz.sh TARGET SECONDS        run for SECONDS seconds (-max_total_time)
#   tools/fuzz.sh TARGET -runs=N        run N inputs
#   tools/fuzz.sh TARGET ... [libFuzzer flags]   extra flags go to libFuzzer (e.g. -seed=1, -max_len=65536)
#
# TARGET: tiff | safetensors | json | cli | all (one after another, never in parallel).
#
# Everything it writes lives under $FUZZ_WORK (default /tmp/unet-fuzz), outside the repository:
#   seeds/TARGET    regenerated each run from small valid files (the fuzzer binary writes them when
#                   FUZZ_WRITE_SEEDS is set; no binary seed is committed)
#   corpus/TARGET   the growing corpus libFuzzer keeps between runs
#   crashes/TARGET  crash-*, leak-*, timeout-*, oom-* inputs (-artifact_prefix)
#   logs/TARGET.log the run's output
# Environment: FUZZ_RSS_MB (default 2048: -rss_limit_mb and -malloc_limit_mb), FUZZ_TIMEOUT
# (default 10 s per input: -timeout), FUZZ_NO_BUILD=1 to skip the build.
# Reproduce a finding: Fuzz/.build/release/FuzzTIFF /tmp/unet-fuzz/crashes/tiff/crash-...
# Exit status: 0 when every run ended without a finding, 1 otherwise, 2 on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
target=$1; budget=$2; shift 2
case "$budget" in
  -runs=[0-9]*) limit=("$budget") ;;
  [0-9]*) [[ "$budget" =~ ^[0-9]+$ ]] || usage; limit=("-max_total_time=$budget") ;;
  *) echo "fuzz.sh: '$budget': expected SECONDS or -runs=N" >&2; usage ;;
esac
case "$target" in
  all) targets=(tiff safetensors json cli) ;;
  tiff|safetensors|json|cli) targets=("$target") ;;
  *) echo "fuzz.sh: unknown target '$target': expected tiff, safetensors, json, cli or all" >&2; usage ;;
esac

work=${FUZZ_WORK:-/tmp/unet-fuzz}
rss=${FUZZ_RSS_MB:-2048}
timeout=${FUZZ_TIMEOUT:-10}
# The Swift backtracer can be left waiting after a crash; libFuzzer and ASan report instead.
export SWIFT_BACKTRACE=enable=no

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  echo "fuzz.sh: building Fuzz/ (release, -sanitize=fuzzer,address)" >&2
  (cd Fuzz && swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
      -Xswiftc -enable-testing 2>&1 | grep -v "Cannot export local symbol" | grep -E "error|warning: unre|Compiling|Build complete" >&2 || true)
fi
bin=$root/Fuzz/.build/release

status=0
for t in "${targets[@]}"; do
  case "$t" in
    tiff) exe=FuzzTIFF; dict=() ;;
    safetensors) exe=FuzzSafeTensors; dict=("-dict=$root/Fuzz/safetensors.dict") ;;
    json) exe=FuzzJSON; dict=("-dict=$root/Fuzz/safetensors.dict") ;;
    cli) exe=FuzzCLI; dict=() ;;
  esac
  [ -x "$bin/$exe" ] || { echo "fuzz.sh: $bin/$exe is missing (build failed?)" >&2; exit 1; }
  rm -rf "$work/seeds/$t"
  mkdir -p "$work/seeds/$t" "$work/corpus/$t" "$work/crashes/$t" "$work/logs"
  # Leak checking is for the fuzzing: the seed writer exits with its objects alive.
  ASAN_OPTIONS=detect_leaks=0 FUZZ_WRITE_SEEDS="$work/seeds/$t" "$bin/$exe" >&2
  log=$work/logs/$t.log
  echo "fuzz.sh: $exe ${limit[*]} (log: $log, findings: $work/crashes/$t/)" >&2
  set +e
  "$bin/$exe" "$work/corpus/$t" "$work/seeds/$t" "${dict[@]}" "${limit[@]}" \
      -rss_limit_mb="$rss" -malloc_limit_mb="$rss" -timeout="$timeout" -print_final_stats=1 \
      -artifact_prefix="$work/crashes/$t/" "$@" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  if [ $rc -eq 0 ]; then
    echo "$t: OK, ${runs:-?} executions, ${rate:-?}/s, $cov, corpus $(ls "$work/corpus/$t" | wc -l) files"
  else
    status=1
    echo "$t: FINDING (exit $rc), ${runs:-?} executions; $(grep -m1 -E 'ERROR|SUMMARY|Fatal error|out-of-memory|timeout' "$log" || true)"
    ls -t "$work/crashes/$t" | head -3 | sed "s|^|  $work/crashes/$t/|"
  fi
done
exit $status
