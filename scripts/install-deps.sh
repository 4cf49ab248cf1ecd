#!/usr/bin/env bash
# Installs every Debian 12 package Hearth's build, tests and tools need. Idempotent: when
# everything is already installed it changes nothing.
set -euo pipefail

PACKAGES=(
  build-essential g++ cmake make pkg-config git
  clang libclang-rt-14-dev            # libFuzzer + sanitizer runtimes for the fuzz target
  nlohmann-json3-dev libcli11-dev
  libboost1.81-dev                    # Boost.Beast / Boost.Asio: the HTTP server and client (src/http)
  python3 curl                        # scripts/http-load.py and the fault tests (scripts/test-http-faults.sh)
  libcurl4-openssl-dev libssl-dev libpcre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  docker-registry                     # the reference OCI registry the registry tests push to / pull from
  chromium                            # the browser the chat page's tests drive (tests/ui)
  etcd-server etcd-client             # cluster membership: the tests start their own etcd (the system service is not needed)
  openmpi-bin libopenmpi-dev          # pipeline stages across machines (hearth ... --pipeline under mpirun)
  iproute2                            # ip netns: the cluster and pipeline tests' network namespaces (as root)
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

# The npm packages, exactly as each folder's package-lock.json pins them (from the npm
# registry), when its node_modules is missing or older than the lock file: tests/js (the npm
# clients the tests run), src/ui (the chat page's libraries and bundler, used at build time),
# tests/ui (puppeteer-core for the browser tests).
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for dir in tests/js src/ui tests/ui; do
  if [ "$REPO_DIR/$dir/package-lock.json" -nt "$REPO_DIR/$dir/node_modules/.package-lock.json" ]; then
    echo "install-deps: npm ci in $dir"
    npm ci --prefix "$REPO_DIR/$dir" --no-audit --no-fund
  else
    echo "install-deps: $dir/node_modules up to date"
  fi
done
