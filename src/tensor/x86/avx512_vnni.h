// Internal to src/tensor/x86/avx512_packed*.cpp: the target attributes of the AVX-512 VNNI
// kernels over packed weights. The files are compiled for baseline x86-64; every kernel
// carries these attributes and runs only when avx512::cpu_has_vnni() (tensor/repack.h).
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_*(), which -Wall
// reports as "may be used uninitialized" in every caller: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define HEARTH_VNNI512 __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c")))
#define HEARTH_VNNI512_INLINE __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c"), always_inline)) inline
#endif
