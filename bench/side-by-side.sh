#!/usr/bin/env bash
# Alternated side-by-side runs of two llama-bench-compatible programs on the same models, the
# way speed claims are made here (shared VMs drift by ±20% within minutes): for each round,
# each model is run by A, then by B; the best pp and tg of each program are kept, and B/A is
# printed. A and B may be two Hearth binaries (a before/after comparison) or Hearth and
# llama.cpp's llama-bench. The bandwidth columns come from Hearth's JSON (A's when it has
# them): read bandwidth in that run, the bytes decode reads per token (a MoE model reads only
# its routed experts) and tg as a share of bandwidth / bytes per token.
# Usage: bench/side-by-side.sh "A COMMAND" "B COMMAND" ROUNDS "BENCH ARGS" MODEL...
#   bench/side-by-side.sh "build/hearth bench" /tmp/llama-ref/llama.cpp/build/bin/llama-bench 3 "-p 128 -n 64 -r 2 -t 2" m.gguf
set -euo pipefail
[ $# -ge 5 ] || { sed -n 2,11p "$0" >&2; exit 2; }
a=$1 b=$2 rounds=$3 args=$4
shift 4
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for m in "$@"; do
    for side in A B; do
      bin=$a
      [ "$side" = B ] && bin=$b
      echo "round $r: $side $(basename "$m")" >&2
      # shellcheck disable=SC2086
      $bin -m "$m" $args -o json 2>/dev/null | python3 -c 'import json,sys; [print(json.dumps(dict(r, side=sys.argv[1]))) for r in json.load(sys.stdin)]' "$side" >>"$out"
    done
  done
done
python3 - "$out" "$a" "$b" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = {}
for r in rows:
    kind = (f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}") + (f"@d{r['n_depth']}" if r.get("n_depth") else "")
    key = (os.path.basename(r["model_filename"]), kind, r["side"])
    if key not in best or r["avg_ts"] > best[key]["avg_ts"]:
        best[key] = r
print(f"A = {sys.argv[2]}, B = {sys.argv[3]}; best of the alternated rounds, tokens/s")
print()
print("| model | test | A | B | A / B | read BW (A's run) | GB read per token | A / limit |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for (m, kind, side) in sorted(k for k in best if k[2] == "A"):
    ra, rb = best[(m, kind, "A")], best.get((m, kind, "B"))
    b = f"{rb['avg_ts']:.1f}" if rb else "-"
    ratio = f"{ra['avg_ts'] / rb['avg_ts']:.2f}x" if rb else "-"
    bw = f"{ra['read_bandwidth_gbs']:.1f} GB/s" if "read_bandwidth_gbs" in ra else ""
    gb = f"{ra['bytes_read_per_token'] / 1e9:.3f}" if "bytes_read_per_token" in ra else ""
    frac = f"{100 * ra['fraction_of_limit']:.0f}%" if "fraction_of_limit" in ra else ""
    print(f"| {m} | {kind} | {ra['avg_ts']:.1f} | {b} | {ratio} | {bw} | {gb} | {frac} |")
PY
