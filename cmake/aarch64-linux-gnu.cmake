# Cross-compiling Hearth for 64-bit ARM Linux with Debian's cross compiler
# (crossbuild-essential-arm64) against Debian's multiarch arm64 libraries (libgtest-dev:arm64,
# libcurl4-openssl-dev:arm64, ... installed into /usr/lib/aarch64-linux-gnu beside the host's).
# scripts/test-aarch64.sh installs them, configures with this file and runs the unit suite
# under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR below).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Multiarch: the target's headers and libraries live in /usr beside the host's, so the root
# path stays "/" and only the library architecture picks them. Programs (node, cmake helpers)
# are the host's.
set(CMAKE_FIND_ROOT_PATH /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# pkg-config (PCRE2) reads the arm64 .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# Host-only packages whose x86 files would otherwise be picked up: MPI (mpicxx is the host's
# compiler wrapper) and Google Benchmark (not installed for arm64).
set(CMAKE_DISABLE_FIND_PACKAGE_MPI ON)
set(CMAKE_DISABLE_FIND_PACKAGE_benchmark ON)

# Test binaries (gtest_discover_tests, CTest) run under user-mode emulation; QEMU_CPU in the
# environment picks the emulated CPU (e.g. cortex-a53: no dot-product extension). The guest's
# libraries are the multiarch ones (-L /: /lib/ld-linux-aarch64.so.1 and libc6:arm64), not the
# cross sysroot's (-L /usr/aarch64-linux-gnu): that one's loader (glibc 2.36-8cross1) would
# load the multiarch libc.so.6 (2.36-9, found through the host's ld.so.cache) and mixing the
# two hangs the first pthread_create.
find_program(HEARTH_QEMU_AARCH64 qemu-aarch64)
if(HEARTH_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${HEARTH_QEMU_AARCH64} -L /)
endif()
