// NEON register blocks of the f32 GEMM (see tensor/gemm.h): up to 6 rows x 16 tokens, 24
// float32x4 accumulators of the 32 q registers. Per 4 k: one q load of each row's 4 weights,
// then per k and token vector one activation load and R fmla by lane (vfmaq_laneq_f32), so
// each weight is loaded once per 4 k and never broadcast separately. NEON is the ARMv8-A
// baseline: no target attribute, usable whenever the active ISA is not scalar.
#if defined(__aarch64__)

#include <arm_neon.h>

#include <array>
#include <utility>

#include "tensor/arm/neon_common.h"
#include "tensor/gemm.h"

// GCC's scheduling before register allocation hoists the next step's activation loads over the
// fmla and then runs out of the 32 q registers: the 6-row loop had ~25 stack loads/stores per
// 4 k (GCC 12). Without it the 6-row loop is 96 fmla + 22 loads + 6 others per 4 k, no spills (the
// out-of-order cores this targets reorder the loads themselves).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns")
#endif

namespace hearth::neon {

namespace {

constexpr int kRows = 6;  // weight rows per register block

// One k step (lane L of the rows' weight vectors) for the 16 tokens at `a`.
template <int R, int L>
HEARTH_NEON_INLINE void step(float32x4_t (&acc)[R][4], const float32x4_t (&w)[R], const float* a) {
    HEARTH_NEON_UNROLL
    for (int v = 0; v < 4; ++v) {
        const float32x4_t av = vld1q_f32(a + 4 * v);
        HEARTH_NEON_UNROLL
        for (int r = 0; r < R; ++r) acc[r][v] = vfmaq_laneq_f32(acc[r][v], av, w[r], L);
    }
}

// C[r][0..16) (+)= sum_k W[r][k] * A[k][0..16): `at` points at a token block's token 0 or 16.
template <int R>
HEARTH_NEON_INLINE void block(const float* wb, int64_t ldw, const float* at, int64_t kc, float* c, int64_t ldc,
                              bool first) {
    float32x4_t acc[R][4];
    HEARTH_NEON_UNROLL
    for (int r = 0; r < R; ++r)
        HEARTH_NEON_UNROLL
        for (int v = 0; v < 4; ++v) acc[r][v] = first ? vdupq_n_f32(0.0f) : vld1q_f32(c + r * ldc + 4 * v);
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4) {
        float32x4_t w[R];
        HEARTH_NEON_UNROLL
        for (int r = 0; r < R; ++r) w[r] = vld1q_f32(wb + r * ldw + k);
        const float* a = at + k * kTokBlock;
        step<R, 0>(acc, w, a);
        step<R, 1>(acc, w, a + kTokBlock);
        step<R, 2>(acc, w, a + 2 * kTokBlock);
        step<R, 3>(acc, w, a + 3 * kTokBlock);
    }
    for (; k < kc; ++k) {
        const float* a = at + k * kTokBlock;
        HEARTH_NEON_UNROLL
        for (int v = 0; v < 4; ++v) {
            const float32x4_t av = vld1q_f32(a + 4 * v);
            HEARTH_NEON_UNROLL
            for (int r = 0; r < R; ++r) acc[r][v] = vfmaq_n_f32(acc[r][v], av, wb[r * ldw + k]);
        }
    }
    HEARTH_NEON_UNROLL
    for (int r = 0; r < R; ++r)
        HEARTH_NEON_UNROLL
        for (int v = 0; v < 4; ++v) vst1q_f32(c + r * ldc + 4 * v, acc[r][v]);
}

// All 16-token vectors of one row block and k chunk: token t lives in block t / 32 (`blk`
// floats apart) at column t % 32, so nt need only be a multiple of 16.
template <int R>
void row_block(const float* wb, int64_t ldw, const float* at, int64_t blk, int64_t nt, int64_t kc, float* c,
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

}  // namespace hearth::neon

#endif  // __aarch64__
