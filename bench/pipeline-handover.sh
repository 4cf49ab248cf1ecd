#!/usr/bin/env bash
# Issue 15's hand-over and single-stream measurements (bench/README.md, "A model across
# machines", session 8): `dev comm-bench` with and without the predicted wait, then
# single-stream decode of one process (1 thread) against 2 ranks of 1 thread, alternated, with
# each rank's stats (rank 0's wait minus rank 1's compute = both hops' hand-over), and the
# greedy ids over 3 ranks. Run it on a quiet machine.
#   bench/pipeline-handover.sh MODEL.gguf [ROUNDS]
set -uo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: bench/pipeline-handover.sh MODEL.gguf [ROUNDS]}
ROUNDS=${2:-3}
H=${HEARTH:-build/hearth}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MP=(mpirun --oversubscribe --bind-to none --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
P="1 450 4996 338 263 931 29892 727 471 263"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lscpu | grep "Model name"
echo "== dev comm-bench (both ranks compute 25 ms per round)"
for i in $(seq 1 "$ROUNDS"); do
  for pr in 0 1; do
    echo "predict=$pr: $("${MP[@]}" -np 2 -x HEARTH_PIPELINE_PREDICT=$pr "$H" dev comm-bench --rounds 40 | cut -d: -f3)"
  done
done
stats() { python3 -c '
import re, sys
t = sys.stdin.read()
w = float(re.search(r"rank 0 waited .*?\(([0-9.]+) ms each", t).group(1))
c = float(re.search(r"rank 1 ran .*?\(([0-9.]+) ms each", t).group(1))
g = re.search(r"generation: .*\(([0-9.]+) tok/s", t).group(1)
print(f"{g} tok/s, both hops {w - c:.3f} ms")'; }
echo "== single-stream decode, 64 tokens"
for i in $(seq 1 "$ROUNDS"); do
  a=$("$H" generate -m "$MODEL" --prompt-ids "$P" -n 64 --temp 0 --ids -t 1 2>&1 >"$tmp/ids1" | grep -o '([0-9.]* tok/s)' | tail -1)
  row="round $i: one process $a"
  for pr in 0 1; do
    b=$(HEARTH_PIPELINE_STATS=1 "${MP[@]}" -x HEARTH_PIPELINE_STATS -x HEARTH_PIPELINE_PREDICT=$pr -np 2 "$H" generate --pipeline \
        -m "$MODEL" --prompt-ids "$P" -n 64 --temp 0 --ids -t 1 2>&1 >"$tmp/ids2" | stats)
    row="$row | 2 ranks, predict=$pr: $b ($(cmp -s "$tmp/ids1" "$tmp/ids2" && echo ids identical || echo ids DIFFERENT))"
  done
  echo "$row"
done
want=$("$H" generate -m "$MODEL" --prompt-ids "$P" -n 32 --temp 0 --ids -t 1 2>/dev/null)
got=$("${MP[@]}" -np 3 "$H" generate --pipeline -m "$MODEL" --prompt-ids "$P" -n 32 --temp 0 --ids -t 1 2>"$tmp/err")
echo "3 ranks ($(grep -o 'layers .*' "$tmp/err")): $([ "$want" = "$got" ] && echo ids identical || echo ids DIFFERENT)"
