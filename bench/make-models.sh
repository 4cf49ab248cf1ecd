#!/usr/bin/env bash
# Makes the synthetic TinyLlama-1.1B-shape benchmark models: an F16 file from
# `hearth dev make-model`, then every quantized type from `hearth quantize`.
# Usage: bench/make-models.sh [OUT_DIR] [TYPES...]   (default: ./bench-models, all types)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-models}
shift || true
types=("$@")
[ ${#types[@]} -eq 0 ] && types=(f16 bf16 q8_0 q6_K q5_K_M q5_K_S q5_1 q5_0 q4_K_M q4_K_S q4_1 q4_0 q3_K_M q3_K_S q2_K)
mkdir -p "$out"
hearth=build/hearth
[ -x "$hearth" ] || { echo "build first: make build" >&2; exit 1; }
base="$out/tinyllama-1.1b-f16.gguf"
if [ ! -f "$base" ]; then
  "$hearth" dev make-model "$base" --preset tinyllama-1.1b --type f16 --seed 1 \
    --vocab ../shared/vocab/ggml-vocab-llama-spm.gguf
fi
for t in "${types[@]}"; do
  [ "$t" = f16 ] && continue
  f="$out/tinyllama-1.1b-$t.gguf"
  [ -f "$f" ] || "$hearth" quantize "$base" "$f" "$t"
done
ls -l "$out"
