#!/usr/bin/env bash
# The paper's comparisons at small scale (issue 7, RESULTS.md "Ablations"): five generators trained on the same
# data, steps, batch, learning-rate schedule and seed, differing in one thing each, then evaluated alike.
#
#   joint      L_t2i + L_i2t + L_vqa, end-to-end (z_emb → decoder), sparse attention: the reference
#   two-stage  as joint, but the decoder is the frozen tokenizer's (comparison 1)
#   t2i-only   L_t2i (+ the end-to-end reconstruction) only (comparison 2)
#   i2t-only   L_i2t + L_vqa only: the image → text direction, no decoder (comparison 2)
#   dense      as joint, with plain UniLM masks instead of row/column/conv attention (comparison 3)
#   joint + rerank: the joint model's images picked best of 4 by log P(prompt | image) (comparison 4)
#
# Usage: scripts/ablations.sh [train|eval|table|all]   (default all; each phase skips finished work)
# Environment: STEPS (400) BATCH (8) REC_BATCH (4) N test scenes (300) RERANK candidates (4) JOBS parallel runs (2)
#              OUT (runs/ablations) DATA (data/shapes) TOK (models/tok-shapes-32). Runs use OMP_NUM_THREADS=1 each.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-400} BATCH=${BATCH:-8} REC_BATCH=${REC_BATCH:-4} N=${N:-300} RERANK=${RERANK:-4} JOBS=${JOBS:-2}
OUT=${OUT:-runs/ablations} DATA=${DATA:-data/shapes} TOK=${TOK:-models/tok-shapes-32}
VILG="node --single-threaded-gc dist/src/cli/main.js"   # the GC flag: see src/cli/main.ts
export OMP_NUM_THREADS=1
mkdir -p "$OUT"

# name | extra train flags | eval tasks  (longest first: two parallel workers finish together)
VARIANTS=(
  "joint||t2i,i2t,vqa"
  "dense|--attention dense|t2i,i2t,vqa"
  "two-stage|--mode two-stage|t2i,i2t,vqa"
  "t2i-only|--w-i2t 0 --w-vqa 0|t2i"
  "i2t-only|--w-t2i 0 --mode two-stage|i2t,vqa"
)

encode() { # every run reads one set of token shards (encoding takes a minute or two)
  [ -f "$OUT/tokens/.complete" ] && return 0
  $VILG data encode --data "$DATA" --tokenizer "$TOK" --out "$OUT/tokens"
  touch "$OUT/tokens/.complete"
}

train_one() {
  local name=$1 flags=$2
  [ -f "$OUT/$name/model/model.safetensors" ] && [ -f "$OUT/$name/.done" ] && return 0
  local rc=0
  # shellcheck disable=SC2086
  $VILG train --data "$DATA" --tokenizer "$TOK" --shards "$OUT/tokens" --out "$OUT/$name" --preset shapes-small \
    --steps "$STEPS" --batch-size "$BATCH" --rec-batch "$REC_BATCH" --sample-every "$STEPS" --checkpoint-every 100 \
    --seed 0 --quiet $flags >> "$OUT/$name.train.log" 2>&1 || rc=$?
  # a SIGTERM'd run checkpoints and exits 143: only a finished one is done (a rerun resumes the other)
  [ "$rc" -eq 0 ] || { echo "ablations: $name stopped early (exit $rc; see $OUT/$name.train.log)" >&2; return 1; }
  touch "$OUT/$name/.done"
}

eval_one() {
  local name=$1 tasks=$2 extra=${3:-} dir=${4:-$1}
  [ -f "$OUT/$dir/eval/eval.json" ] && return 0
  mkdir -p "$OUT/$dir"
  # shellcheck disable=SC2086
  $VILG eval --model "$OUT/$name/model" --data "$DATA" --split test --n "$N" --tasks "$tasks" --beams 4 \
    --out "$OUT/$dir/eval" --quiet $extra > "$OUT/$dir.eval.log" 2>&1
}

export -f train_one eval_one
export VILG DATA TOK OUT STEPS BATCH REC_BATCH N

job() { # one variant: train (phase train/all), evaluate (phase eval/all); "rerank" evaluates joint's model again
  local phase=$1 name flags tasks
  IFS="|" read -r name flags tasks <<< "$2"
  if [ "$flags" = rerank ]; then
    [ "$phase" = train ] && return 0
    [ -f "$OUT/joint/.done" ] || { echo "ablations: joint is not trained yet; rerank evaluates its model" >&2; return 1; }
    eval_one joint t2i "--rerank $RERANK" joint-rerank
    return
  fi
  [ "$phase" = eval ] || train_one "$name" "$flags"
  [ "$phase" = train ] || eval_one "$name" "$tasks"
}
export -f job
export RERANK

phase=${1:-all}
case "$phase" in
  train|eval|all)
    [ "$phase" = eval ] || encode
    { printf '%s\n' "${VARIANTS[@]}"; echo "joint-rerank|rerank|t2i"; } | xargs -P "$JOBS" -I{} bash -c "job $phase '{}'"
    ;;
  table) ;;
  *) echo "usage: scripts/ablations.sh [train|eval|table|all]" >&2; exit 2 ;;
esac
if [ "$phase" = table ] || [ "$phase" = all ]; then
  $VILG compare --out "$OUT/ablations.md" "$OUT"/joint/eval "$OUT"/dense/eval "$OUT"/two-stage/eval "$OUT"/t2i-only/eval \
    "$OUT"/i2t-only/eval "$OUT"/joint-rerank/eval
fi
