#!/usr/bin/env bash
# Installs every Debian 12 package Hearth's build, tests and tools need. Idempotent: when
# everything is already installed it changes nothing.
set -euo pipefail

PACKAGES=(
  build-essential g++ cmake make pkg-config git
  clang libclang-rt-14-dev            # libFuzzer + sanitizer runtimes for the fuzz target
  nlohmann-json3-dev libcpp-httplib-dev libcli11-dev
  libcurl4-openssl-dev libssl-dev libpcre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  docker-registry                     # the reference OCI registry the registry tests push to / pull from
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js + npm run the npm client tests (tests/js); any install providing npm will do
# (e.g. NodeSource's nodejs, which bundles it), else Debian's packages.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The npm clients the tests run, exactly as tests/js/package-lock.json pins them (from the
# npm registry), when tests/js/node_modules is missing or older than the lock file.
JS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/js"
if [ "$JS_DIR/package-lock.json" -nt "$JS_DIR/node_modules/.package-lock.json" ]; then
  echo "install-deps: npm ci in tests/js"
  npm ci --prefix "$JS_DIR" --no-audit --no-fund
else
  echo "install-deps: tests/js/node_modules up to date"
fi
