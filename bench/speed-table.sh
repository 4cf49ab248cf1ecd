#!/usr/bin/env bash
# The speed issue's table, measured the way the issue asks on shared VMs whose speed moves by
# ±20% within minutes: every type is run ROUNDS times, alternating types, and the best pp and
# the best tg of each are kept, each tg with the read bandwidth measured in that same run.
# Usage: bench/speed-table.sh MODEL_DIR [ROUNDS] [THREADS]   (models from bench/make-models.sh)
# Needs python3 to aggregate the JSON that `hearth bench -o json` prints.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: bench/speed-table.sh MODEL_DIR [ROUNDS] [THREADS]}
rounds=${2:-3}
threads=${3:-2}
hearth=build/hearth
[ -x "$hearth" ] || { echo "build first: make build" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for t in f16 q8_0 q4_0 q4_K_M; do
    echo "round $r: $t" >&2
    "$hearth" bench -m "$dir/tinyllama-1.1b-$t.gguf" -p 128 -n 64 -r 3 -t "$threads" -o json >>"$out"
  done
  for t in q4_0 q4_K_M; do
    echo "round $r: $t at depth 2048" >&2
    "$hearth" bench -m "$dir/tinyllama-1.1b-$t.gguf" -p 128 -n 32 -d 2048 -r 1 -t "$threads" -o json >>"$out"
  done
done
python3 - "$out" <<'PY'
import json, sys, os
text = open(sys.argv[1]).read()
dec, i, rows = json.JSONDecoder(), 0, []
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    arr, i = dec.raw_decode(text, i)
    rows += arr
best = {}
for r in rows:
    t = os.path.basename(r["model_filename"]).removeprefix("tinyllama-1.1b-").removesuffix(".gguf")
    kind = ("pp" if r["n_prompt"] else "tg") + ("@d" if r["n_depth"] else "")
    key = (t, kind)
    if key not in best or r["avg_ts"] > best[key]["avg_ts"]:
        best[key] = r
print("| type | pp128 | tg64 | read BW in that tg run | tg64 / limit |")
print("| --- | ---: | ---: | ---: | ---: |")
for t in ["f16", "q8_0", "q4_0", "q4_K_M"]:
    pp, tg = best.get((t, "pp")), best.get((t, "tg"))
    if not pp or not tg:
        continue
    bw = tg.get("read_bandwidth_gbs", 0)
    frac = tg.get("fraction_of_limit", 0)
    print(f"| {t} | {pp['avg_ts']:.1f} | {tg['avg_ts']:.1f} | {bw:.1f} GB/s | {100 * frac:.0f}% |")
print()
print("| type | pp128 @ d2048 | tg32 @ d2048 |")
print("| --- | ---: | ---: |")
for t in ["q4_0", "q4_K_M"]:
    pp, tg = best.get((t, "pp@d")), best.get((t, "tg@d"))
    if pp and tg:
        print(f"| {t} | {pp['avg_ts']:.1f} | {tg['avg_ts']:.1f} |")
PY
