#!/usr/bin/env bash
# Issue 15's measurements: a model split into 2 pipeline stages (mpirun, TCP on loopback)
# against one process, on the TinyLlama-1.1B-shape Q4_0 file (bench/make-models.sh).
#   1. single-stream decode: `hearth generate` with 1 thread vs 2 ranks of 1 thread each;
#   2. 4 concurrent streams (`hearth bench serve`): one daemon with 2 threads vs
#      `serve --pipeline` with 2 ranks of 1 thread each (micro-batches in flight);
#   3. each rank's peak RSS against one process's.
# Rounds alternate A and B so drift on a shared machine hits both alike.
#   bench/pipeline-bench.sh MODEL.gguf [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: bench/pipeline-bench.sh MODEL.gguf [ROUNDS]}
ROUNDS=${2:-3}
HEARTH=${HEARTH:-build/hearth}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --bind-to none --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo -np 2)
PROMPT="1 450 4996 338 263 931 29892 727 471 263"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${PID:-}" ] && kill -- -"$PID" 2>/dev/null; true' EXIT

quiet() {  # never time beside a compiler or while another session asked for quiet
  while pgrep -x cc1plus >/dev/null || [ -e /tmp/hearth-quiet ]; do sleep 5; done
}

echo "== single-stream decode, 64 tokens (tok/s)"
for r in $(seq 1 "$ROUNDS"); do
  quiet
  a=$(/usr/bin/time -f "%M" -o "$tmp/rss1" "$HEARTH" generate -m "$MODEL" --prompt-ids "$PROMPT" -n 64 --temp 0 --ids -t 1 2>&1 >"$tmp/ids1" |
      sed -n 's/^generation: .*(\([0-9.]*\) tok\/s).*/\1/p')
  quiet
  b=$("${MPIRUN[@]}" /usr/bin/time -f "rss %M" "$HEARTH" generate --pipeline -m "$MODEL" --prompt-ids "$PROMPT" -n 64 --temp 0 \
      --ids -t 1 2>"$tmp/err2" >"$tmp/ids2"; sed -n 's/^generation: .*(\([0-9.]*\) tok\/s).*/\1/p' "$tmp/err2")
  same=$(cmp -s "$tmp/ids1" "$tmp/ids2" && echo identical || echo DIFFERENT)
  echo "round $r: one process 1 thread $a | 2 ranks x 1 thread $b | ids $same"
done
echo "peak RSS (KB): one process $(cat "$tmp/rss1"); ranks: $(grep -o 'rss [0-9]*' "$tmp/err2" | tr '\n' ' ')"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
serve_run() {  # tag, then the command prefix; prints bench serve's table row for concurrency 4
  local tag=$1 p
  shift
  p=$(port)
  mkdir -p "$tmp/models"
  ln -sf "$(realpath "$MODEL")" "$tmp/models/bench.gguf"
  HEARTH_HOST=127.0.0.1:$p HEARTH_MODELS=$tmp/store HEARTH_NUM_PARALLEL=4 setsid "$@" serve --models-dir "$tmp/models" \
    ${PIPE_FLAG:-} >"$tmp/serve-$tag.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$p/" >/dev/null && break; sleep 0.2; done
  # One warm-up request loads the model; then the measured run.
  "$HEARTH" bench serve --url "http://127.0.0.1:$p" -m bench --concurrency 1 --requests 1 --prompt-len 16 --gen-len 4 \
    --seed 1 --temperature 0 >/dev/null
  quiet
  "$HEARTH" bench serve --url "http://127.0.0.1:$p" -m bench --concurrency 4 --requests 16 --prompt-len 64 --gen-len 64 \
    --seed 1 --temperature 0 | grep -E '^\|? *4 ' || true
  kill -- -"$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
}
echo "== 4 concurrent streams (hearth bench serve: 16 requests, 64 prompt + 64 generated tokens)"
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r: one daemon, 2 threads:"
  HEARTH_NUM_THREADS=2 PIPE_FLAG= serve_run one "$HEARTH"
  echo "round $r: serve --pipeline, 2 ranks x 1 thread:"
  HEARTH_NUM_THREADS=1 PIPE_FLAG=--pipeline serve_run pipe "${MPIRUN[@]}" "$HEARTH"
done
