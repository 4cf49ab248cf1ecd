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
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
