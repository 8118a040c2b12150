#!/usr/bin/env bash
# Fault injection: SIGKILL at random moments of a training run, then --resume, until the run ends.
#
#   tools/fault_kill9.sh [KILLS]      (default 20 kills)
#
# Trains a tiny U-Net (base 4, depth 2, dropout 0.3, 32^2 crops) on a 6-slice 64^2 synthetic
# dataset, once without interruption (the reference), then again while killing it with `kill -9` after
# a random delay (uniform up to the reference's whole time, so kills land in start-up, training steps,
# validation and writes alike), resuming from last.safetensors after each kill (or starting again when
# no epoch had finished). When a run ends before all kills are spent, another run starts; every run's
# end is compared.
# After every kill it checks that:
#   - every checkpoint in the run folder loads: `unet info` and `safetensors_diff.py --check`
#     (whole file read, tensors cover the data section exactly, values finite);
#   - metrics.csv is never ahead of last.safetensors (logs are written after the checkpoints);
#   - the next start succeeds whatever the kill left (temporary files included).
# At the end of every run: last.safetensors and best.safetensors equal the reference's bit for bit
# (weights, batch-norm statistics, optimizer state), metrics.csv equals the reference's but for the
# seconds column, and no temporary file (.NAME.tmp-PID-N) is left in the run folder.
#
# Environment: UNET (default .build/release/unet; built when missing), FAULT_WORK (default a new
# folder under /tmp, kept when a check fails), FAULT_SEED (seed of the delays, printed), FAULT_EPOCHS
# (default 8), FAULT_THREADS (default 2), FAULT_MAX_DELAY_MS (default: the reference run's time).
# Needs python3 (standard library only).
# Exit status: 0 when every check passed, 1 when one failed, 2 on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

