#!/usr/bin/env bash
# Drives the chat page in Debian's chromium (puppeteer-core, tests/ui/) against a real
# `hearth serve` on a free loopback port with API keys on.
#
#   scripts/test-ui-browser.sh path/to/hearth [ARTEFACT_DIR]
#
# Screenshots of each state and results.json (page weight, token latency) go to
# ARTEFACT_DIR (default: a ui-test folder beside the binary). Exit status 77 (CTest: skipped)
# when chromium is not installed. Registered as the CTest test `ui_browser`.
set -euo pipefail

die() { echo "test-ui-browser: $*" >&2; exit 1; }
# shellcheck source=scripts/daemon-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/daemon-lib.sh"

[ $# -ge 1 ] || die "usage: $0 HEARTH_BINARY [ARTEFACT_DIR]"
HEARTH=$(realpath "$1") || die "no such file: $1"
[ -x "$HEARTH" ] || die "not an executable: $HEARTH"
ARTEFACTS=$(realpath -m "${2:-$(dirname "$HEARTH")/ui-test}")

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${HEARTH_SHARED_DIR:-$REPO/../shared}
UI_TESTS="$REPO/tests/ui"

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
  echo "test-ui-browser: SKIPPED: chromium is not installed (scripts/install-deps.sh installs Debian's chromium)"
  exit 77
fi
command -v node >/dev/null 2>&1 || die "node is not installed: run scripts/install-deps.sh"
[ -f "$UI_TESTS/node_modules/puppeteer-core/package.json" ] ||
  die "puppeteer-core is not installed in tests/ui/node_modules: run scripts/install-deps.sh"
[ "$UI_TESTS/package-lock.json" -nt "$UI_TESTS/node_modules/.package-lock.json" ] &&
  die "tests/ui/node_modules is older than tests/ui/package-lock.json: run scripts/install-deps.sh"
[ -f "$SHARED/models/stories260K.gguf" ] || die "missing shared test file $SHARED/models/stories260K.gguf"
[ -f "$SHARED/vocab/ggml-vocab-llama-bpe.gguf" ] || die "missing shared test file $SHARED/vocab/ggml-vocab-llama-bpe.gguf"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hearth-ui.XXXXXX")
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
rm -rf "$ARTEFACTS"
mkdir -p "$ARTEFACTS"

MODELS="$WORK/models"
mkdir -p "$MODELS"
ln -s "$(realpath "$SHARED/models/stories260K.gguf")" "$MODELS/stories260K.gguf"
# A slower model for Stop: the tiny shape with Llama 3's 128K-token vocabulary in F32 (each
# token reads a 131 MB output matrix), so a reply takes seconds, not a fraction of one.
"$HEARTH" dev make-model "$MODELS/slow.gguf" --preset tiny --type f32 --seed 3 \
  --vocab "$SHARED/vocab/ggml-vocab-llama-bpe.gguf" >"$WORK/make-model.log" 2>&1 ||
  { cat "$WORK/make-model.log" >&2; die "hearth dev make-model failed"; }

KEY="ui-test-key-$RANDOM$RANDOM"
LOG="$WORK/serve.log"
# Niced: the page's timings are measured in the browser, which must not wait for the CPU
# behind the daemon's compute threads.
start_daemon test-ui-browser HEARTH_API_KEYS="$KEY" HEARTH_NUM_PARALLEL=2 -- nice -n 10
node -e 'fetch(process.argv[1],{headers:{Accept:"text/html"}}).then(r=>r.text()).then(t=>process.exit(t.includes("/ui/app.js")?0:1),()=>process.exit(1))' "$URL/" ||
  die "this hearth embeds the fallback page (built without Node.js or without npm ci in src/ui): run scripts/install-deps.sh, then rebuild"

# The model the reply test uses: stories260K with a template that passes the user's text
# through unchanged, so the chat reply must equal `hearth generate` on that text.
cat >"$WORK/Modelfile" <<MODELFILE
FROM $(realpath "$SHARED/models/stories260K.gguf")
TEMPLATE "{{ messages[-1]['content'] }}"
PARAMETER repeat_penalty 1
MODELFILE
HEARTH_HOST="${URL#http://}" HEARTH_API_KEY="$KEY" "$HEARTH" create stories-raw -f "$WORK/Modelfile" >"$WORK/create.log" 2>&1 ||
  { cat "$WORK/create.log" "$LOG" >&2; die "hearth create failed"; }

status=0
(
  cd "$UI_TESTS"
  HEARTH_URL="$URL" HEARTH_KEY="$KEY" HEARTH_BIN="$HEARTH" CHROMIUM="$CHROMIUM" ARTEFACTS="$ARTEFACTS" \
    STORIES_GGUF="$(realpath "$SHARED/models/stories260K.gguf")" \
    node --test --test-concurrency=1 --test-reporter=spec browser.test.mjs
) || status=$?

if [ "$status" -ne 0 ]; then
  echo "---- hearth serve log (last 60 lines) ----" >&2
  tail -n 60 "$LOG" >&2
fi
echo "test-ui-browser: screenshots and results.json in $ARTEFACTS"
exit "$status"
