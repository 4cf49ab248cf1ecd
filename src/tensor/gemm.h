// Internal to tensor/: the batched (prefill) product as a register-blocked GEMM over f32.
// Weight rows are dequantized chunk by chunk into a small f32 buffer (L1) and multiplied
// with the batch's activations, transposed to [k][token] so one vector holds 16 tokens:
// every weight value is broadcast once per 16 or 32 tokens and each FMA does 16 useful
// multiply-adds, instead of re-reading and unpacking the weights for every token.
//
// The activations are first rounded through the weight type's vec_dot_type (what the
// single-token path multiplies with), so both paths see the same activation values and
// differ only in summation order (~1e-6 relative): a token's result does not depend on
// which path its batch took.
#pragma once

#include <cstdint>

#include "tensor/matmul.h"

namespace hearth {

// Activations are packed in blocks of kTokBlock tokens, each block [k][kTokBlock] contiguous:
// token t, column k is act_t[(t / 32) * K * 32 + k * 32 + t % 32], so a
// block streams through the cache without set conflicts. ntp: n_tokens rounded up to 32,
// padding zero.
constexpr int64_t kTokBlock = 32;

// y[t * ldy + r] for r in [r0, r1), t < n_tokens. `w.type` must have a to_float kernel.
using GemmFn = void (*)(const MatrixView& w, const float* act_t, int64_t ntp, int64_t n_tokens, float* y, int64_t ldy,
                        int64_t r0, int64_t r1);

// The GEMM for this CPU (AVX-512F, else AVX2+FMA; NEON on aarch64), or null: then matmul uses
// the per-row dot kernels. Null when the active ISA is scalar or HEARTH_GEMM=0 is set in the
// environment; HEARTH_GEMM=avx2 picks the AVX2 kernel on an AVX-512 CPU (for comparisons).
GemmFn gemm_kernel();
// The GEMM for batches of type `t`, or null (use the per-row kernels): the AVX2 and NEON GEMMs
// only take F32/F16/BF16 weights; for quantized types the int8 multi-token dot kernels
// (vec_dot_multi) measured as fast or faster on AVX2 (on ARM: the packed or multi-token ones).
GemmFn gemm_kernel(GgmlType t);

// The ISA-neutral loop around a GEMM kernel's register blocks. A thread's rows [r0, r1) are
// walked in panels of kGemmPanelRows whose outputs stay in L2: per 256-column chunk the
// activations are read once per panel, each block of `block_rows` rows is dequantized into
// an L1 buffer (the type's to_float) while the next block's bytes are prefetched, and the
// results go out as contiguous runs of a token's rows. table[R - 1] computes R rows:
// c[r * ldc + t] (+)= sum_k wb[r * ldw + k] * at[(t / 32) * blk + k * 32 + t % 32] for
// t < nt (a multiple of 16, padding tokens zero), k < kc; `first` starts from zero.
using GemmRowBlockFn = void (*)(const float* wb, int64_t ldw, const float* at, int64_t blk, int64_t nt, int64_t kc,
                                float* c, int64_t ldc, bool first);
constexpr int64_t kGemmPanelRows = 96;
void gemm_panels(const MatrixView& w, const float* act_t, int64_t n_tokens, float* y, int64_t ldy, int64_t r0,
                 int64_t r1, int block_rows, const GemmRowBlockFn* table);

// Smallest batch for which matmul takes the GEMM path.
constexpr int64_t kGemmMinTokens = 16;

namespace avx512 {
bool cpu_supported();    // AVX-512 F with the OS saving ZMM state, and HEARTH_ISA allows it
bool cpu_has_avx512f();  // the CPUID check alone
void gemm_f32(const MatrixView& w, const float* act_t, int64_t ntp, int64_t n_tokens, float* y, int64_t ldy, int64_t r0,
              int64_t r1);
}  // namespace avx512
namespace avx2 {
// F16 weights times activations rounded through F16 and held as f32 (x86/avx2.cpp): the
// results of the AVX2 table's F16 vec_dot / vec_dot_multi bit for bit (the same values, the
// same operations), without converting every activation again for every row.
float vec_dot_f16_f32act(int64_t n, const void* w, const void* a);
void vec_dot_multi_f16_f32act(int64_t n, const void* w, const uint8_t* act, size_t stride, int nt, float* out);
// Needs AVX2+FMA (detected_isa() == Isa::Avx2).
void gemm_f32(const MatrixView& w, const float* act_t, int64_t ntp, int64_t n_tokens, float* y, int64_t ldy, int64_t r0,
              int64_t r1);
}  // namespace avx2
namespace neon {
// aarch64 only (arm/neon_gemm.cpp): 6 rows x 16 tokens, NEON fmla by lane.
void gemm_f32(const MatrixView& w, const float* act_t, int64_t ntp, int64_t n_tokens, float* y, int64_t ldy, int64_t r0,
              int64_t r1);
}  // namespace neon

}  // namespace hearth
