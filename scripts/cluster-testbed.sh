#!/usr/bin/env bash
# A test bed for `hearth router` in front of several `hearth serve --cluster` daemons: its own
# etcd (data dir and ports of its own), N workers and a router, on loopback ports, or with
# --netns (root only) each worker in a network namespace of its own, linked by a veth pair to
# a bridge in the root namespace, so that a worker can be cut off by an nftables drop rule
# inside its namespace or by taking its link down. Faults: SIGSTOP/SIGCONT, SIGKILL, SIGTERM
# (drain), partition/heal, link down/up, etcd stopped and started again.
#
#   scripts/cluster-testbed.sh [OPTIONS] up N      etcd + N workers (w1..wN) + the router
#   scripts/cluster-testbed.sh [OPTIONS] down      stops everything, removes namespaces and links
#   scripts/cluster-testbed.sh [OPTIONS] status    processes, URLs, the etcd records
#   scripts/cluster-testbed.sh [OPTIONS] env       shell assignments: TB_ROUTER_URL, TB_ETCD, ...
#   ... add-worker [ID]          one more worker (a join); prints its ID
#   ... start-router [ARGS...]   (again) the router, with extra arguments; stop-router
#   ... stop ID | cont ID        SIGSTOP / SIGCONT of a worker
#   ... kill ID | term ID        SIGKILL / SIGTERM (SIGTERM drains); drain ID: `hearth drain`
#   ... restart ID               the worker again, same ID, store, address and port
#   ... partition ID | heal ID   (--netns) nftables drop of everything in/out of its namespace
#   ... link-down ID | link-up ID  (--netns) its veth link in the root namespace down / up
#   ... etcd-stop | etcd-start   SIGTERM of etcd / etcd again on the same data dir and ports
#   ... etcd-pause | etcd-resume SIGSTOP / SIGCONT of etcd
#   ... wait-registered ID [SECONDS] | wait-gone ID [SECONDS]
#
# OPTIONS: --dir DIR (the state directory; default $TB_DIR or /tmp/hearth-testbed), --netns,
# --hearth PATH (default $HEARTH, else build/hearth beside this script), --no-router.
# Environment: TB_MODELS_DIR (a folder of .gguf files every worker serves with --models-dir;
# default: one holding a link to ../shared/models/stories260K.gguf), TB_CLUSTER_NAME (default
# testbed), TB_WORKER_ENV (extra VAR=VALUE settings of every worker, space-separated;
# TB_WORKER_ENV_<ID> adds some for one worker, e.g. TB_WORKER_ENV_d1=HEARTH_DEBUG_TOKEN_DELAY=20),
# TB_WORKER_PREFIX (a command that must exec the worker, e.g. "taskset -c 1"; TB_WORKER_PREFIX_<ID>
# for one worker), TB_STORE_TEMPLATE (a model store copied into each new worker's store,
# e.g. with models made by `hearth create`), TB_ROUTER_ARGS
# (extra router arguments, e.g. "--policy round_robin --inter-token-timeout 3s"),
# TB_ROUTER_PREFIX, HEARTH_SHARED_DIR, TB_STATIC=1 (workers without --cluster, the router
# with --workers: the workers running when it starts; etcd still runs).
#
# The same functions (tb_*) can be sourced: a script sets TB_DIR etc., calls tb_init, and gets
# tb_down on EXIT (tb_init installs the trap; TB_NO_TRAP=1 leaves the traps to the caller).
# The CLI's `up` leaves the bed running (its state in --dir) until `down`; if `up` fails, what
# it started is stopped. A bed whose owner process is gone (a test killed by a timeout) is
# swept by the next `up` of any bed.
#
# State (TB_DIR): state (KEY=VALUE lines), etcd/ (data), etcd.log, router.log, router.pid,
# workers/<ID>/{pid,rc,url,log,store/,ns,veth,ip,port}. Node IDs are the worker IDs.

TB_SELF=$(realpath "${BASH_SOURCE[0]}")
TB_REPO=$(cd "$(dirname "$TB_SELF")/.." && pwd)
TB_REGISTRY=${TB_REGISTRY:-/tmp/hearth-testbeds}  # one link per running bed: its state dir

