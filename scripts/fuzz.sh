#!/usr/bin/env bash
# Runs the libFuzzer targets (fuzz/fuzz_*.cpp) of the "fuzz" preset (clang, ASan+UBSan).
#
# Usage: scripts/fuzz.sh TARGET|all|TARGET,TARGET,... SECONDS
#   TARGET: gguf, template, tool_calls, modelfile or api_json (or its fuzz_ name): built, then
#           run for SECONDS with libFuzzer's output on the terminal.
#   all, or a comma-separated list: builds those targets once, then runs each for SECONDS,
#           FUZZ_JOBS (default 2) at a time, logging to build-fuzz/fuzz-TARGET.log; prints
#           each run's numbers and, for a run with a finding, the tail of its log.
# Exits non-zero when libFuzzer reports a finding (crash, sanitizer report, timeout, leak).
#
# Corpora accumulate in build-fuzz/corpus-TARGET; findings land in build-fuzz/artifacts-TARGET/.
# Seeds: gguf's are written by seedgen_gguf; the others come from fuzz/seeds/TARGET/ plus real
# inputs made at run time from ../shared (HEARTH_SHARED_DIR): the chat templates, Modelfiles
# wrapping them, their expected renderings (model output with tool calls) and conversations.
# fuzz/dict/TARGET.dict is passed as the libFuzzer dictionary when present.
# JOBS=N sets the build parallelism (default 2); FUZZ_BUILD_DIR another build folder than
# build-fuzz (configured with the same preset).
set -euo pipefail

usage() {
    echo "usage: $0 gguf|template|tool_calls|modelfile|api_json|all|TARGET,TARGET,... SECONDS" >&2
    exit 2
}
[[ $# -eq 2 && $2 =~ ^[0-9]+$ ]] || usage
cd "$(dirname "$0")/.."
ALL_TARGETS=(template tool_calls api_json modelfile gguf)
seconds=$2
shared=${HEARTH_SHARED_DIR:-../shared}
out=${FUZZ_BUILD_DIR:-build-fuzz}

if [[ $1 == all ]]; then
    targets=("${ALL_TARGETS[@]}")
else
    targets=()
    IFS=, read -ra names <<< "$1"
    for t in "${names[@]}"; do
        t=${t#fuzz_}
        [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || usage
        targets+=("$t")
    done
    (( ${#targets[@]} > 0 )) || usage
fi

build() {
    local names=()
    for t in "$@"; do names+=("fuzz_$t"); done
    [[ " $* " == *" gguf "* ]] && names+=(seedgen_gguf)
    cmake --preset fuzz -B "$out" >/dev/null
    cmake --build "$out" --target "${names[@]}" -j "${JOBS:-2}"
}

max_len() {
    case $1 in
        gguf) echo 65536 ;;
        tool_calls) echo 8192 ;;
        *) echo 16384 ;;
    esac
}

# Writes the seed corpus of target $1 into directory $2.
seed() {
    local t=$1 dir=$2 f name
    mkdir -p "$dir"
    if [[ $t == gguf ]]; then
        "$out/seedgen_gguf" "$dir"
        return
    fi
    [[ -d fuzz/seeds/$t ]] && cp fuzz/seeds/"$t"/* "$dir"/
    [[ -d $shared/templates ]] || return 0
    case $t in
        template)
            for f in "$shared"/templates/*/template.jinja; do
                name=$(basename "$(dirname "$f")")
                cp "$f" "$dir/shared-$name.jinja"
            done ;;
        modelfile)  # each template as a Modelfile's TEMPLATE (where """ does not occur in it)
            for f in "$shared"/templates/*/template.jinja; do
                grep -q '"""' "$f" && continue
                name=$(basename "$(dirname "$f")")
                { printf 'FROM ./%s.gguf\nTEMPLATE """' "$name"; cat "$f"
                  printf '"""\nPARAMETER stop "<|im_end|>"\nPARAMETER temperature 0.6\nSYSTEM You are %s.\n' "$name"
                } > "$dir/shared-$name.Modelfile"
            done ;;
        tool_calls)  # renderings of tool-call turns, each after a control byte ('0': any tool)
            for f in "$shared"/templates/*/expected/{tool_call,parallel_tool_calls,tool_call_string_args,reasoning_history}.txt; do
                [[ -f $f ]] || continue
                name=$(basename "$(dirname "$(dirname "$f")")")-$(basename "$f" .txt)
                { printf 0; cat "$f"; } > "$dir/shared-$name.txt"
            done ;;
        api_json)  # the shared conversations (messages, tools) are chat request bodies
            for f in "$shared"/templates/cases/*.json; do
                cp "$f" "$dir/shared-$(basename "$f")"
            done ;;
    esac
}

# Runs target $1 for $seconds; libFuzzer's output goes to stdout.
run() {
    local t=$1 corpus=$out/corpus-$1 artifacts=$out/artifacts-$1 dict=()
    mkdir -p "$artifacts"
    seed "$t" "$corpus"
    [[ -f fuzz/dict/$t.dict ]] && dict=(-dict="fuzz/dict/$t.dict")
    "$out/fuzz_$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 "${dict[@]}" \
        -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus"
}

if [[ $1 != all && $1 != *,* ]]; then
    build "${targets[0]}"
    run "${targets[0]}"
    exit
fi

mkdir -p "$out"
if ! build "${targets[@]}" > "$out/fuzz-build.log" 2>&1; then
    tail -n 40 "$out/fuzz-build.log"
    echo "fuzz: the build failed (log: $out/fuzz-build.log)"
    exit 1
fi

# Several targets, FUZZ_JOBS at a time.
jobs_max=${FUZZ_JOBS:-2}
for t in "${targets[@]}"; do rm -f "$out/fuzz-$t.status"; done
for t in "${targets[@]}"; do
    while (( $(jobs -rp | wc -l) >= jobs_max )); do wait -n || true; done
    ( if run "$t" > "$out/fuzz-$t.log" 2>&1; then echo 0; else echo 1; fi > "$out/fuzz-$t.status" ) &
done
wait
failed=0
for t in "${targets[@]}"; do
    log=$out/fuzz-$t.log
    if [[ $(cat "$out/fuzz-$t.status" 2>/dev/null) == 0 ]]; then
        printf '%-11s %s runs, %s exec/s, cov %s, corpus %s\n' "$t" \
            "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")" \
            "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")" \
            "$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)" \
            "$(grep -oE 'corp: [0-9]+/[0-9A-Za-z]+' "$log" | tail -n 1 | cut -d' ' -f2)"
    else
        failed=1
        echo "---- fuzz_$t: libFuzzer reported a finding (log: $log; input in $out/artifacts-$t/)"
        tail -n 60 "$log"
    fi
done
exit "$failed"
