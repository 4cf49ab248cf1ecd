// Load-time repacking of weight matrices into interleaved row groups, and the matmuls over
// them (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K).
//
// GGUF stores these types row by row in small blocks (Q4_0: an fp16 scale, then 16 bytes of
// nibbles), so a SIMD kernel that wants several rows at once has to gather scales and
// quants from separate rows, and a kernel that walks one row converts a scale and reduces a
// register every 32 weights. Packed, each group of 16 rows stores, per block, the 16 rows'
// scales and then their quants as 64-byte vectors, vector g holding word g (4 bytes) of
// every row: as many bytes as the original blocks (Q4_K: scales/mins unpacked to bytes, +3%;
// Q6_K: nibbles and 2-bit parts in separate vectors, see x86/avx512_packed_q6k.cpp),
// streamed in one pass. Q8_0 bytes are stored + 128 so every kernel multiplies unsigned
// weights (vpdpbusd) and subtracts bias x sum(activations).
//
// Each type has a decode kernel (one int32 lane per row, activation words broadcast) and a
// prompt kernel (one lane per token of a 16-token block, weight words broadcast). Both sum
// every block exactly in int32 and then do the same float operations per (row, token) in
// the same order, so a token's result is bit-identical whichever kernel computes it and
// whatever else is in its batch.
//
// The kernel families run these layouts (PackedKernels): on x86-64 AVX-512 VNNI (zmm, 16
// rows per register) and the AVX2 twins (x86/avx2_packed_impl.h; ymm, two registers of 8 rows
// per 64-byte vector) with vpdpbusd where the CPU has AVX-VNNI, else vpmaddubsw; on aarch64
// the NEON twins (arm/neon_packed_impl.h; four 128-bit registers of 4 rows per 64-byte
// vector) with sdot where the CPU has the dot-product extension, else smull/smlal. All read
// the same layout and give the same bits (exact integer sums, the same float operations),
// so a packed matrix is valid for each of them; the family is fixed for the process
// (HEARTH_ISA, tensor/cpu.h). Without any of them (scalar) matmul reads the rows as stored.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/cpu.h"
#include "tensor/matmul.h"

namespace hearth {

class ThreadPool;

// One family's kernels over the packed layout (signatures: the avx512 functions below).
struct PackedKernels {
    using RowsFn = void (*)(int64_t K, const uint8_t* group, const uint8_t* act, size_t act_row_bytes, const float* da,
                            const int32_t* off, int nt, float* y, int64_t ldy);
    using RowsQ6Fn = void (*)(int64_t K, const uint8_t* group, const uint8_t* act, size_t act_row_bytes, int nt, float* y,
                              int64_t ldy);
    using UnpackFn = void (*)(int64_t K, const uint8_t* group, uint8_t* wu, float* dw);
    // out[16 * r + t] for rows [r0, r0 + 8) of the unpacked group and one 16-token block.
    using BlockFn = void (*)(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out);
    const char* name;
    RowsFn q4_0_rows, q8_0_rows, q4_k_rows;  // Q4_K: `off` is the per-super-block sub-block sums
    RowsQ6Fn q6_k_rows;
    UnpackFn q4_0_unpack, q8_0_unpack, q4_k_unpack, q6_k_unpack;
    BlockFn q4_0_block, q8_0_block, q4_k_block, q6_k_block;
    // Q5_K (Q4_K's layout plus a plane of high bits, see repack.cpp): null in a family
    // without it, whose process then keeps Q5_K matrices as stored.
    RowsFn q5_k_rows = nullptr;
    UnpackFn q5_k_unpack = nullptr;
    BlockFn q5_k_block = nullptr;
};

// Whether family k has kernels for packed matrices of type t.
bool packed_supports(const PackedKernels& k, GgmlType t);

// The packed kernels of family f on this CPU, or null (scalar, or a family the CPU lacks).
const PackedKernels* packed_kernels_for(IsaFamily f);
// The kernels packed matrices use in this process: isa_family()'s (avx2-vnni with
// HEARTH_VNNI=0: the plain AVX2 ones), null where there are none or HEARTH_REPACK=0.
const PackedKernels* packed_kernels();

// Rows per packed group.
constexpr int64_t kPackRows = 16;

// Whether `w` can and should be packed on this machine: Q4_0, Q8_0, Q4_K or Q6_K, rows a multiple of
// 16, packed_kernels() exists, the active ISA is not scalar.
bool repack_wanted(const MatrixView& w);

// Bytes of w's packed copy.
size_t packed_bytes(const MatrixView& w);

// Writes row groups [g0, g1) of w in the packed layout to dst (the whole packed buffer),
// reading the stored rows from `src` (row 16 * g0 first, rows w.row_bytes apart): w's own
// mapping or a copy read from the file.
void repack_groups(const MatrixView& w, const uint8_t* src, uint8_t* dst, int64_t g0, int64_t g1);

// True when matmul should use w's packed copy now (it has one and the kernels are usable
// with the active ISA).
bool use_packed(const MatrixView& w);

// y[t * ldy + r] = W[r] . x[t] over a packed matrix, for all rows and t < n_tokens, with
// activations rounded through Q8_0. `prompt` picks the kernel (the results are the same).
void packed_matmul(const MatrixView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
                   ThreadPool* pool, MatmulScratch& scratch, bool prompt);
// The same with one family's kernels (tests compare the families on one machine).
void packed_matmul(const MatrixView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
                   ThreadPool* pool, MatmulScratch& scratch, bool prompt, const PackedKernels& k);

namespace avx2_packed {
const PackedKernels& packed_kernels();  // plain AVX2+FMA+F16C (x86/avx2_packed.cpp)
}
namespace avx2vnni_packed {
const PackedKernels& packed_kernels();  // AVX2 with AVX-VNNI (x86/avx2_packed_vnni.cpp)
}
namespace neon_packed {
const PackedKernels& packed_kernels();  // plain ARMv8-A NEON (arm/neon_packed.cpp; aarch64 only)
}
namespace neon_dotprod_packed {
const PackedKernels& packed_kernels();  // NEON with sdot (arm/neon_packed_dotprod.cpp; aarch64 only)
}

namespace avx512 {
bool cpu_has_vnni();  // AVX512F + BW + VNNI, with the OS saving ZMM state

// Decode kernel: one row group, nt tokens. act: Q8_0 rows act_row_bytes apart; da / off:
// per token (nb apart) and block, the activation scale and 8 x the sum of its quants.
void q4_0x16_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t act_row_bytes, const float* da,
                  const int32_t* off, int nt, float* y, int64_t ldy);
void q8_0x16_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t act_row_bytes, const float* da,
                  const int32_t* off, int nt, float* y, int64_t ldy);

