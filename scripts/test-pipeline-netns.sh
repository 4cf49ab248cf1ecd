#!/usr/bin/env bash
# Part of CTest pipeline_mpi (scripts/test-pipeline.sh), as root: the two ranks of a pipeline in
# two network namespaces joined by a veth pair, as on two machines. mpirun starts the remote
# rank through a launch agent that enters the other namespace (in place of ssh), and the ranks
# reach each other only over that link (btl/oob restricted to its subnet). Checks: greedy ids
# through the two namespaces equal one process's; `hearth serve --pipeline` (rank 0's HTTP in
# the first namespace) answers as one daemon does. Exits 77 (skipped) when not root or when
# namespaces cannot be made here.
#   scripts/test-pipeline-netns.sh path/to/hearth
set -uo pipefail

HEARTH=$(realpath "${1:?usage: test-pipeline-netns.sh path/to/hearth}")
SHARED=${HEARTH_SHARED_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
MODEL=$SHARED/models/stories260K.gguf
if [ "$(id -u)" -ne 0 ]; then echo "test-pipeline-netns: not root: skipped"; exit 77; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

id=$(( $$ % 100000 ))
A=hpipe-$id-a B=hpipe-$id-b
net=10.231.$(( $$ % 250 + 1 ))
tmp=$(mktemp -d)
cleanup() {
  [ -n "${serve_pid:-}" ] && kill -TERM -- "-$serve_pid" 2>/dev/null
  sleep 0.3
  ip netns pids "$A" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns pids "$B" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
if ! ip netns add "$A" 2>/dev/null || ! ip netns add "$B" 2>/dev/null ||
   ! ip link add "hpa$id" type veth peer name "hpb$id" 2>/dev/null; then
  echo "test-pipeline-netns: cannot create network namespaces or a veth pair here: skipped"; exit 77
fi
ip link set "hpa$id" netns "$A" && ip link set "hpb$id" netns "$B" &&
ip netns exec "$A" sh -c "ip addr add $net.1/24 dev hpa$id && ip link set hpa$id up && ip link set lo up" &&
ip netns exec "$B" sh -c "ip addr add $net.2/24 dev hpb$id && ip link set hpb$id up && ip link set lo up" || {
  echo "FAIL netns: could not configure the link"; exit 1; }

# The launch agent mpirun calls as `AGENT HOST COMMAND...` (where it would call ssh).
cat >"$tmp/agent.sh" <<AGENT
#!/bin/sh
host=\$1; shift
case \$host in $net.2) ns=$B ;; *) ns=$A ;; esac
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec ip netns exec \$ns /bin/sh -c "\$*"
AGENT
chmod +x "$tmp/agent.sh"
MPIRUN=(mpirun --host "$net.1:1,$net.2:1" -np 2 --mca plm_rsh_agent "$tmp/agent.sh" --mca btl tcp,self
        --mca btl_tcp_if_include "$net.0/24" --mca oob_tcp_if_include "$net.0/24")
fail=0

# Where each rank runs: its own namespace, its own address.
where=$(timeout 30 ip netns exec "$A" "${MPIRUN[@]}" sh -c 'echo "$OMPI_COMM_WORLD_RANK $(readlink /proc/self/ns/net)"' 2>&1 | sort)
if [ "$(echo "$where" | awk '{print $2}' | sort -u | wc -l)" -ne 2 ]; then
  echo "FAIL netns: the ranks did not run in two namespaces: $where"; exit 1
fi

PROMPT="1 403 407 261 378 300 290 274 313"
want=$(timeout 60 "$HEARTH" generate -m "$MODEL" --prompt-ids "$PROMPT" -n 24 --temp 0 --ids -t 1 2>/dev/null)
got=$(timeout 60 ip netns exec "$A" "${MPIRUN[@]}" "$HEARTH" generate --pipeline -m "$MODEL" --prompt-ids "$PROMPT" \
      -n 24 --temp 0 --ids -t 1 2>"$tmp/err")
if [ -z "$want" ] || [ "$got" != "$want" ]; then
  echo "FAIL netns generate: want '$want' got '$got': $(tail -5 "$tmp/err")"; fail=1
else
  echo "ok   netns: greedy ids through ranks in two namespaces ($net.1 | $net.2) identical to one process"
fi

# The daemon: rank 0 serves HTTP inside the first namespace; the answer equals one daemon's.
ln -s "$MODEL" "$tmp/stories260K.gguf"
body='{"model":"stories260K","prompt":"Once upon a time","raw":true,"stream":false,"options":{"temperature":0,"num_predict":24}}'
one_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HEARTH_HOST=127.0.0.1:$one_port HEARTH_MODELS=$tmp/store1 setsid "$HEARTH" serve --models-dir "$tmp" >"$tmp/one.log" 2>&1 &
one_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$one_port/" >/dev/null && break; sleep 0.1; done
want=$(curl -s "http://127.0.0.1:$one_port/api/generate" -d "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["response"])')
kill "$one_pid"; wait "$one_pid" 2>/dev/null
HEARTH_HOST=$net.1:11434 HEARTH_MODELS=$tmp/store2 HEARTH_ALLOW_INSECURE=1 setsid ip netns exec "$A" "${MPIRUN[@]}" \
  "$HEARTH" serve --models-dir "$tmp" --pipeline >"$tmp/pipe.log" 2>&1 &
serve_pid=$!
disown "$serve_pid"
for _ in $(seq 150); do ip netns exec "$A" curl -sf "http://$net.1:11434/" >/dev/null && break; sleep 0.1; done
got=$(ip netns exec "$A" curl -s "http://$net.1:11434/api/generate" -d "$body" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("response", d))')
if [ -z "$want" ] || [ "$got" != "$want" ]; then
  echo "FAIL netns serve: want '$want' got '$got'"; tail -20 "$tmp/pipe.log"; fail=1
else
  echo "ok   netns: serve --pipeline across the namespaces answers as one daemon (layers $(grep -o 'split 0-.*' "$tmp/pipe.log" | head -1 | cut -c7-))"
fi
exit $fail
