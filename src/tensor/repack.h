// Load-time repacking of weight matrices into interleaved row groups for the decode kernels.
//
// GGUF stores Q4_0 row by row in 18-byte blocks (an fp16 scale, then 16 bytes of nibbles),
// so a SIMD kernel that wants several rows at once has to gather scales and quants from
// separate rows, and a kernel that walks one row converts a scale and reduces a register
// every 32 weights. Packed, each group of 8 rows stores, per 32-column block, the 8 scales
// (16 bytes) then the 8 rows' 16 quant bytes (128 bytes): the same 144 bytes as the 8
// original blocks, read in one stream, with the scales converted by one instruction and 4
// rows per 512-bit register. The decode kernel (AVX-512 VNNI) computes 8 rows x up to 8
// tokens per pass over a group; its result for a token does not depend on how many tokens
// share the call. Prompt batches take an int8 GEMM over the same layout (packed_gemm).
// Matrices are only packed where these kernels run; elsewhere matmul reads the rows as
// stored.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/matmul.h"

namespace hearth {

// Rows per packed group.
constexpr int64_t kPackRows = 8;

// Whether `w` can and should be packed on this machine: Q4_0, rows a multiple of 8, the CPU
// has AVX-512 VNNI (the only packed kernel so far), the active ISA is not scalar, and
// HEARTH_REPACK is not "0".
bool repack_wanted(const MatrixView& w);

// Bytes of w's packed copy.
size_t packed_bytes(const MatrixView& w);

// Writes row groups [g0, g1) of w in the packed layout to dst (the whole packed buffer),
// reading the stored rows from `src` (row 8 * g0 first, rows w.row_bytes apart): w's own
// mapping or a copy read from the file.
void repack_groups(const MatrixView& w, const uint8_t* src, uint8_t* dst, int64_t g0, int64_t g1);

// y[t * ldy + r] for rows [r0, r1) (multiples of 8) and t < n_tokens, with the activations
// already quantized to Q8_0 (`act` rows act_row_bytes apart). Per token the result is
// the same for any n_tokens.
void packed_matmul_rows(const MatrixView& w, const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                        int64_t ldy, int64_t r0, int64_t r1);

// Prompt batches (what matmul's GEMM path does for packed matrices): int8 dot products on
// the activations quantized to Q8_0, 8 rows x 16 tokens per register block. Per token the
// result does not depend on the other tokens of the batch.
void packed_gemm(const MatrixView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
                 ThreadPool* pool, MatmulScratch& scratch);

// Activations for packed_gemm, per 16-token block and 32-element block: 8 x 64 bytes (for
// g < 8, token t's elements 4g..4g+3 at 64g + 4t), 16 float scales d_a, 16 int32 offsets
// (8 x the sum of the token's 32 quants).
constexpr size_t kPackActBlockBytes = 8 * 64 + 64 + 64;

// True when matmul should use w's packed copy now (it has one and the kernel is usable with
// the active ISA).
bool use_packed(const MatrixView& w);

namespace avx512 {
bool cpu_has_vnni();  // AVX512F + BW + VNNI, with the OS saving ZMM state
void q4_0x8_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t act_row_bytes, int nt, float* y,
                 int64_t ldy);
// Unpacks a row group for q4_0x8_gemm_block: wu gets K * 8 bytes, dw K / 4 floats.
void q4_0x8_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw);
// out[16 * r + t] for the group's 8 rows r and one 16-token activation block.
void q4_0x8_gemm_block(int64_t K, const uint8_t* wu, const float* dw, const uint8_t* act, float* out16x8);
}  // namespace avx512

}  // namespace hearth
