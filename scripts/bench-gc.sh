#!/usr/bin/env bash
# Why the `vilg` binary runs node with --single-threaded-gc: V8's parallel scavenger and concurrent marker
# start helper threads that compete with the compute for the cores (the engine allocates every tensor as
# a JS-owned ArrayBuffer, so the GC runs often). This times `vilg bench train` (the small case: emoji-small,
# fp32, sparse attention, no PyTorch) under node's default GC and under --single-threaded-gc, alternating,
# and prints each side's ms per training step, the medians, and their ratio (above 1: the flag is faster).
#   ROUNDS (3) alternations; CASE ("small emoji-small fp32 sparse") the bench train row; OMP_NUM_THREADS as set.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} CASE=${CASE:-small emoji-small fp32 sparse}
one() { # node flags... → ms per step of the case
  node "$@" dist/src/cli/main.js bench train --json --no-torch --rounds 3 --steps 3 --filter "$CASE" 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>{const r=s.trim().split("\n").map((l)=>JSON.parse(l));process.stdout.write(String(r[0].ms))})'
}
default=() single=()
for ((i = 1; i <= ROUNDS; i++)); do
  a=$(one); b=$(one --single-threaded-gc)
  default+=("$a"); single+=("$b")
  echo "round $i: default GC $a ms/step, --single-threaded-gc $b ms/step"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
md=$(median "${default[@]}") ms=$(median "${single[@]}")
echo "{\"case\":\"$CASE\",\"omp_threads\":\"${OMP_NUM_THREADS:-default}\",\"rounds\":$ROUNDS,\"default_gc_ms\":$md,\"single_threaded_gc_ms\":$ms,\"ratio\":$(awk -v a="$md" -v b="$ms" 'BEGIN{printf "%.3f", a/b}')}"
