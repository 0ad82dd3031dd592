#!/usr/bin/env bash
# Why the `vilg` binary runs node with --single-threaded-gc. Every tensor is a JS-owned ArrayBuffer, so the
# GC runs often; with a large heap (the trainer holds the prepared data set and its token shards) V8's
# parallel scavenger and concurrent marker keep helper threads busy that compete with the compute for the
# cores. This times the real trainer: `vilg train` for STEPS steps on a prepared shapes data set, under node's
# default GC and under --single-threaded-gc, alternating ROUNDS times; it prints each run's median seconds
# per step (steps 6..STEPS, after warm-up) and its process CPU time, then the medians' ratio (above 1: the
# flag is faster). A `vilg bench train` row (random data, small heap) shows no difference: see BENCHMARKS.md.
#   DATA (data/shapes; prepared with --count 10000 if missing)  TOK (models/tok-shapes-32-k1024)
#   SHARDS (encoded once into OUT/tokens if unset)  OUT (runs/bench-gc)  ROUNDS (2)  STEPS (16)
#   OMP_NUM_THREADS (1, as the training runs in RESULTS.md)  PARALLEL (1): trainers run at once per measurement (2 on
#   2 cores is how RESULTS.md's runs were trained: then no core is idle for the GC helpers); their medians are averaged
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/shapes} TOK=${TOK:-models/tok-shapes-32-k1024} OUT=${OUT:-runs/bench-gc} ROUNDS=${ROUNDS:-2} STEPS=${STEPS:-16} PARALLEL=${PARALLEL:-1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} VILG_GC_HINT=0
VILG=dist/src/cli/main.js
mkdir -p "$OUT"
[ -f "$DATA/dataset.json" ] || node --single-threaded-gc $VILG data prepare shapes --count 10000 --size 32 --out "$DATA"
[ -f "$DATA/tokenizer/vocab.txt" ] || cp -r models/vilg-shapes/tokenizer "$DATA/tokenizer" # the default model's vocabulary
if [ -z "${SHARDS:-}" ]; then
  SHARDS=$OUT/tokens
  [ -f "$SHARDS/.complete" ] || { node --single-threaded-gc $VILG data encode --data "$DATA" --tokenizer "$TOK" --out "$SHARDS"; touch "$SHARDS/.complete"; }
fi

one() { # label, node flags... → "s/step cpu_s" (means over PARALLEL trainers run at once)
  local label=$1; shift
  for ((j = 1; j <= PARALLEL; j++)); do trainer "$label-$j" "$@" & done
  wait
  for ((j = 1; j <= PARALLEL; j++)); do cat "$OUT/result-$label-$j"; done | awk '{s += $1; c += $2} END {printf "%.3f %.1f\n", s / NR, c / NR}'
}
trainer() { # label, node flags... → OUT/result-label: "s/step cpu_s"
  local label=$1; shift
  local run=$OUT/run-$label; rm -rf "$run"
  /usr/bin/time -f '%U %S' -o "$OUT/time-$label" node "$@" $VILG train --data "$DATA" --shards "$SHARDS" --tokenizer "$TOK" --out "$run" \
    --preset shapes-small --steps "$STEPS" --batch-size 8 --rec-batch 4 --sample-every 100000 --checkpoint-every 100000 --quiet >/dev/null 2>"$OUT/log-$label"
  node -e '
    const fs = require("fs");
    const r = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((m) => "t2i" in m);
    const dt = r.slice(5).map((m, i) => m.time - r[i + 4].time).sort((a, b) => a - b);
    const [u, s] = fs.readFileSync(process.argv[2], "utf8").trim().split(/\s+/).map(Number);
    process.stdout.write(`${dt[dt.length >> 1].toFixed(3)} ${(u + s).toFixed(1)}\n`);' "$run/metrics.jsonl" "$OUT/time-$label" > "$OUT/result-$label"
}
default=() single=()
for ((i = 1; i <= ROUNDS; i++)); do
  read -r a ca < <(one default); read -r b cb < <(one single --single-threaded-gc)
  default+=("$a"); single+=("$b")
  echo "round $i: default GC $a s/step (process CPU $ca s), --single-threaded-gc $b s/step (process CPU $cb s)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
md=$(median "${default[@]}") ms=$(median "${single[@]}")
echo "{\"data\":\"$DATA\",\"parallel\":$PARALLEL,\"steps\":$STEPS,\"omp_threads\":\"$OMP_NUM_THREADS\",\"rounds\":$ROUNDS,\"default_gc_s_per_step\":$md,\"single_threaded_gc_s_per_step\":$ms,\"ratio\":$(awk -v a="$md" -v b="$ms" 'BEGIN{printf "%.3f", a/b}')}"
