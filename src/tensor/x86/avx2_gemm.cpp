// AVX2+FMA register blocks of the f32 GEMM (see tensor/gemm.h) for CPUs without AVX-512: 6
// rows x 16 tokens (12 ymm accumulators, 2 activation vectors, 1 broadcast). Compiled for
// baseline x86-64 with per-function target attributes; used only after CPUID dispatch.
#include "tensor/gemm.h"

#include <array>
#include <utility>

#if defined(__x86_64__)

#include "tensor/x86/avx2_common.h"

namespace hearth::avx2 {

namespace {

constexpr int kRows = 6;

// C[r][0..16) (+)= sum_k W[r][k] * A[k][0..16): `at` points at the block's token 0 or 16.
template <int R>
HEARTH_AVX2_INLINE void block(const float* wb, int64_t ldw, const float* at, int64_t kc, float* c, int64_t ldc,
                              bool first) {
    __m256 acc[R][2];
    HEARTH_UNROLL
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < 2; ++v) acc[r][v] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(c + r * ldc + 8 * v);
    for (int64_t k = 0; k < kc; ++k) {
        const __m256 a0 = _mm256_loadu_ps(at + k * kTokBlock), a1 = _mm256_loadu_ps(at + k * kTokBlock + 8);
        HEARTH_UNROLL
        for (int r = 0; r < R; ++r) {
            const __m256 b = _mm256_broadcast_ss(wb + r * ldw + k);
            acc[r][0] = _mm256_fmadd_ps(b, a0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(b, a1, acc[r][1]);
        }
    }
    HEARTH_UNROLL
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < 2; ++v) _mm256_storeu_ps(c + r * ldc + 8 * v, acc[r][v]);
}

template <int R>
HEARTH_AVX2 void row_block(const float* wb, int64_t ldw, const float* at, int64_t blk, int64_t nt, int64_t kc, float* c,
                           int64_t ldc, bool first) {
    for (int64_t t = 0; t < nt; t += 16) block<R>(wb, ldw, at + (t / 32) * blk + t % 32, kc, c + t, ldc, first);
}

template <int... Rs>
constexpr auto make_table(std::integer_sequence<int, Rs...>) {
    return std::array<GemmRowBlockFn, sizeof...(Rs)>{&row_block<Rs + 1>...};
}

}  // namespace

void gemm_f32(const MatrixView& w, const float* act_t, int64_t /*ntp*/, int64_t n_tokens, float* y, int64_t ldy,
              int64_t r0, int64_t r1) {
    static constexpr auto table = make_table(std::make_integer_sequence<int, kRows>{});
    gemm_panels(w, act_t, n_tokens, y, ldy, r0, r1, kRows, table.data());
}

}  // namespace hearth::avx2

#else

namespace hearth::avx2 {
void gemm_f32(const MatrixView&, const float*, int64_t, int64_t, float*, int64_t, int64_t, int64_t) {}
}  // namespace hearth::avx2

#endif
