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
// share the call. Prompt batches keep using the GEMM, which dequantizes from the packed
// layout to exactly the values the original rows give.
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

// Elements [k0, k0 + n) of row r of a packed matrix as floats (k0 and n multiples of 32);
// the values equal dequantize_row on the original row.
void packed_row_to_float(const MatrixView& w, int64_t r, int64_t k0, int64_t n, float* dst);

// y[t * ldy + r] for rows [r0, r1) (multiples of 8) and t < n_tokens, with the activations
// already quantized to Q8_0 (`act` rows act_row_bytes apart). Per token the result is
// the same for any n_tokens.
void packed_matmul_rows(const MatrixView& w, const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                        int64_t ldy, int64_t r0, int64_t r1);

// True when matmul should use w's packed copy now (it has one and the kernel is usable with
// the active ISA).
bool use_packed(const MatrixView& w);

namespace avx512 {
bool cpu_has_vnni();  // AVX512F + BW + VNNI, with the OS saving ZMM state
void q4_0x8_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t act_row_bytes, int nt, float* y,
                 int64_t ldy);
}  // namespace avx512

}  // namespace hearth
