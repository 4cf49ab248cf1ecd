#!/usr/bin/env bash
# The aarch64 build and its unit suite under emulation (`make test-aarch64`; not part of
# `make test`, it is slow): installs Debian's cross compiler, qemu-user and the arm64
# (multiarch) libraries the build needs, cross-compiles hearth and hearth_tests with
# cmake/aarch64-linux-gnu.cmake into build-aarch64/ (AARCH64_BUILD_DIR), then runs
# hearth_tests under qemu-aarch64 twice: on qemu's "max" CPU (with the dot-product
# extension: the neon-dotprod kernels) and on a Cortex-A53 (ARMv8.0, no sdot: the plain
# NEON kernels). The tests that start `hearth` as a child get the cross-built binary through
# a wrapper that runs it under qemu too (build-aarch64/hearth-emulated), so no binfmt_misc
# registration is needed.
#
# The first CPU runs the whole suite; the second (no sdot) the suites that reach the kernels
# (kernels, quantizers, matmul, every model architecture, the CLI's greedy ids per family,
# batched = solo), since what differs between the two runs is only the int8 dot kernels.
#
# Environment: JOBS (build jobs, default nproc), AARCH64_CPUS (default "max cortex-a53"),
# AARCH64_FILTER (gtest filter of the first run, default everything but what is excluded
# below), AARCH64_FILTER_REST (the other runs; '*' for everything). Idempotent: packages are
# installed only when missing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AARCH64_BUILD_DIR:-$REPO/build-aarch64}"
JOBS="${JOBS:-$(nproc)}"
CPUS="${AARCH64_CPUS:-max cortex-a53}"

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# ---- Packages: the host's cross tools, then the target's libraries (Debian multiarch).
HOST_PACKAGES=(crossbuild-essential-arm64 qemu-user cmake make pkg-config nlohmann-json3-dev libcli11-dev)
ARM64_PACKAGES=(libc6:arm64 libstdc++6:arm64 libgtest-dev:arm64 libgmock-dev:arm64 libcurl4-openssl-dev:arm64
                libssl-dev:arm64 libpcre2-dev:arm64 libboost1.81-dev:arm64)
missing() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
need_update=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "test-aarch64: adding the arm64 architecture to dpkg"
  $SUDO dpkg --add-architecture arm64
  need_update=1
fi
mapfile -t host_missing < <(missing "${HOST_PACKAGES[@]}")
mapfile -t arm_missing < <(missing "${ARM64_PACKAGES[@]}")
if [ ${#host_missing[@]} -gt 0 ] || [ ${#arm_missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  if [ ${#host_missing[@]} -gt 0 ]; then
    echo "test-aarch64: installing ${host_missing[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${host_missing[@]}"
  fi
  if [ ${#arm_missing[@]} -gt 0 ]; then
    echo "test-aarch64: installing ${arm_missing[*]}"
    # --no-remove: the arm64 -dev packages sit beside the host's; never trade one for the other.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-remove "${arm_missing[@]}"
  fi
else
  echo "test-aarch64: cross compiler, qemu-user and the arm64 libraries present"
fi

# ---- Cross build.
LAUNCHER=()
command -v ccache >/dev/null 2>&1 && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$REPO" -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE="$REPO/cmake/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DHEARTH_BENCH=OFF "${LAUNCHER[@]}" >/dev/null
build_start=$(date +%s)
cmake --build "$BUILD" -j "$JOBS" --target hearth hearth_tests
echo "test-aarch64: build took $(( $(date +%s) - build_start )) s"
aarch64-linux-gnu-readelf -h "$BUILD/hearth_tests" | grep -q AArch64 || { echo "test-aarch64: $BUILD/hearth_tests is not an aarch64 binary"; exit 1; }

# ---- The unit suite under qemu-user, once per emulated CPU.
# Excluded, with the reason (everything else runs):
#  - CliAutostart.*: the client starts the daemon by exec'ing /proc/self/exe; under qemu-user
#    that is the aarch64 binary itself, which the host kernel cannot exec without binfmt_misc
#    (the tests that start `hearth` directly use the qemu wrapper instead).
#  - MetricsRoute.ServesTheExpositionWithLoadedModelsAndCounters: process_resident_memory_bytes
#    comes from /proc/self/stat, which qemu-user emulates with zeros in the memory fields.
#  - JsonSchema.RandomPatternsAgreeWithStdRegex: too slow, not failing: 18,000 std::wregex
#    searches take 1.2 s natively and did not finish in 12 minutes under qemu.
EXCLUDE="${AARCH64_EXCLUDE:-CliAutostart.*:MetricsRoute.ServesTheExpositionWithLoadedModelsAndCounters:JsonSchema.RandomPatternsAgreeWithStdRegex}"
FILTER="${AARCH64_FILTER:-*}"
KERNEL_SUITES='Activation.*:NomicBertEmbeddings.*:Cli.*:Stories260K.*:KernelsArm.*:KernelsMulti.*:Matmul*:Quant*'
KERNEL_SUITES+=':Mxfp4.*:Repack*:SyntheticModel.*:Archs/*:Types/*:AllComputable/*:AllWeightTypes/*'
KERNEL_SUITES+=':Models/BatchedEqualsSolo.*:BertEmbeddings.*:DecoderEmbeddings.*'
FILTER_REST="${AARCH64_FILTER_REST:-$KERNEL_SUITES}"
if [ -n "$EXCLUDE" ]; then
  FILTER="$FILTER-$EXCLUDE"
  FILTER_REST="$FILTER_REST-$EXCLUDE"
fi
echo "test-aarch64: excluded: ${EXCLUDE:-nothing}"
QEMU=(qemu-aarch64 -L /)
cd "$REPO"
status=0
for cpu in $CPUS; do
  echo "test-aarch64: hearth_tests under qemu-aarch64 -cpu $cpu (filter $FILTER)"
  start=$(date +%s)
  # QEMU_CPU reaches the qemu of every child process (the hearth wrapper) too.
  if QEMU_CPU="$cpu" "${QEMU[@]}" "$BUILD/hearth_tests" --gtest_filter="$FILTER" --gtest_brief=1; then
    echo "test-aarch64: -cpu $cpu passed in $(( $(date +%s) - start )) s"
  else
    echo "test-aarch64: -cpu $cpu FAILED after $(( $(date +%s) - start )) s"
    status=1
  fi
  FILTER="$FILTER_REST"
done
exit $status