tb_log() { echo "cluster-testbed: $*" >&2; }
tb_die() { tb_log "ERROR: $*"; return 1; }

tb_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ---- state

tb_set() {  # tb_set KEY VALUE: in $TB_DIR/state
  local f="$TB_DIR/state"
  touch "$f"
  grep -v "^$1=" "$f" >"$f.tmp" || true
  printf '%s=%s\n' "$1" "$2" >>"$f.tmp"
  mv "$f.tmp" "$f"
}
tb_get() {  # tb_get KEY [DEFAULT]
  local v
  v=$(sed -n "s/^$1=//p" "$TB_DIR/state" 2>/dev/null | tail -n 1)
  echo "${v:-${2:-}}"
}
tb_wget() { cat "$TB_DIR/workers/$1/$2" 2>/dev/null; }  # tb_wget ID FIELD
tb_workers() { [ -d "$TB_DIR/workers" ] && ls "$TB_DIR/workers" | sort -V; }
tb_live_workers() {  # the IDs whose process is alive
  local id
  for id in $(tb_workers); do tb_alive "$(tb_wget "$id" pid)" && echo "$id"; done
}

# tb_alive PID: the process exists and is ours (a hearth or etcd), not a reused PID.
tb_alive() {
  local pid=$1 exe
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  case "$exe" in */hearth* | */etcd*) return 0 ;; esac
  return 1
}

# tb_stop_pid PID [SECONDS]: SIGCONT + SIGTERM, SIGKILL after SECONDS (default 10); waits.
tb_stop_pid() {
  local pid=$1 secs=${2:-10} i
  tb_alive "$pid" || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 $((secs * 20))); do
    tb_alive "$pid" || return 0
    sleep 0.05
  done
  tb_log "pid $pid did not exit in ${secs} s after SIGTERM: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do tb_alive "$pid" || return 0; sleep 0.05; done
}

# ---- set-up

# In a background subshell that outlives its caller: closes every descriptor above 2. Bash
# keeps copies of redirected descriptors (fd 10 and up) that a forked subshell inherits; one
# of them may be the pipe a caller reads the CLI's output from, which would then never end.
tb_close_fds() {
  local f fd
  for f in /proc/$BASHPID/fd/*; do
    fd=${f##*/}
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
  done
  return 0
}

# tb_init: state dir, registry link, netns check, traps (unless TB_NO_TRAP=1).
tb_init() {
  TB_DIR=${TB_DIR:-/tmp/hearth-testbed}
  TB_DIR=$(realpath -m "$TB_DIR")
  HEARTH=${HEARTH:-$TB_REPO/build/hearth}
  HEARTH=$(realpath "$HEARTH") || { tb_die "no hearth binary at $HEARTH"; return 1; }
  [ -x "$HEARTH" ] || { tb_die "not an executable: $HEARTH"; return 1; }
  command -v etcd >/dev/null 2>&1 || { tb_die "etcd is not installed (Debian: etcd-server; scripts/install-deps.sh)"; return 1; }
  TB_NETNS=${TB_NETNS:-0}
  if [ "$TB_NETNS" = 1 ]; then
    [ "$(id -u)" = 0 ] || { tb_die "--netns needs root"; return 1; }
    command -v nft >/dev/null 2>&1 || { tb_die "--netns needs nft (nftables)"; return 1; }
  fi
  if [ "${TB_NO_TRAP:-0}" != 1 ]; then
    trap 'tb_down' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
  fi
}

