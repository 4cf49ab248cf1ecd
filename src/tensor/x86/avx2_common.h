// Internal to src/tensor/x86/avx2_*.cpp: shared inline helpers for the AVX2+FMA+F16C kernels.
//
// These files are compiled for baseline x86-64 (no -mavx2), so every function and helper
// that uses intrinsics carries a per-function target attribute (HEARTH_AVX2 or
// HEARTH_AVX2_INLINE) and is only ever called after dispatch.cpp has seen the CPUID bits.
#pragma once

#if defined(__x86_64__)

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "tensor/kernel_table.h"

#define HEARTH_AVX2 __attribute__((target("avx2,fma,f16c")))
#define HEARTH_AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) inline

// Full unrolling of the short fixed loops inside a super-block (constant shuffle masks and
// shift counts, no loop-carried bookkeeping).
#if defined(__clang__)
#define HEARTH_UNROLL _Pragma("unroll")
#else
#define HEARTH_UNROLL _Pragma("GCC unroll 8")
#endif

namespace hearth::avx2 {

// Per-file registrations; register_avx2_kernels (avx2.cpp) calls all three, then the
// multi-token kernels (register_avx2_multi_kernels, avx2_multi.cpp).
void register_float_kernels(KernelTable& t);   // F32, F16, BF16 (avx2.cpp)
void register_block_kernels(KernelTable& t);   // Q4_0 .. Q8_1 (avx2_blocks.cpp)
void register_kquant_kernels(KernelTable& t);  // Q2_K .. Q6_K, Q8_K (avx2_kquants.cpp)

// ---- Reductions ----

HEARTH_AVX2_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

HEARTH_AVX2_INLINE float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

HEARTH_AVX2_INLINE __m256 abs_ps(__m256 v) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

// ---- Scalar half conversion (F16C) ----

HEARTH_AVX2_INLINE float h2f(fp16_t h) { return _cvtsh_ss(h); }

// ---- Integer dot products ----

// Eight int32 partial sums of the 32 products of two signed int8 vectors: maddubs wants
// an unsigned left operand, so take |x| and move x's sign onto y. Exact as long as y has
// no -128 (activation quantizers produce [-127, 127]); x may be anything, since |-128| is
// read as unsigned 128.
HEARTH_AVX2_INLINE __m256i dot_i8(__m256i x, __m256i y) {
    const __m256i ax = _mm256_sign_epi8(x, x);
    const __m256i sy = _mm256_sign_epi8(y, x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

// Same for an unsigned x (values up to 127 keep every int16 pair sum exact).
HEARTH_AVX2_INLINE __m256i dot_u8i8(__m256i x, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}

// Signed weights q - o as unsigned q: sum (q - o) y = sum q y - sum o y, both in int16
// pairs (|pair| <= 2 * 31 * 128 fits), then one widening madd.
HEARTH_AVX2_INLINE __m256i dot_offset_u8i8(__m256i q, __m256i y, char offset) {
    const __m256i p = _mm256_maddubs_epi16(q, y);
    const __m256i c = _mm256_maddubs_epi16(_mm256_set1_epi8(offset), y);
    return _mm256_madd_epi16(_mm256_sub_epi16(p, c), _mm256_set1_epi16(1));
}

// ---- Bit unpacking ----

// 16 bytes of packed nibbles -> 32 bytes: the low nibbles in bytes 0..15, the high nibbles
// in bytes 16..31 (the Q4_0/Q4_1/Q5_x element order).
HEARTH_AVX2_INLINE __m256i unpack_nibbles_16(const uint8_t* p) {
    // Broadcast-load (no shuffle uop), then shift only the upper copy right by 4.
    const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256i shifted = _mm256_srlv_epi64(both, _mm256_setr_epi64x(0, 0, 4, 4));
    return _mm256_and_si256(shifted, _mm256_set1_epi8(0x0f));
}

// 32 bits -> 32 bytes, byte j = 0xff when bit j is set, else 0.
HEARTH_AVX2_INLINE __m256i expand_bits_32(uint32_t bits) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

// The 5th bits of a Q5 block as 0x10 per byte.
HEARTH_AVX2_INLINE __m256i q5_high_bits(const uint8_t* qh) {
    uint32_t bits;
    std::memcpy(&bits, qh, 4);
    return _mm256_and_si256(expand_bits_32(bits), _mm256_set1_epi8(0x10));
}

// ---- Rounding ----

// roundf() on every lane: nearest, ties away from zero (what ggml's reference Q8_0/Q8_1
// quantizers use). Exact: v - trunc(v) is representable, so the tie test is exact.
HEARTH_AVX2_INLINE __m256 round_half_away(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = abs_ps(_mm256_sub_ps(v, t));
    const __m256 one = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
    const __m256 up = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one);
    return _mm256_add_ps(t, up);
}

// Four vectors of 8 int32 (values in int8 range) -> 32 int8 in order a, b, c, d.
HEARTH_AVX2_INLINE __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b);   // a0-3 b0-3 | a4-7 b4-7 (int16)
    const __m256i cd = _mm256_packs_epi32(c, d);   // c0-3 d0-3 | c4-7 d4-7
    const __m256i v = _mm256_packs_epi16(ab, cd);  // a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Keeps the compiler from fusing a multiply with a following add/sub into an FMA (GCC does
// contract intrinsics under target("fma")), for the dequantizers that must round exactly
// like the scalar reference's unfused d * q - m. (With today's formats d * q happens to be
// exact, so this is a guard rather than a fix.)
HEARTH_AVX2_INLINE __m256 no_contract(__m256 v) {
    __asm__("" : "+x"(v));
    return v;
}

// ---- Loads and scale fields (shared by the single-row and the multi-token kernels)

HEARTH_AVX2_INLINE __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
HEARTH_AVX2_INLINE __m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// Shuffle masks over a register holding 8 int16 scales in both 128-bit lanes:
// kWordMask[k]  broadcasts scale k to all 16 words (one scale per 32 elements, Q4_K/Q5_K);
// kPairMask[k]  gives scale 2k in the low lane and 2k+1 in the high lane (one scale per
//               16 elements, Q2_K/Q3_K/Q6_K: a 32-element maddubs result has elements
//               0..15 in its low lane).
struct ScaleMasks {
    alignas(32) uint8_t word[8][32];
    alignas(32) uint8_t pair[4][32];
    constexpr ScaleMasks() : word{}, pair{} {
        for (int k = 0; k < 8; ++k)
            for (int b = 0; b < 32; ++b) word[k][b] = static_cast<uint8_t>(2 * k + (b & 1));
        for (int k = 0; k < 4; ++k)
            for (int b = 0; b < 32; ++b) pair[k][b] = static_cast<uint8_t>(4 * k + (b >= 16 ? 2 : 0) + (b & 1));
    }
};
constexpr ScaleMasks kMasks{};

HEARTH_AVX2_INLINE __m256i word_scale(__m256i sc, int k) {
    return _mm256_shuffle_epi8(sc, _mm256_load_si256(reinterpret_cast<const __m256i*>(kMasks.word[k])));
}
HEARTH_AVX2_INLINE __m256i pair_scale(__m256i sc, int k) {
    return _mm256_shuffle_epi8(sc, _mm256_load_si256(reinterpret_cast<const __m256i*>(kMasks.pair[k])));
}

// int32 partial sums of scale * (q . y) for one 32-element chunk.
HEARTH_AVX2_INLINE __m256i scaled_chunk(__m256i q, const int8_t* y, __m256i scale16) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q, load32(y)), scale16);
}

