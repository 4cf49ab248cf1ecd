// AVX-512F register blocks of the f32 GEMM (see tensor/gemm.h): 12 rows x 32 tokens. Compiled
// for baseline x86-64 with per-function target attributes; called only when CPUID and XCR0
// report AVX-512 state.
#include "tensor/gemm.h"
#include "tensor/cpu.h"

#include <algorithm>
#include <array>
#include <utility>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

#define HEARTH_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define HEARTH_AVX512_INLINE __attribute__((target("avx512f,avx2,fma,f16c"), always_inline)) inline

namespace hearth::avx512 {

namespace {

constexpr int kRows = 12;  // weight rows per register block

// C[r][t..t+16*NV) (+)= sum_k W[r][k] * A[k][t..]: R x NV accumulators stay in registers.
template <int R, int NV>
HEARTH_AVX512_INLINE void block(const float* wb, int64_t ldw, const float* at, int64_t kc, float* c, int64_t ldc,
                                bool first) {
    __m512 acc[R][NV];
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[r][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + r * ldc + 16 * v);
    for (int64_t k = 0; k < kc; ++k) {
        __m512 a[NV];
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) a[v] = _mm512_loadu_ps(at + k * kTokBlock + 16 * v);
#pragma GCC unroll 12
        for (int r = 0; r < R; ++r) {
            const __m512 b = _mm512_set1_ps(wb[r * ldw + k]);
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(b, a[v], acc[r][v]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

// All token vectors of one row block and k chunk. `at` is the chunk's start in the first
// token block; token blocks are `blk` floats apart.
template <int R>
HEARTH_AVX512 void row_block(const float* wb, int64_t ldw, const float* at, int64_t blk, int64_t nt, int64_t kc,
                             float* c, int64_t ldc, bool first) {
    int64_t t = 0;
    for (; t + 32 <= nt; t += 32) block<R, 2>(wb, ldw, at + (t / 32) * blk, kc, c + t, ldc, first);
    if (t < nt) block<R, 1>(wb, ldw, at + (t / 32) * blk, kc, c + t, ldc, first);
}

template <int... Rs>
constexpr auto make_table(std::integer_sequence<int, Rs...>) {
    return std::array<GemmRowBlockFn, sizeof...(Rs)>{&row_block<Rs + 1>...};
}

}  // namespace

bool cpu_supported() { return cpu_has_avx512f() && isa_family() >= IsaFamily::Avx512; }

bool cpu_has_avx512f() {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    if (!(c & (1u << 27))) return false;  // OSXSAVE
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6u) != 0xE6u) return false;  // XMM, YMM, opmask and both ZMM halves saved by the OS
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    return b & (1u << 16);  // AVX512F
}

HEARTH_AVX512 void gemm_f32(const MatrixView& w, const float* act_t, int64_t /*ntp*/, int64_t n_tokens, float* y,
                            int64_t ldy, int64_t r0, int64_t r1) {
    static constexpr auto table = make_table(std::make_integer_sequence<int, kRows>{});
    gemm_panels(w, act_t, n_tokens, y, ldy, r0, r1, kRows, table.data());
}

}  // namespace hearth::avx512

#else

namespace hearth::avx512 {
bool cpu_supported() { return false; }
bool cpu_has_avx512f() { return false; }
void gemm_f32(const MatrixView&, const float*, int64_t, int64_t, float*, int64_t, int64_t, int64_t) {}
}  // namespace hearth::avx512

#endif
