#!/usr/bin/env bash
# The cluster's fault tests: a test bed of scripts/cluster-testbed.sh (its own etcd, 3 workers
# `hearth serve --cluster`, `hearth router` in front) and the scenarios of
# scripts/cluster-faults.py: join, drain, SIGSTOP/SIGCONT, SIGKILL, partition and link down
# (network namespaces, when run as root), etcd stopped for 30 s. Each scenario is bounded in
# time and prints what it measured; the summary at the end has one PASS/FAIL/SKIP line each.
#
#   scripts/test-cluster.sh path/to/hearth [SCENARIO ...]
#
# Environment: CLUSTER_NETNS=0 keeps the bed on loopback even as root; CLUSTER_ETCD_DOWN
# (seconds, default 30); CLUSTER_ITT (the router's --inter-token-timeout in seconds, default
# 3); CLUSTER_KEEP=1 keeps the bed's state and logs (printed path); HEARTH_SHARED_DIR.
# Exit status 77 (CTest: skipped) when etcd is not installed. Registered as the CTest test
# `cluster`.
set -uo pipefail

[ $# -ge 1 ] || { echo "usage: $0 HEARTH_BINARY [SCENARIO ...]" >&2; exit 2; }
HEARTH=$(realpath "$1") || { echo "no such file: $1" >&2; exit 2; }
shift
[ -x "$HEARTH" ] || { echo "not an executable: $HEARTH" >&2; exit 2; }
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TESTBED="$REPO/scripts/cluster-testbed.sh"
SHARED=${HEARTH_SHARED_DIR:-$REPO/../shared}
export HEARTH_SHARED_DIR=$SHARED

if ! command -v etcd >/dev/null 2>&1; then
  echo "test-cluster: SKIPPED: etcd is not installed (Debian package etcd-server; scripts/install-deps.sh)"
  exit 77
fi
for tool in python3 curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is not installed: run scripts/install-deps.sh" >&2; exit 1; }
done
[ -f "$SHARED/models/stories260K.gguf" ] || { echo "missing shared test file $SHARED/models/stories260K.gguf" >&2; exit 1; }
if ! "$HEARTH" serve --help 2>&1 | grep -q -- --cluster; then
  echo "test-cluster: FAILED: this hearth has no \`serve --cluster\`" >&2
  exit 1
fi

# Network namespaces when root and they work here; else loopback (partition/linkdown skip).
NETNS=()
if [ "${CLUSTER_NETNS:-1}" != 0 ] && [ "$(id -u)" = 0 ] && command -v nft >/dev/null 2>&1; then
  probe="htb-probe-$$"
  if ip netns add "$probe" 2>/dev/null; then
    if ip netns exec "$probe" nft add table inet probe 2>/dev/null; then NETNS=(--netns); fi
    ip netns del "$probe" 2>/dev/null || true
  fi
fi
[ ${#NETNS[@]} -eq 0 ] && echo "test-cluster: the bed runs on loopback (network namespaces need root, ip and nft)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hearth-cluster.XXXXXX")
TB_DIR="$WORK/bed"
T_START=$(date +%s)
RC=1
FAULTS_PID=""
cleanup() {
  local rc=$?
  [ "$RC" = 0 ] || rc=$RC
  if [ -n "$FAULTS_PID" ]; then kill -TERM "$FAULTS_PID" 2>/dev/null; wait "$FAULTS_PID" 2>/dev/null; fi
  if [ "$RC" != 0 ] && [ -d "$TB_DIR/workers" ]; then
    for f in "$TB_DIR"/router.log "$TB_DIR"/workers/*/log; do
      [ -f "$f" ] || continue
      echo "---- ${f#"$TB_DIR"/} (last 20 lines) ----" >&2
      tail -n 20 "$f" >&2
    done
  fi
  [ "${CLUSTER_KEEP:-0}" = 1 ] && export TB_KEEP=1
  "$TESTBED" --dir "$TB_DIR" down >/dev/null 2>&1 || true
  if [ "${CLUSTER_KEEP:-0}" = 1 ]; then echo "test-cluster: state and logs kept in $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ITT=${CLUSTER_ITT:-3}
ROUTER_ARGS=""
if "$HEARTH" router --help 2>&1 | grep -q -- --inter-token-timeout; then
  ROUTER_ARGS="--inter-token-timeout ${ITT}s"
fi
echo "test-cluster: hearth $HEARTH, bed in $TB_DIR ${NETNS[*]:-(loopback)}, router args: ${ROUTER_ARGS:-none}"
TB_OWNER=$$ TB_ROUTER_ARGS="$ROUTER_ARGS" "$TESTBED" --dir "$TB_DIR" --hearth "$HEARTH" "${NETNS[@]}" up 3 ||
  { echo "test-cluster: FAILED: the test bed did not come up" >&2; exit 1; }

# In the background, so that a signal to this script runs the cleanup at once.
python3 "$REPO/scripts/cluster-faults.py" --dir "$TB_DIR" --itt "$ITT" --etcd-down "${CLUSTER_ETCD_DOWN:-30}" "$@" &
FAULTS_PID=$!
wait "$FAULTS_PID"
RC=$?
FAULTS_PID=""
echo "test-cluster: $([ "$RC" = 0 ] && echo 'all scenarios passed' || echo FAILED) in $(( $(date +%s) - T_START )) s"
exit "$RC"
