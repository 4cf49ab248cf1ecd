#!/usr/bin/env bash
# Fuzz the GGUF reader with libFuzzer: configure and build the "fuzz" preset (clang,
# ASan+UBSan), write the crafted seed corpus, then run fuzz_gguf for SECONDS.
# New inputs accumulate in build-fuzz/corpus-gguf; crashes land in build-fuzz/artifacts-gguf/.
# Exits non-zero when libFuzzer reports a finding.
# Usage: scripts/fuzz-gguf.sh SECONDS   (JOBS=N sets the build parallelism, default 2)
set -euo pipefail

if [[ $# -ne 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 SECONDS" >&2
    exit 2
fi
seconds=$1
cd "$(dirname "$0")/.."

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target fuzz_gguf seedgen_gguf -j "${JOBS:-2}"

corpus=build-fuzz/corpus-gguf
artifacts=build-fuzz/artifacts-gguf
mkdir -p "$corpus" "$artifacts"
build-fuzz/seedgen_gguf "$corpus"

exec build-fuzz/fuzz_gguf -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus"