HEARTH_AVX2_INLINE __m256i bsums16(const BlockQ8_K& y) { return load32(y.bsums); }

// Q4_K/Q5_K packed 6-bit scales and mins -> bytes 0..7 scales, 8..15 mins.
HEARTH_AVX2_INLINE __m128i k4_scales_mins(const uint8_t* s) {
    uint32_t w[3];
    std::memcpy(w, s, 12);
    const uint32_t sc_lo = w[0] & 0x3f3f3f3fu;
    const uint32_t mn_lo = w[1] & 0x3f3f3f3fu;
    const uint32_t sc_hi = (w[2] & 0x0f0f0f0fu) | ((w[0] >> 6) & 0x03030303u) << 4;
    const uint32_t mn_hi = ((w[2] >> 4) & 0x0f0f0f0fu) | ((w[1] >> 6) & 0x03030303u) << 4;
    return _mm_setr_epi32(static_cast<int>(sc_lo), static_cast<int>(sc_hi), static_cast<int>(mn_lo),
                          static_cast<int>(mn_hi));
}

// Q3_K packed 6-bit scales -> 16 signed bytes (scale - 32).
HEARTH_AVX2_INLINE __m128i k3_scales(const uint8_t* s) {
    uint32_t w[3];
    std::memcpy(w, s, 12);
    const uint32_t s0 = (w[0] & 0x0f0f0f0fu) | (w[2] & 0x03030303u) << 4;
    const uint32_t s1 = (w[1] & 0x0f0f0f0fu) | ((w[2] >> 2) & 0x03030303u) << 4;
    const uint32_t s2 = ((w[0] >> 4) & 0x0f0f0f0fu) | ((w[2] >> 4) & 0x03030303u) << 4;
    const uint32_t s3 = ((w[1] >> 4) & 0x0f0f0f0fu) | ((w[2] >> 6) & 0x03030303u) << 4;
    const __m128i v = _mm_setr_epi32(static_cast<int>(s0), static_cast<int>(s1), static_cast<int>(s2),
                                     static_cast<int>(s3));
    return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

// Four consecutive fp16 fields packed into one 64-bit word (integer loads and shifts: far
// cheaper than vector word inserts, which all compete for the shuffle port).
HEARTH_AVX2_INLINE uint64_t pack4(fp16_t a, fp16_t b, fp16_t c, fp16_t d) {
    return uint64_t{a} | uint64_t{b} << 16 | uint64_t{c} << 32 | uint64_t{d} << 48;
}

// Lane k of a 4-float vector broadcast to 8 lanes.
HEARTH_AVX2_INLINE __m256 lane(__m128 v, int k) {
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), _mm256_set1_epi32(k));
}

// Weight rows stream from DRAM: prefetch the block ~1 KiB ahead, every line of it, so memory
// latency overlaps the integer work (the hardware prefetcher alone falls behind; measured
// ~2x on Q4_0 decode over a 0.5 GB weight set).
template <typename Block>
HEARTH_AVX2_INLINE void prefetch_ahead(const Block* b) {
    const char* p = reinterpret_cast<const char*>(b) + 1024;
    for (size_t off = 0; off < sizeof(Block); off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
}

}  // namespace hearth::avx2

#endif  // __x86_64__
