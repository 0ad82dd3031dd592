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
VILG="node dist/src/cli/main.js"
export OMP_NUM_THREADS=1
mkdir -p "$OUT"

# name | extra train flags | eval tasks
VARIANTS=(
  "joint||t2i,i2t,vqa"
  "two-stage|--mode two-stage|t2i,i2t,vqa"
  "t2i-only|--w-i2t 0 --w-vqa 0|t2i"
  "i2t-only|--w-t2i 0 --mode two-stage|i2t,vqa"
  "dense|--attention dense|t2i,i2t,vqa"
)

encode() { # every run reads one set of token shards (encoding takes a minute or two)
  [ -f "$OUT/tokens/.complete" ] && return 0
  $VILG data encode --data "$DATA" --tokenizer "$TOK" --out "$OUT/tokens"
  touch "$OUT/tokens/.complete"
}

train_one() {
  local name=$1 flags=$2
  [ -f "$OUT/$name/model/model.safetensors" ] && [ -f "$OUT/$name/.done" ] && return 0
  # shellcheck disable=SC2086
  $VILG train --data "$DATA" --tokenizer "$TOK" --shards "$OUT/tokens" --out "$OUT/$name" --preset shapes-small \
    --steps "$STEPS" --batch-size "$BATCH" --rec-batch "$REC_BATCH" --sample-every "$STEPS" --checkpoint-every 100 \
    --seed 0 --quiet $flags > "$OUT/$name.train.log" 2>&1
  touch "$OUT/$name/.done"
}

eval_one() {
  local name=$1 tasks=$2 extra=${3:-} dir=${4:-$1}
  [ -f "$OUT/$dir/eval/eval.json" ] && return 0
  # shellcheck disable=SC2086
  $VILG eval --model "$OUT/$name/model" --data "$DATA" --split test --n "$N" --tasks "$tasks" --beams 4 \
    --out "$OUT/$dir/eval" --quiet $extra > "$OUT/$dir.eval.log" 2>&1
}

export -f train_one eval_one
export VILG DATA TOK OUT STEPS BATCH REC_BATCH N

phase=${1:-all}
if [ "$phase" = train ] || [ "$phase" = all ]; then
  encode
  printf '%s\n' "${VARIANTS[@]}" | xargs -P "$JOBS" -I{} bash -c 'IFS="|" read -r n f t <<< "{}"; train_one "$n" "$f"'
fi
if [ "$phase" = eval ] || [ "$phase" = all ]; then
  { printf '%s\n' "${VARIANTS[@]}"; echo "joint|rerank|t2i"; } | xargs -P "$JOBS" -I{} bash -c '
    IFS="|" read -r n f t <<< "{}"
    if [ "$f" = rerank ]; then mkdir -p "$OUT/joint-rerank"; eval_one joint t2i "--rerank '"$RERANK"'" joint-rerank; else eval_one "$n" "$t"; fi'
fi
if [ "$phase" = table ] || [ "$phase" = all ]; then
  $VILG compare --out "$OUT/ablations.md" "$OUT"/joint/eval "$OUT"/two-stage/eval "$OUT"/t2i-only/eval \
    "$OUT"/i2t-only/eval "$OUT"/dense/eval "$OUT"/joint-rerank/eval
  cat "$OUT/ablations.md"
fi
