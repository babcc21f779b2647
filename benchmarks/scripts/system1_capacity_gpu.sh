#!/usr/bin/env bash
# System 1's ceiling by network size (issue 6 diagnostic): benchmarks.system1_ceiling from scratch
# at several GPT shapes, all at once on one GPU. Usage: OUT=dir STEPS=3000 bash THIS [cpu|cuda]
# Each shape writes $OUT/ceiling_<name>.json; logs go to $OUT/capacity.log.
set -u
DEVICE=${1:-cuda}
STEPS=${STEPS:-3000}
LIMIT=${LIMIT:-100}
TRAIN_LIMIT=${TRAIN_LIMIT:-}
PY=${PY:-python3}
export PYTHONPATH=src:. PYTHONUNBUFFERED=1
run() {  # name n_layer n_head n_embd steps
  local extra=()
  [ -n "$TRAIN_LIMIT" ] && extra=(--train-limit "$TRAIN_LIMIT")
  timeout "${PER_RUN_S:-500}" "$PY" -m benchmarks.system1_ceiling --init scratch --n-layer "$2" --n-head "$3" \
    --n-embd "$4" --steps "$5" --limit "$LIMIT" --device "$DEVICE" "${extra[@]}" \
    --save "/tmp/ceiling-$1" --out "$OUT/ceiling_$1.json" >"/tmp/ceiling-$1.log" 2>&1
  echo "== $1 exit $?" >>"/tmp/ceiling-$1.log"
}
run 3x96 3 4 96 "$STEPS" &
run 4x192 4 6 192 "$STEPS" &
run 6x256 6 8 256 "$STEPS" &
run 8x384 8 8 384 "$STEPS" &
run 6x256-long 6 8 256 $((2 * STEPS)) &
wait
tail -n 30 /tmp/ceiling-*.log >"$OUT/capacity.log"
cat "$OUT/capacity.log"
