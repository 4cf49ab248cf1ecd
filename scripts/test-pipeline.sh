#!/usr/bin/env bash
# CTest pipeline_mpi: a model split into pipeline stages under mpirun (src/cluster/pipeline_*).
# Greedy ids through 2 ranks (stories260K and every shared synthetic decoder model) and 3 ranks
# (stories260K) must equal one process's, token for token; only rank 0 may print. Then
# `hearth serve --pipeline` against one daemon, its watchdog, the supervisor, kill -9 of a stage under
# load, the split by each rank's HEARTH_MAX_MEMORY, and the group as one node in etcd
# (scripts/pipeline-serve-check.py). Ranks talk
# over TCP (--mca btl tcp,self), as between machines. Exits 77 (skipped) without mpirun or
# without an MPI build of hearth.
#   scripts/test-pipeline.sh path/to/hearth
set -uo pipefail

HEARTH=${1:?usage: test-pipeline.sh path/to/hearth}
SHARED=${HEARTH_SHARED_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
if ! command -v mpirun >/dev/null 2>&1; then
  echo "test-pipeline: mpirun not found (apt-get install openmpi-bin libopenmpi-dev): skipped"
  exit 77
fi
if [ "${HEARTH_MPI:-ON}" = "OFF" ]; then
  echo "test-pipeline: hearth was built without MPI: skipped"
  exit 77
fi
# mpirun refuses root unless told; CI runs as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# No stray daemons or shared-memory transports: TCP on loopback only.
MPIRUN=(timeout 60 mpirun --oversubscribe --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
PROMPT="1 403 407 261 378 300 290 274 313"
N=24
fail=0
checked=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run_one() {  # model ranks [split]
  local model=$1 ranks=$2 split=${3:-auto} name
  name=$(basename "$model")
  local want got
  want=$(timeout 60 "$HEARTH" generate -m "$model" --prompt-ids "$PROMPT" -n $N --temp 0 --ids -t 1 -b 4 2>"$tmp/err1") || {
    echo "FAIL $name: one process failed: $(tail -3 "$tmp/err1")"; fail=1; return; }
  got=$("${MPIRUN[@]}" -np "$ranks" "$HEARTH" generate --pipeline --split "$split" -m "$model" --prompt-ids "$PROMPT" \
        -n $N --temp 0 --ids -t 1 -b 4 2>"$tmp/err2")
  local rc=$?
  checked=$((checked + 1))
  if [ $rc -ne 0 ]; then
    echo "FAIL $name ($ranks ranks, split $split): mpirun exit $rc: $(tail -5 "$tmp/err2")"; fail=1; return
  fi
  if [ "$(printf '%s\n' "$got" | wc -l)" -ne 1 ]; then
    echo "FAIL $name ($ranks ranks): more than one rank printed:"; printf '%s\n' "$got"; fail=1; return
  fi
  if [ "$got" != "$want" ]; then
    echo "FAIL $name ($ranks ranks, split $split): ids differ"; echo "  want: $want"; echo "  got:  $got"; fail=1; return
  fi
  echo "ok   $name ($ranks ranks, split $split, $(grep -o 'layers .*' "$tmp/err2"))"
}

run_one "$SHARED/models/stories260K.gguf" 2
run_one "$SHARED/models/stories260K.gguf" 3
run_one "$SHARED/models/stories260K.gguf" 2 1,4
for m in "$SHARED"/models/synthetic/*.gguf; do
  case $(basename "$m") in *bert*) continue ;; esac  # encoders: embeddings, no decoder pass
  run_one "$m" 2
done

# A rank that fails ends the whole group with an error (no hang): a split that does not add up.
"${MPIRUN[@]}" -np 2 "$HEARTH" generate --pipeline --split 1,1 -m "$SHARED/models/stories260K.gguf" \
  --prompt-ids "$PROMPT" -n 4 --temp 0 --ids >"$tmp/out" 2>"$tmp/err3"
rc=$?
if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then
  echo "FAIL: a bad --split should end the group with an error (exit $rc)"; fail=1
else
  echo "ok   a bad --split ends the group (exit $rc: $(grep -m1 -o 'error: .*' "$tmp/err3"))"
fi

# The daemon: `hearth serve --pipeline` answers as one `hearth serve` does (2 and 3 ranks, one
# request at a time and 4 at once), its watchdog fails a request whose stage stopped, and
# `hearth pipeline-supervise` has the group serving again after that.
ln -s "$SHARED/models/stories260K.gguf" "$tmp/stories260K.gguf"
for ranks in 2 3; do
  if timeout 120 python3 "$(dirname "$0")/pipeline-serve-check.py" "$HEARTH" "$tmp" stories260K $ranks; then
    checked=$((checked + 1))
  else
    fail=1
  fi
done
timeout 120 python3 "$(dirname "$0")/pipeline-serve-check.py" "$HEARTH" "$tmp" stories260K 2 --watchdog || fail=1
timeout 120 python3 "$(dirname "$0")/pipeline-serve-check.py" "$HEARTH" "$tmp" stories260K 2 --supervise || fail=1
timeout 150 python3 "$(dirname "$0")/pipeline-serve-check.py" "$HEARTH" "$tmp" stories260K 2 --kill9 || fail=1
timeout 120 python3 "$(dirname "$0")/pipeline-serve-check.py" "$HEARTH" "$tmp" stories260K 2 --memory || fail=1
timeout 150 python3 "$(dirname "$0")/pipeline-serve-check.py" "$HEARTH" "$tmp" stories260K 2 --cluster || fail=1
# Two network namespaces as two machines (root only; skipped elsewhere).
timeout 120 bash "$(dirname "$0")/test-pipeline-netns.sh" "$HEARTH"
case $? in 0 | 77) ;; *) fail=1 ;; esac

echo "test-pipeline: $checked runs compared, $([ $fail -eq 0 ] && echo all identical || echo FAILURES)"
exit $fail
