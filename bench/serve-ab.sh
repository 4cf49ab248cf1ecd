#!/usr/bin/env bash
# Alternated A/B runs of two daemons under `hearth bench serve` (the HTTP layer's streaming
# overhead: per-token throughput and time to first token). Each round starts daemon A, runs
# the client, stops it, then the same for B; the best value of each is kept. The client is
# always CLIENT's `bench serve`, so only the servers differ.
# Usage: bench/serve-ab.sh "A_HEARTH" "B_HEARTH" CLIENT_HEARTH ROUNDS MODEL_FILE "BENCH SERVE ARGS"
#   bench/serve-ab.sh /tmp/hearth-old build/hearth build/hearth 3 tinyllama-q4_0.gguf "--concurrency 1 8 --requests 16"
set -euo pipefail
[ $# -eq 6 ] || { sed -n 2,7p "$0" >&2; exit 2; }
a=$1 b=$2 client=$3 rounds=$4 model=$5 args=$6
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
pid=""
mkdir -p "$work/models"
ln -s "$(realpath "$model")" "$work/models/"
name=$(basename "$model" .gguf)
port=$((20000 + RANDOM % 20000))
for ((r = 1; r <= rounds; r++)); do
  for side in A B; do
    bin=$a
    [ "$side" = B ] && bin=$b
    HEARTH_HOST="127.0.0.1:$port" HEARTH_MODELS="$work/store" "$bin" serve --models-dir "$work/models" >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/api/version" >/dev/null && break; sleep 0.1; done
    # One warm-up request loads the model; it is not measured.
    curl -sf "http://127.0.0.1:$port/api/generate" -d "{\"model\":\"$name\",\"prompt\":\"hi\",\"stream\":false,\"options\":{\"num_predict\":1}}" >/dev/null
    echo "round $r: $side" >&2
    # shellcheck disable=SC2086
    "$client" bench serve --url "http://127.0.0.1:$port" -m "$name" $args --seed 1 -o json |
      python3 -c 'import json,sys; [print(json.dumps(dict(r, side=sys.argv[1]))) for r in json.load(sys.stdin)]' "$side" >>"$work/out"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=""
  done
done
python3 - "$work/out" "$a" "$b" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = {}
for r in rows:
    k = (r["concurrency"], r["side"])
    b = best.setdefault(k, {"tps": 0.0, "ttft": float("inf")})
    b["tps"] = max(b["tps"], r["output_tokens_per_s"])
    b["ttft"] = min(b["ttft"], r["p50_ttft_ms"])
print(f"A = {sys.argv[2]}\nB = {sys.argv[3]}")
print(f"{'conc':>5} {'A out tok/s':>12} {'B out tok/s':>12} {'B/A':>6} {'A TTFT p50':>11} {'B TTFT p50':>11}")
for c in sorted({k[0] for k in best}):
    a, b = best[(c, "A")], best[(c, "B")]
    print(f"{c:>5} {a['tps']:>12.1f} {b['tps']:>12.1f} {b['tps'] / a['tps']:>6.3f} {a['ttft']:>9.2f}ms {b['ttft']:>9.2f}ms")
PY