// Q4_K decode kernel: act in Q8_K rows; da / bs: per token (nb super-blocks apart) the
// super-block's d and its 8 sub-block sums of quants.
void q4_kx16_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t act_row_bytes, const float* da,
                  const int32_t* bs, int nt, float* y, int64_t ldy);

// Prompt kernel. Activations per 16-token block and 32-column block (kPackActBlockBytes):
// 8 x 64 bytes (for g < 8, token t's elements 4g..4g+3 at 64g + 4t), 16 float d_a, 16 int32
// offsets. q4_0x16_unpack expands a row group once (wu: K * 16 bytes, dw: K / 2 floats);
// q4_0x16_gemm_block gives out[16 * r + t] for rows r of [r0, r0 + 8) and one token block.
constexpr size_t kPackActBlockBytes = 8 * 64 + 64 + 64;
void q4_0x16_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw);
// Q4_K: activations per 16-token block and super-block (kPackActSuperBytes): 64 words x 64
// bytes (token t's elements 4w..4w+3 at 64w + 4t), 16 float d_a, then 8 x 16 int32
// sub-block sums. Unpacked group per super-block (kPackUnpackedSuperBytes): the 64 weight
// words as 16-row vectors, then the scales and mins as packed; dw: per super-block 16 d then
// 16 dmin.
constexpr size_t kPackActSuperBytes = 4096 + 64 + 512;
constexpr size_t kPackUnpackedSuperBytes = 4096 + 256;
void q4_kx16_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw);
void q4_kx16_gemm_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out);
// Q5_K: a packed super-block is Q4_K's (kPackQ4SuperBytes: the nibbles) followed by 8 x 64
// bytes of high bits (vector q: every row's qh[4q..4q+3]). Decode as q4_kx16_rows; the unpack
// gives Q4_K's unpacked layout with 5-bit values, multiplied by q4_kx16_gemm_block.
constexpr size_t kPackQ4SuperBytes = 64 + 256 + 2048;
constexpr size_t kPackQ5SuperBytes = kPackQ4SuperBytes + 512;
void q5_kx16_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t act_row_bytes, const float* da,
                  const int32_t* bs, int nt, float* y, int64_t ldy);
void q5_kx16_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw);
void q8_0x16_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw);
void q4_0x16_gemm_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out);

// Q6_K: packed super-block of a group (kPackQ6SuperBytes, the stored size). Decode: act in
// Q8_K rows (d and bsums read from them), up to 4 tokens per pass. Prompt: activations per
// 16-token block and super-block (kPackActQ6SuperBytes): 64 words x 64 bytes, 16 float d_a,
// 16 x 16 int32 bsums; unpacked like Q4_K (kPackUnpackedSuperBytes: 64 word vectors, then
// int8 scales [sub-block][row]); dw: 16 d per super-block.
constexpr size_t kPackQ6SuperBytes = 32 + 256 + 2048 + 1024;
constexpr size_t kPackActQ6SuperBytes = 4096 + 64 + 1024;
void q6_kx16_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t act_row_bytes, int nt, float* y,
                  int64_t ldy);
void q6_kx16_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw);
void q6_kx16_gemm_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out);
}  // namespace avx512

}  // namespace hearth
