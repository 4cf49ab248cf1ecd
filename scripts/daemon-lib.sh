# Sourced by the test scripts that run the official clients and the browser against a real
# `hearth serve`: starts the daemon on a free loopback port with an empty store of its own.
#
#   start_daemon TAG [VAR=VALUE ...] [-- PREFIX COMMAND ...]
#
# Needs HEARTH, MODELS, WORK, LOG and a `die` function; sets URL and PID. The VAR=VALUE
# settings go to the daemon's environment; PREFIX (e.g. `nice -n 10`) must exec the daemon,
# so that PID is the daemon's. Up to three tries (a port taken between probe and bind).
start_daemon() {
  local tag=$1 port attempt i
  shift
  local settings=() prefix=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do settings+=("$1"); shift; done
  [ $# -gt 0 ] && shift && prefix=("$@")
  for attempt in 1 2 3; do
    port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    URL="http://127.0.0.1:$port"
    # An empty store of its own (HEARTH_MODELS): the user's models neither interfere nor change.
    env HEARTH_HOST="127.0.0.1:$port" HEARTH_MODELS="$WORK/store" "${settings[@]}" \
      "${prefix[@]}" "$HEARTH" serve --models-dir "$MODELS" >"$LOG" 2>&1 &
    PID=$!
    for i in $(seq 1 300); do  # up to 30 s
      kill -0 "$PID" 2>/dev/null || break
      if node -e 'fetch(process.argv[1]).then(r=>r.text()).then(t=>process.exit(t.startsWith("Hearth is running")?0:1),()=>process.exit(1))' "$URL/"; then
        return 0
      fi
      sleep 0.1
    done
    if kill -0 "$PID" 2>/dev/null; then
      cat "$LOG" >&2
      die "hearth serve did not answer GET / on $URL"
    fi
    wait "$PID" 2>/dev/null || true
    PID=""
    echo "$tag: hearth serve exited before answering (attempt $attempt):" >&2
    cat "$LOG" >&2
  done
  die "could not start hearth serve"
}
