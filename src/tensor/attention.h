// Internal to model/ops (attention): the per-KV-tile math of paged attention in f32, with a
// per-ISA dispatch like tensor/gemm.h. The caller converts one tile of up to kAttnTile
// cached positions (K and V rows of one KV head) to f32 once, packs K with pack_k, and then
// runs `block` for each query token whose range overlaps the tile: the g query heads of
// one GQA group against the tile, updating each head's online-softmax state
// (running max m, running sum l, unnormalized output acc[d]).
//
// Every function is deterministic and per token: a token's result depends only on its own
// q, its K/V and the tile order (ascending positions), never on other tokens or threads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hearth {

// Positions per tile (one zmm of scores).
constexpr int kAttnTile = 16;

struct AttnKernel {
    // Packs K rows k[i * d .. i * d + d) for tile positions i in [i0, i1) into the kernel's
    // layout kt (d x kAttnTile floats: kt[c * kAttnTile + i] = k[i * d + c]); positions
    // outside [i0, i1) become zero (their rows of k are never read).
    void (*pack_k)(const float* k, int64_t d, int i0, int i1, float* kt);
    // One tile for the g heads q[j * d ..] (f32, already rounded through the cache type's
    // vec_dot_type): scores s = (q . k) * scale, then cap * tanh(s / cap) when cap > 0;
    // positions outside [i0, i1) are masked out. Online softmax per head j: m[j] (start at
    // -inf), l[j] (start at 0), acc[j * d ..] (start at 0) += exp(s - m) * v. v holds V rows
    // v[i * d ..] of tile position i; only rows in [i0, i1) are read. i0 < i1 required.
    void (*block)(const float* q, int64_t g, int64_t d, const float* kt, const float* v, int i0, int i1, float scale,
                  float cap, float* m, float* l, float* acc);
    // Optional fast path for an F16 cache (nullptr: use the type's to_float, then pack_k):
    // K rows at k + i * stride (d halves each) packed into kt as pack_k would, V rows
    // converted to v[i * d ..], for tile positions i in [i0, i1). Same values as to_float.
    void (*load_f16)(const uint8_t* k, const uint8_t* v, size_t stride, int64_t d, int i0, int i1, float* kt,
                     float* vf);
};

// The kernel for head_dim d on this CPU: AVX-512 when the CPU has it, the active ISA is not
// scalar and d is a multiple of 16; else AVX2 when the active ISA is AVX2 and d is a multiple
// of 8; else the portable scalar one. HEARTH_ATTN=0 in the environment forces scalar.
const AttnKernel& attn_kernel(int64_t d);

namespace scalar {
extern const AttnKernel attn;
}
namespace avx512 {
bool cpu_supported();  // tensor/gemm.h's CPUID + XCR0 check
extern const AttnKernel attn;  // d % 16 == 0 only; all-null off x86-64
// exp on 16 lanes as used by the kernel (exposed for tests; off x86-64 falls back to std::exp).
void attn_exp16(const float* x, float* y);
}  // namespace avx512
namespace avx2 {
extern const AttnKernel attn;  // d % 8 == 0 only; all-null off x86-64
void attn_exp8(const float* x, float* y);  // the kernel's exp on 8 lanes (tests)
}  // namespace avx2

}  // namespace hearth
