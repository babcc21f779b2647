#!/usr/bin/env bash
# Rebuilds the shipped default tiny GPT from random weights, then measures it (issue 6):
#   stage 1: the RFT loop from the rules and the verifier alone (rule lines, lookahead value
#            targets, rotary positions), train split only;
#   sweep:   with SWEEP=1, `qstar train sweep` first sharpens the stage-1 value head (one
#            Bellman backup over every first-step state of the train split, SWEEP_STEPS fitting
#            steps, KL-anchored policy) and the swept model is the teacher (the shipped
#            recipe); SWEEP=0 skips it;
#   stage 2: Stream of Search distillation (the stage-1 model writes its own depth-first
#            searches over the train split; fine-tuned on the verified ones), block 1536;
#   stage 3: STAR_PASSES passes of STaR on written searches (the student writes its own
#            searches on the train split, one legal line at a time sampled at
#            STAR_TEMPERATURE; fine-tuned STAR_STEPS steps on the verified ones mixed with
#            every earlier stage's traces); STAR_PASSES=0 stops after stage 2;
#   then:    benchmarks.distill --report-only (stream, stream with legal lines, plain System 1
#            and Q* at 11 expansions on the whole val and test splits) and
#            benchmarks.generalization (first 100 of train / val / test).
# No oracle solution enters either stage. Every knob has the shipped value as its default:
#   NAME=my-recipe ROUNDS=11 SWEEP=1 TRACES=3 STEPS=1700 BLOCK=1536 TEMPERATURE=0.5 bash benchmarks/scripts/default_recipe.sh
# The shipped run (NAME=cut60) took 31.4 + 9.6 + 17.7 = 58.7 training CPU-minutes run alone on one
# core of the 2-core dev box, plus about 25 for the measurements. The default before it skipped
# the sweep (ROUNDS=12 SWEEP=0 TRACES=4 STEPS=2000: 33.8 + 19.3 = 53.1, legal lines 75 / 80%
# against 89 / 86% on val / test); the uncut swept recipe (ROUNDS=12 SWEEP=1 TRACES=4
# STEPS=2000) took 70-73 CPU-minutes for 85-90% on val and 85-88% on test (README, "A value sweep").
# CPU-minutes grow by up to a fifth when the box runs other jobs: run it alone.
# Results: runs/$NAME-stage1/, runs/$NAME/, runs/$NAME-star<k>/ and benchmarks/results/$NAME-*.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
NAME=${NAME:-default-recipe}
RUNS=${RUNS:-runs}
ROUNDS=${ROUNDS:-11}
TRACES=${TRACES:-3}
STEPS=${STEPS:-1700}
BLOCK=${BLOCK:-1536}
TEMPERATURE=${TEMPERATURE:-0.5}
SWEEP=${SWEEP:-1}
SWEEP_STEPS=${SWEEP_STEPS:-600}
THRESHOLD=${THRESHOLD:-0.5}
STAR_PASSES=${STAR_PASSES:-0}
STAR_STEPS=${STAR_STEPS:-1000}
STAR_TEMPERATURE=${STAR_TEMPERATURE:-1.0}
WORKERS=${WORKERS:-1}
SEED=${SEED:-0}
BIN=${BIN:-.venv/bin}

"$BIN/qstar" train rft --rounds "$ROUNDS" --problems-per-round 384 --max-tokens-per-round 760000 \
    --eval-problems 50 --rules-warmup-steps 1200 --rules-fraction 0.25 --value-target lookahead \
    --position rope --seed "$SEED" --test --runs-dir "$RUNS" --name "$NAME-stage1"
stage1="$RUNS/$NAME-stage1/checkpoints/$(printf 'round-%04d' "$ROUNDS")"
if [ "$SWEEP" = 1 ]; then
    "$BIN/qstar" train sweep --init "$stage1" --out "$RUNS/$NAME-sweep" --steps "$SWEEP_STEPS" --seed "$SEED" \
        --workers "$WORKERS"
    stage1="$RUNS/$NAME-sweep"
fi
"$BIN/qstar" train distill --init "$stage1" --out "$RUNS/$NAME" --traces-per-problem "$TRACES" \
    --steps "$STEPS" --block-size "$BLOCK" --teacher-temperature "$TEMPERATURE" --value-threshold "$THRESHOLD" \
    --seed "$SEED" --eval-problems 0
student="$RUNS/$NAME"
mix=(--mix-traces "$student")
for pass in $(seq 1 "$STAR_PASSES"); do
    "$BIN/qstar" train distill --init "$student" --out "$RUNS/$NAME-star$pass" --teacher self \
        --teacher-temperature "$STAR_TEMPERATURE" --traces-per-problem 1 "${mix[@]}" --block-size "$BLOCK" \
        --steps "$STAR_STEPS" --lr 5e-4 --seed $((SEED + pass - 1)) --workers "$WORKERS" --eval-problems 0
    student="$RUNS/$NAME-star$pass"
    mix+=(--mix-traces "$student")
done
"$BIN/python" -m benchmarks.distill --init "$stage1" --out "$student" --report-only \
    --json "benchmarks/results/$NAME-distill.json"
"$BIN/python" -m benchmarks.generalization --model "$student" --model "$stage1" \
    --out "benchmarks/results/$NAME-generalization.json"