# tb_sweep: beds whose owner process is gone (a test killed by a timeout) are taken down.
tb_sweep() {
  local link dir owner
  [ -d "$TB_REGISTRY" ] || return 0
  for link in "$TB_REGISTRY"/*; do
    [ -L "$link" ] || continue
    dir=$(readlink "$link")
    owner=$(sed -n 's/^OWNER=//p' "$dir/state" 2>/dev/null | tail -n 1)
    if [ -z "$owner" ] || { [ "$owner" != cli ] && ! kill -0 "$owner" 2>/dev/null; }; then
      [ "$dir" = "$TB_DIR" ] && continue
      tb_log "sweeping the abandoned bed $dir (owner ${owner:-unknown} is gone)"
      ( TB_DIR=$dir; TB_NO_TRAP=1; tb_down_dir ) || true
      [ -f "$dir/state" ] && rm -rf "$dir"
      rm -f "$link"
    fi
  done
}

# tb_up N: etcd, N workers, the router (unless TB_NO_ROUTER=1 or `hearth router` is missing).
tb_up() {
  local n=${1:-3} i
  tb_sweep
  if [ -f "$TB_DIR/state" ] && tb_alive "$(tb_get ETCD_PID)"; then
    tb_die "a bed is already running in $TB_DIR (down it first)"
    return 1
  fi
  rm -rf "$TB_DIR"
  mkdir -p "$TB_DIR/workers" "$TB_REGISTRY"
  local id
  id=$(printf '%04x' $(( ($$ ^ RANDOM) & 0xffff )))
  tb_set TBID "$id"
  tb_set OWNER "${TB_OWNER:-$$}"
  tb_set NETNS "$TB_NETNS"
  tb_set HEARTH "$HEARTH"
  tb_set CLUSTER "${TB_CLUSTER_NAME:-testbed}"
  tb_set STATIC "${TB_STATIC:-0}"
  ln -sfn "$TB_DIR" "$TB_REGISTRY/$id"
  # The models every worker serves (--models-dir).
  local models=${TB_MODELS_DIR:-}
  if [ -z "$models" ]; then
    local shared=${HEARTH_SHARED_DIR:-$TB_REPO/../shared}
    [ -f "$shared/models/stories260K.gguf" ] || { tb_die "missing $shared/models/stories260K.gguf"; return 1; }
    models="$TB_DIR/models"
    mkdir -p "$models"
    ln -s "$(realpath "$shared/models/stories260K.gguf")" "$models/stories260K.gguf"
  fi
  tb_set MODELS_DIR "$(realpath "$models")"
  if [ "$TB_NETNS" = 1 ]; then tb_net_up || return 1; fi
  tb_set ETCD_PORT "$(tb_free_port)"
  tb_set ETCD_PEER_PORT "$(tb_free_port)"
  tb_etcd_start || return 1
  for i in $(seq 1 "$n"); do tb_add_worker "w$i" >/dev/null || return 1; done
  if [ "$(tb_get STATIC 0)" != 1 ]; then
    for i in $(seq 1 "$n"); do tb_wait_registered "w$i" 10 || return 1; done
  fi
  if [ "${TB_NO_ROUTER:-0}" != 1 ]; then
    if tb_have_router; then
      tb_router_start || return 1
    else
      tb_log "this hearth has no \`router\` command: the bed runs without a router"
    fi
  fi
  tb_log "up: $n workers$([ "$TB_NETNS" = 1 ] && echo ' in network namespaces'), etcd on 127.0.0.1:$(tb_get ETCD_PORT)$(tb_alive "$(cat "$TB_DIR/router.pid" 2>/dev/null)" && echo ", router on $(tb_get ROUTER_URL)") (state in $TB_DIR)"
}

tb_have_router() { "$(tb_get HEARTH "$HEARTH")" router --help 2>&1 | grep -q -- --workers; }

# Network: a bridge htb<ID>b with 10.<a>.<b>.1/24 in the root namespace; worker k gets the
# namespace htb-<ID>-<wid>, the veth htb<ID><wid> (root side, on the bridge) and eth0 with
# 10.<a>.<b>.(10+k) inside. etcd listens on 127.0.0.1 and the bridge address; the router
# reaches the workers through the bridge.
tb_net_up() {
  local id subnet b tries
  id=$(tb_get TBID)
  for tries in $(seq 1 50); do
    b=$(( 16 + RANDOM % 200 ))
    subnet="10.213.$b"
    ip -4 addr show | grep -q " $subnet\." || break
  done
  tb_set SUBNET "$subnet"
  tb_set BRIDGE "htb${id}b"
  ip link add "htb${id}b" type bridge || { tb_die "cannot create the bridge htb${id}b"; return 1; }
  ip addr add "$subnet.1/24" dev "htb${id}b"
  ip link set "htb${id}b" up
  tb_set NEXT_HOST 10
}

# tb_worker_net ID: the namespace and link of a worker (created on its first start).
tb_worker_net() {
  local wid=$1 id subnet ns veth host
  id=$(tb_get TBID)
  subnet=$(tb_get SUBNET)
  ns="htb-$id-$wid"
  veth="htb${id}${wid}"
  [ ${#veth} -le 15 ] || { tb_die "interface name $veth is too long (worker IDs up to 6 characters)"; return 1; }
  if [ ! -f "$TB_DIR/workers/$wid/ip" ]; then
    host=$(tb_get NEXT_HOST 10)
    tb_set NEXT_HOST $((host + 1))
    echo "$subnet.$host" >"$TB_DIR/workers/$wid/ip"
  fi
  echo "$ns" >"$TB_DIR/workers/$wid/ns"
  echo "$veth" >"$TB_DIR/workers/$wid/veth"
  ip netns list | grep -qw "^$ns" && return 0
  ip netns add "$ns" || { tb_die "ip netns add $ns failed"; return 1; }
  ip link add "$veth" type veth peer name eth0 netns "$ns" || { tb_die "cannot create the veth $veth"; return 1; }
  ip link set "$veth" master "$(tb_get BRIDGE)" up
  ip -n "$ns" addr add "$(tb_wget "$wid" ip)/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  # The fault table: empty chains now, a drop rule on `partition`.
  ip netns exec "$ns" nft -f - <<'EOF'
table inet testbed {
  chain input { type filter hook input priority 0; policy accept; }
  chain output { type filter hook output priority 0; policy accept; }
}
EOF
}

tb_etcd_start() {
  local port peer listen i
  port=$(tb_get ETCD_PORT)
  peer=$(tb_get ETCD_PEER_PORT)
  listen="http://127.0.0.1:$port"
  [ "$(tb_get NETNS 0)" = 1 ] && listen+=",http://$(tb_get SUBNET).1:$port"
  mkdir -p "$TB_DIR/etcd"
  etcd --name testbed --data-dir "$TB_DIR/etcd" \
    --listen-client-urls "$listen" --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "testbed=http://127.0.0.1:$peer" --initial-cluster-state new \
    --heartbeat-interval 100 --election-timeout 1000 </dev/null >>"$TB_DIR/etcd.log" 2>&1 &
  echo $! >"$TB_DIR/etcd.pid"
  tb_set ETCD_PID $!
  tb_set ETCD "etcd://127.0.0.1:$port"
  for i in $(seq 1 200); do  # up to 10 s
    curl -sf --max-time 1 "http://127.0.0.1:$port/health" 2>/dev/null | grep -q '"health":"true"' && return 0
    tb_alive "$(tb_get ETCD_PID)" || break
    sleep 0.05
  done
  tail -n 20 "$TB_DIR/etcd.log" >&2
  tb_die "etcd did not become healthy on 127.0.0.1:$port"
}
tb_etcd_stop() { tb_stop_pid "$(tb_get ETCD_PID)" 10; }
tb_etcd_pause() { kill -STOP "$(tb_get ETCD_PID)"; }
tb_etcd_resume() { kill -CONT "$(tb_get ETCD_PID)"; }

# tb_add_worker [ID]: starts a worker (a new one, or again with the same store and address);
# prints its ID once it answers GET /api/version (not waiting for its registration).
tb_add_worker() {
  local wid=${1:-} n host bind port url etcd_url wdir i
  if [ -z "$wid" ]; then
    n=$(( $(tb_workers | wc -l) + 1 ))
    while [ -d "$TB_DIR/workers/w$n" ]; do n=$((n + 1)); done
    wid="w$n"
  fi
  wdir="$TB_DIR/workers/$wid"
  mkdir -p "$wdir/store"
  if tb_alive "$(tb_wget "$wid" pid)"; then tb_die "worker $wid is running"; return 1; fi
  local ns=()
  etcd_url=$(tb_get ETCD)
  if [ "$(tb_get NETNS 0)" = 1 ]; then
    tb_worker_net "$wid" || return 1
    host=$(tb_wget "$wid" ip)
    port=11434
    # Every address of its namespace: loopback too, so that `hearth drain` (loopback
    # clients only, without an API key) can be run inside the namespace.
    bind=0.0.0.0
    ns=(ip netns exec "$(tb_wget "$wid" ns)")
    etcd_url="etcd://$(tb_get SUBNET).1:$(tb_get ETCD_PORT)"
  else
    host=127.0.0.1
    bind=127.0.0.1
    port=$(tb_wget "$wid" port)
    [ -n "$port" ] || port=$(tb_free_port)
  fi
  url="http://$host:$port"
  echo "$port" >"$wdir/port"
  echo "$url" >"$wdir/url"
  rm -f "$wdir/pid" "$wdir/rc"
  local extra=() evar="TB_WORKER_ENV_$wid"
  # shellcheck disable=SC2206
  [ -n "${TB_WORKER_ENV:-}" ] && extra=($TB_WORKER_ENV)
  # shellcheck disable=SC2206
  [ -n "${!evar:-}" ] && extra+=(${!evar})
  local prefix=() pvar="TB_WORKER_PREFIX_$wid"
  # shellcheck disable=SC2206
  [ -n "${!pvar:-${TB_WORKER_PREFIX:-}}" ] && prefix=(${!pvar:-$TB_WORKER_PREFIX})
  # A store made beforehand (models created with `hearth create`): copied on the first start.
  if [ -n "${TB_STORE_TEMPLATE:-}" ] && [ ! -e "$wdir/.store-copied" ]; then
    { cp -al "$TB_STORE_TEMPLATE/." "$wdir/store/" 2>/dev/null || cp -a "$TB_STORE_TEMPLATE/." "$wdir/store/"; } && touch "$wdir/.store-copied"
  fi
  local cluster=(--cluster "$etcd_url" --cluster-name "$(tb_get CLUSTER)" --node-id "$wid" --advertise "$url")
  [ "$(tb_get STATIC 0)" = 1 ] && cluster=()
  echo "---- start $(date +%T.%N)" >>"$wdir/log"
  # A subshell waits for the daemon and writes its exit status to rc; the pid file holds the
  # daemon's own PID (ip netns exec, env and the prefix exec it).
  (
    tb_close_fds
    "${ns[@]}" env HEARTH_HOST="$bind:$port" HEARTH_MODELS="$wdir/store" HEARTH_ALLOW_INSECURE=1 HEARTH_API_KEYS= \
      HEARTH_NOPRUNE=1 "${extra[@]}" "${prefix[@]}" "$(tb_get HEARTH)" serve --models-dir "$(tb_get MODELS_DIR)" \
      "${cluster[@]}" </dev/null >>"$wdir/log" 2>&1 &
    echo $! >"$wdir/pid"
    wait $!
    echo $? >"$wdir/rc"
  ) </dev/null >/dev/null 2>&1 &
  for i in $(seq 1 100); do [ -s "$wdir/pid" ] && break; sleep 0.02; done
  for i in $(seq 1 300); do  # up to 30 s
    if curl -sf --max-time 1 "$url/api/version" >/dev/null 2>&1; then
      echo "$wid"
      return 0
    fi
    [ -f "$wdir/rc" ] && break
    sleep 0.1
  done
  tail -n 20 "$wdir/log" >&2
  tb_die "worker $wid did not answer on $url$([ -f "$wdir/rc" ] && echo " (it exited with status $(cat "$wdir/rc"))")"
}

# tb_router_start [ARGS...]: the router on a free loopback port, with the bed's etcd.
tb_router_start() {
  local port url i
  tb_stop_pid "$(cat "$TB_DIR/router.pid" 2>/dev/null)" 10
  port=$(tb_get ROUTER_PORT)
  [ -n "$port" ] || port=$(tb_free_port)
  url="http://127.0.0.1:$port"
  tb_set ROUTER_PORT "$port"
  tb_set ROUTER_URL "$url"
  local args=()
  # shellcheck disable=SC2206
  [ -n "${TB_ROUTER_ARGS:-}" ] && args=($TB_ROUTER_ARGS)
  local prefix=()
  # shellcheck disable=SC2206
  [ -n "${TB_ROUTER_PREFIX:-}" ] && prefix=($TB_ROUTER_PREFIX)
  local members=(--cluster "$(tb_get ETCD)" --cluster-name "$(tb_get CLUSTER)")
  if [ "$(tb_get STATIC 0)" = 1 ]; then  # --workers: the workers running now
    local list="" wid
    for wid in $(tb_live_workers); do list+="${list:+,}$(tb_wget "$wid" url)"; done
    members=(--workers "$list")
  fi
  rm -f "$TB_DIR/router.rc"
  echo "---- start $(date +%T.%N) ${args[*]} $*" >>"$TB_DIR/router.log"
  (
    tb_close_fds
    env HEARTH_HOST="127.0.0.1:$port" "${prefix[@]}" "$(tb_get HEARTH)" router "${members[@]}" \
      "${args[@]}" "$@" </dev/null >>"$TB_DIR/router.log" 2>&1 &
    echo $! >"$TB_DIR/router.pid"
    wait $!
    echo $? >"$TB_DIR/router.rc"
  ) </dev/null >/dev/null 2>&1 &
  for i in $(seq 1 100); do [ -s "$TB_DIR/router.pid" ] && break; sleep 0.02; done
  for i in $(seq 1 200); do
    curl -sf --max-time 1 "$url/api/version" >/dev/null 2>&1 && return 0
    [ -f "$TB_DIR/router.rc" ] && break
    sleep 0.1
  done
  tail -n 20 "$TB_DIR/router.log" >&2
  tb_die "the router did not answer on $url"
}
tb_router_stop() { tb_stop_pid "$(cat "$TB_DIR/router.pid" 2>/dev/null)" 10; }

# ---- etcd records (the v3 JSON gateway, no etcdctl needed)

# tb_nodes: one line per registered node: ID STATE URL
tb_nodes() {
  python3 - "http://127.0.0.1:$(tb_get ETCD_PORT)" "/hearth/v1/$(tb_get CLUSTER)/nodes/" <<'EOF'
import base64, json, sys, urllib.request
url, prefix = sys.argv[1], sys.argv[2]
end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
b = lambda s: base64.b64encode(s.encode()).decode()
req = urllib.request.Request(url + "/v3/kv/range", data=json.dumps({"key": b(prefix), "range_end": b(end)}).encode())
try:
    r = json.load(urllib.request.urlopen(req, timeout=2))
except Exception as e:
    print("etcd unreachable:", e, file=sys.stderr); sys.exit(2)
for kv in r.get("kvs", []):
    key = base64.b64decode(kv["key"]).decode()
    try:
        v = json.loads(base64.b64decode(kv.get("value", "")))
    except Exception:
        v = {}
    print(key[len(prefix):], v.get("state", "?"), v.get("url", "?"))
EOF
}
tb_wait_registered() {  # tb_wait_registered ID [SECONDS]: until etcd has its record
  local wid=$1 secs=${2:-10} i
  for i in $(seq 1 $((secs * 20))); do
    tb_nodes 2>/dev/null | grep -q "^$wid " && return 0
    sleep 0.05
  done
  tail -n 20 "$TB_DIR/workers/$wid/log" >&2
  tb_die "worker $wid did not register in etcd within $secs s"
}
tb_wait_gone() {  # tb_wait_gone ID [SECONDS]: until etcd has no record of it
  local wid=$1 secs=${2:-10} i
  for i in $(seq 1 $((secs * 20))); do
    tb_nodes 2>/dev/null | grep -q "^$wid " || return 0
    sleep 0.05
  done
  tb_die "worker $wid is still registered after $secs s"
}

# ---- faults

tb_signal() {  # tb_signal SIG ID
  local pid
  pid=$(tb_wget "$2" pid)
  tb_alive "$pid" || { tb_die "worker $2 is not running"; return 1; }
  kill "-$1" "$pid"
}
tb_stop() { tb_signal STOP "$1"; }
tb_cont() { tb_signal CONT "$1"; }
tb_kill() {
  tb_signal KILL "$1" || return 1
  local i
  for i in $(seq 1 100); do [ -f "$TB_DIR/workers/$1/rc" ] && return 0; sleep 0.02; done
}
tb_term() { tb_signal TERM "$1"; }
tb_drain() {  # `hearth drain` as a loopback client (inside the worker's namespace with --netns)
  if [ -n "$(tb_wget "$1" ns)" ]; then
    ip netns exec "$(tb_wget "$1" ns)" "$(tb_get HEARTH)" drain --host "127.0.0.1:$(tb_wget "$1" port)"
  else
    "$(tb_get HEARTH)" drain --host "$(tb_wget "$1" url)"
  fi
}
tb_restart() {  # the worker again (after a kill, a drain, a stop)
  tb_stop_pid "$(tb_wget "$1" pid)" 10
  tb_add_worker "$1"
}
tb_need_netns() { [ "$(tb_get NETNS 0)" = 1 ] || { tb_die "$1 needs a bed started with --netns"; return 1; }; }
tb_partition() {  # drops every packet in and out of the worker's namespace but loopback's
  tb_need_netns partition || return 1
  ip netns exec "$(tb_wget "$1" ns)" nft -f - <<'EOF'
add rule inet testbed input iifname != "lo" drop comment "partition"
add rule inet testbed output oifname != "lo" drop comment "partition"
EOF
}
tb_heal() {
  tb_need_netns heal || return 1
  ip netns exec "$(tb_wget "$1" ns)" nft flush chain inet testbed input
  ip netns exec "$(tb_wget "$1" ns)" nft flush chain inet testbed output
}
tb_link_down() { tb_need_netns link-down || return 1; ip link set "$(tb_wget "$1" veth)" down; }
tb_link_up() { tb_need_netns link-up || return 1; ip link set "$(tb_wget "$1" veth)" up; }

# ---- status, down

tb_status() {
  local wid pid state
  [ -f "$TB_DIR/state" ] || { echo "no bed in $TB_DIR"; return 1; }
  printf 'etcd    %-8s %s\n' "$(tb_alive "$(tb_get ETCD_PID)" && echo up || echo down)" "$(tb_get ETCD)"
  if [ -f "$TB_DIR/router.pid" ]; then
    printf 'router  %-8s %s\n' "$(tb_alive "$(cat "$TB_DIR/router.pid")" && echo up || echo down)" "$(tb_get ROUTER_URL)"
  fi
  for wid in $(tb_workers); do
    pid=$(tb_wget "$wid" pid)
    if tb_alive "$pid"; then
      state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
      [ "$state" = T ] && state=stopped || state=up
    else
      state="exited($(tb_wget "$wid" rc))"
    fi
    printf '%-7s %-8s %s%s\n' "$wid" "$state" "$(tb_wget "$wid" url)" \
      "$([ -f "$TB_DIR/workers/$wid/ns" ] && echo " netns $(tb_wget "$wid" ns)")"
  done
  echo "etcd records (/hearth/v1/$(tb_get CLUSTER)/nodes/):"
  tb_nodes | sed 's/^/  /'
  if [ "$(tb_get STATIC 0)" != 1 ] && tb_alive "$(tb_get ETCD_PID)"; then
    echo "hearth cluster status:"
    "$(tb_get HEARTH)" cluster status --cluster "$(tb_get ETCD)" --cluster-name "$(tb_get CLUSTER)" 2>&1 | sed 's/^/  /'
  fi
}

tb_env() {
  echo "TB_DIR=$TB_DIR"
  echo "TB_ETCD=$(tb_get ETCD)"
  echo "TB_CLUSTER=$(tb_get CLUSTER)"
  echo "TB_ROUTER_URL=$(tb_get ROUTER_URL)"
  echo "TB_NETNS=$(tb_get NETNS 0)"
  local wid
  for wid in $(tb_workers); do echo "TB_WORKER_${wid}=$(tb_wget "$wid" url)"; done
}

# tb_down_dir: stops every process of the bed in $TB_DIR, removes its namespaces and links.
tb_down_dir() {
  [ -f "$TB_DIR/state" ] || return 0
  local pids=() wid pid ns id
  pids+=("$(cat "$TB_DIR/router.pid" 2>/dev/null)")
  for wid in $(tb_workers); do pids+=("$(tb_wget "$wid" pid)"); done
  for pid in "${pids[@]}"; do  # all at once: drains run in parallel
    if tb_alive "$pid"; then kill -CONT "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null; fi
  done
  for pid in "${pids[@]}"; do tb_stop_pid "$pid" 10; done
  tb_stop_pid "$(tb_get ETCD_PID)" 10
  id=$(tb_get TBID)
  for wid in $(tb_workers); do
    ns=$(tb_wget "$wid" ns)
    [ -n "$ns" ] && ip netns list 2>/dev/null | grep -qw "^$ns" && ip netns del "$ns"
  done
  if [ -n "$id" ] && ip link show "htb${id}b" >/dev/null 2>&1; then ip link del "htb${id}b"; fi
  [ -n "$id" ] && rm -f "$TB_REGISTRY/$id"
  return 0
}

# tb_down: tb_down_dir, then the state dir goes (TB_KEEP=1 keeps it, logs included).
tb_down() {
  local rc=$?
  trap - EXIT
  if [ -n "${TB_DIR:-}" ] && [ -f "$TB_DIR/state" ]; then
    tb_down_dir
    if [ "${TB_KEEP:-0}" = 1 ]; then tb_log "state and logs kept in $TB_DIR"; else rm -rf "$TB_DIR"; fi
  fi
  return $rc
}

# ---- CLI

tb_main() {
  TB_NETNS=${TB_NETNS:-0}
  while [ $# -gt 0 ]; do
    case "$1" in
      --dir) TB_DIR=$2; shift 2 ;;
      --netns) TB_NETNS=1; shift ;;
      --hearth) HEARTH=$2; shift 2 ;;
      --no-router) TB_NO_ROUTER=1; shift ;;
      -h | --help) sed -n '2,/^$/p' "$TB_SELF" | sed 's/^# \{0,1\}//'; return 0 ;;
      *) break ;;
    esac
  done
  local cmd=${1:-}
  [ -n "$cmd" ] || { echo "usage: $0 [--dir DIR] [--netns] [--hearth PATH] up N|down|status|... (see --help)" >&2; return 2; }
  shift
  TB_NO_TRAP=1
  TB_DIR=${TB_DIR:-/tmp/hearth-testbed}
  if [ "$cmd" != up ]; then
    TB_DIR=$(realpath -m "$TB_DIR")
    [ -f "$TB_DIR/state" ] || { echo "no test bed in $TB_DIR" >&2; return 1; }
    HEARTH=$(tb_get HEARTH)
  fi
  case "$cmd" in
    up)
      tb_init || return 1
      TB_OWNER=${TB_OWNER:-cli}
      trap 'tb_down' EXIT  # a failed `up` leaves nothing behind
      trap 'exit 130' INT
      trap 'exit 143' TERM
      tb_up "${1:-3}" || return 1
      trap - EXIT INT TERM
      tb_status
      ;;
    down) TB_KEEP=${TB_KEEP:-0}; tb_down ;;
    status) tb_status ;;
    env) tb_env ;;
    add-worker) tb_add_worker "${1:-}" ;;
    start-router) tb_router_start "$@" ;;
    stop-router) tb_router_stop ;;
    stop) tb_stop "$1" ;;
    cont) tb_cont "$1" ;;
    kill) tb_kill "$1" ;;
    term) tb_term "$1" ;;
    drain) tb_drain "$1" ;;
    restart) tb_restart "$1" ;;
    partition) tb_partition "$1" ;;
    heal) tb_heal "$1" ;;
    link-down) tb_link_down "$1" ;;
    link-up) tb_link_up "$1" ;;
    etcd-stop) tb_etcd_stop ;;
    etcd-start) tb_etcd_start ;;
    etcd-pause) tb_etcd_pause ;;
    etcd-resume) tb_etcd_resume ;;
    nodes) tb_nodes ;;
    wait-registered) tb_wait_registered "$1" "${2:-10}" ;;
    wait-gone) tb_wait_gone "$1" "${2:-10}" ;;
    *) echo "unknown command: $cmd (see --help)" >&2; return 2 ;;
  esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  tb_main "$@"
  exit $?
fi
