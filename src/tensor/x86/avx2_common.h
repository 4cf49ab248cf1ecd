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

// Per-file registrations; register_avx2_kernels (avx2.cpp) calls all three.
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

}  // namespace hearth::avx2

#endif  // __x86_64__