kills=${1:-20}
[[ "$kills" =~ ^[0-9]+$ ]] || { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
epochs=${FAULT_EPOCHS:-8}
threads=${FAULT_THREADS:-2}
seed=${FAULT_SEED:-$RANDOM}
RANDOM=$seed
unet=${UNET:-$root/.build/release/unet}
diff=(python3 "$root/tools/safetensors_diff.py")
if [ ! -x "$unet" ]; then swift build -c release --product unet >&2; fi
work=${FAULT_WORK:-$(mktemp -d /tmp/unet-kill9.XXXXXX)}
mkdir -p "$work"
echo "fault_kill9: $kills kills, $epochs epochs per run, seed $seed, work folder $work"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
now_ms() { date +%s%3N; }

"$unet" synth --out "$work/data" --slices 6 --test-slices 1 --size 64 >/dev/null
common=(--data "$work/data" --val-slices 4-5 --tile 32 --base-filters 4 --depth 2 --batch-size 2
        --dropout 0.3 --preview-every 1 --seed 3 --threads "$threads")

start=$(now_ms)
"$unet" train "${common[@]}" --epochs "$epochs" --out "$work/reference" >"$work/reference.log" 2>&1 \
    || { echo "fault_kill9: the reference run failed; see $work/reference.log"; exit 1; }
reference_ms=$(( $(now_ms) - start ))
max_delay=${FAULT_MAX_DELAY_MS:-$reference_ms}
echo "reference: $epochs epochs in $reference_ms ms; kill delays uniform in 0..$max_delay ms"

# The epoch a checkpoint holds, per `unet info --json` (and the whole file read by the checker).
checkpoint_epoch() {
  local json
  json=$("$unet" info --json "$1") || return 1
  "${diff[@]}" --check "$1" >/dev/null || { "${diff[@]}" --check "$1"; return 1; }
  python3 -c 'import json,sys; print(json.load(sys.stdin)["epoch"])' <<<"$json"
}

# After a kill: every checkpoint loads, and the logs are not ahead of last.safetensors.
check_folder() {
  local run=$1 last_epoch=0 f
  for f in "$run"/*.safetensors; do
    [ -e "$f" ] || continue
    local e
    if ! e=$(checkpoint_epoch "$f"); then fail "$f does not load after a kill"; continue; fi
    [ "$(basename "$f")" = last.safetensors ] && last_epoch=$e
  done
  if [ -f "$run/metrics.csv" ]; then
    local rows=$(( $(wc -l <"$run/metrics.csv") - 1 ))
    [ "$rows" -le "$last_epoch" ] || fail "$run/metrics.csv has $rows epochs, last.safetensors $last_epoch"
  fi
  echo "$last_epoch"
}

# The end of a run: the same tensors and metrics as the reference, no temporary file left. With
# "killed-at-end" the run was killed after its final checkpoint, maybe before its logs: metrics.csv
# may then lack the final epoch (the checkpoint's history has it), but must agree on the others.
check_end() {
  local run=$1 how=${2:-} name
  for name in last best; do
    local out
    if out=$("${diff[@]}" "$work/reference/$name.safetensors" "$run/$name.safetensors"); then
      echo "  $name.safetensors: $out"
    else
      fail "$run/$name.safetensors differs from the reference's: $out"
    fi
  done
  # metrics.csv without the seconds column (the one timing in it).
  local compare='
import csv, sys
def rows(p):
    r = list(csv.reader(open(p))); i = r[0].index("seconds"); return [x[:i] + x[i + 1:] for x in r]
ours, ref, lag_allowed = rows(sys.argv[1]), rows(sys.argv[2]), sys.argv[3] == "killed-at-end"
if ours == ref: sys.exit(0)
if lag_allowed and len(ours) == len(ref) - 1 and ours == ref[:len(ours)]:
    print("  metrics.csv lacks the final epoch (killed between the final checkpoint and the logs)"); sys.exit(0)
sys.exit(1)'
  python3 -c "$compare" "$run/metrics.csv" "$work/reference/metrics.csv" "$how" \
    || fail "$run/metrics.csv differs from the reference's (seconds aside)"
  local left
  left=$(find "$run" -name '.*.tmp-*' | wc -l)
  [ "$left" -eq 0 ] || fail "$left temporary file(s) left in $run: $(find "$run" -name '.*.tmp-*' | head -3)"
}

done_kills=0 runs=0 starts=0 stray_seen=0
while [ "$done_kills" -lt "$kills" ]; do
  runs=$((runs + 1))
  run=$work/run-$runs
  echo "run $runs ($run)"
  while true; do
    # A kill after the final epoch's checkpoint ends the run: there is nothing left to resume.
    if [ -f "$run/last.safetensors" ] && [ "$(checkpoint_epoch "$run/last.safetensors" | tail -1)" = "$epochs" ]; then
      echo "  finished: the last kill came after the final checkpoint"
      check_end "$run" killed-at-end
      break
    fi
    starts=$((starts + 1))
    if [ -f "$run/last.safetensors" ]; then
      args=(train --resume "$run/last.safetensors" --epochs "$epochs" --threads "$threads")
    else
      args=(train "${common[@]}" --epochs "$epochs" --out "$run")
    fi
    log=$work/start-$starts.log
    "$unet" "${args[@]}" >"$log" 2>&1 &
    pid=$!
    if [ "$done_kills" -lt "$kills" ]; then
      delay=$(( (RANDOM * 32768 + RANDOM) % (max_delay + 1) ))
      sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    fi
    if [ "$done_kills" -lt "$kills" ] && kill -9 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      done_kills=$((done_kills + 1))
      stray=$(find "$run" -name '.*.tmp-*' 2>/dev/null | sed "s|^$run/||" | sort | tr '\n' ' ')
      stray_seen=$((stray_seen + $(wc -w <<<"$stray")))
      epoch=$(check_folder "$run" | tail -1)
      echo "  kill $done_kills after ${delay} ms ($(tail -c 300 "$log" | tr '\r' '\n' | grep -v '^ *$' | tail -1 | cut -c1-60)): last.safetensors at epoch $epoch; temporary files: ${stray:-none}"
      continue
    fi
    rc=0
    wait "$pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
      fail "start $starts exited $rc after a kill; see $log"
      tail -3 "$log"
      break
    fi
    echo "  finished (start $starts)"
    check_end "$run"
    break
  done
  [ "$failures" -eq 0 ] || break
done

echo "fault_kill9: $done_kills kills over $runs run(s) and $starts starts; temporary files seen right after a kill: $stray_seen; failures: $failures"
if [ "$failures" -eq 0 ]; then
  [ -n "${FAULT_WORK:-}" ] || rm -rf "$work"
  echo "fault_kill9: OK"
  exit 0
fi
echo "fault_kill9: FAILED (work folder kept: $work)"
exit 1
