// AVX-512 VNNI kernel for packed Q4_0 (tensor/repack.h): 8 weight rows x up to 8 tokens per
// pass over a row group, activations in Q8_0. Compiled for baseline x86-64 with target
// attributes; called only when cpu_has_vnni().
//
// One 512-bit register holds 4 rows' 16 quant bytes of a block. Its low nibbles are elements
// 0..15 of each row and its high nibbles elements 16..31, so int32 lane l of row r (after
// vpdpbusd against the activation's first / second 16 bytes broadcast to every 128-bit lane)
// sums elements 4l..4l+3 and 16+4l..16+4l+3: exact integer sums of nibble x activation.
// The Q4_0 offset (value = nibble - 8) is taken off per lane as 8 x the same activations'
// sum. Each lane is then scaled by d_w(row) x d_a and accumulated in float; a row's 4 lanes
// are added at the end. Every token's float operations are the same whatever the number of
// tokens in the call, so batched and single-token decode give identical results.
#include "tensor/repack.h"

#include "tensor/types.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_*(), which -Wall
// reports as "may be used uninitialized" in every caller: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define HEARTH_VNNI512 __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c")))
#define HEARTH_VNNI512_INLINE __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c"), always_inline)) inline

namespace hearth::avx512 {
namespace {

constexpr size_t kGroupBlockBytes = 144;
constexpr size_t kActBlockBytes = kPackActBlockBytes;

template <int NT>
HEARTH_VNNI512_INLINE void rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, float* y,
                                int64_t ldy) {
    const int64_t nb = K / 32;
    const BlockQ8_0* a[NT];
    __m512 acc_a[NT], acc_b[NT];
    for (int t = 0; t < NT; ++t) {
        a[t] = reinterpret_cast<const BlockQ8_0*>(act + static_cast<size_t>(t) * stride);
        acc_a[t] = _mm512_setzero_ps();
        acc_b[t] = _mm512_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i eights = _mm512_set1_epi8(8);
    const __m512i idx_a = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i idx_b = _mm512_add_epi32(idx_a, _mm512_set1_epi32(4));
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kGroupBlockBytes;
        _mm_prefetch(reinterpret_cast<const char*>(b) + 1152, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(b) + 1152 + 64, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(b) + 1152 + 128, _MM_HINT_T0);
        const __m512 dw = _mm512_zextps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b))));
        const __m512 dw_a = _mm512_permutexvar_ps(idx_a, dw), dw_b = _mm512_permutexvar_ps(idx_b, dw);
        const __m512i qa = _mm512_loadu_si512(b + 16), qb = _mm512_loadu_si512(b + 80);
        const __m512i lo_a = _mm512_and_si512(qa, m4), hi_a = _mm512_and_si512(_mm512_srli_epi16(qa, 4), m4);
        const __m512i lo_b = _mm512_and_si512(qb, m4), hi_b = _mm512_and_si512(_mm512_srli_epi16(qb, 4), m4);
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
            const BlockQ8_0& y8 = a[t][i];
            const __m512i alo = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y8.qs)));
            const __m512i ahi = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y8.qs + 16)));
            const __m512i zero = _mm512_setzero_si512();
            const __m512i off = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, eights, alo), eights, ahi);
            const __m512i sa = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, lo_a, alo), hi_a, ahi), off);
            const __m512i sb = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, lo_b, alo), hi_b, ahi), off);
            const __m512 da = _mm512_set1_ps(_cvtsh_ss(y8.d));
            acc_a[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sa), _mm512_mul_ps(dw_a, da), acc_a[t]);
            acc_b[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sb), _mm512_mul_ps(dw_b, da), acc_b[t]);
        }
    }
    for (int t = 0; t < NT; ++t) {
        alignas(64) float l[32];
        _mm512_store_ps(l, acc_a[t]);
        _mm512_store_ps(l + 16, acc_b[t]);
        float* out = y + t * ldy;
        for (int r = 0; r < 8; ++r) out[r] = (l[4 * r] + l[4 * r + 1]) + (l[4 * r + 2] + l[4 * r + 3]);
    }
}

}  // namespace

// ---- Prompt batches: 8 rows x 16 tokens per register block.
//
// The group's nibbles are first unpacked to bytes (per block: rows 0-3 elements 0-15, rows
// 0-3 elements 16-31, then rows 4-7 likewise; 256 bytes) and its scales converted, once for
// all token blocks. Then each int32 lane is one token: vpdpbusd multiplies 4 consecutive
// weights of a row, broadcast from memory, with the same 4 elements of 16 tokens' Q8_0
// activations (see tensor/repack.h for their layout) and sums them exactly; per block the
// sum less the offset term is scaled by d_w x d_a and accumulated in float.

HEARTH_VNNI512 void q4_0x8_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int64_t i = 0; i < K / 32; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kGroupBlockBytes;
        _mm256_storeu_ps(dw + 8 * i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b))));
        const __m512i qa = _mm512_loadu_si512(b + 16), qb = _mm512_loadu_si512(b + 80);
        uint8_t* o = wu + 256 * i;
        _mm512_storeu_si512(o, _mm512_and_si512(qa, m4));
        _mm512_storeu_si512(o + 64, _mm512_and_si512(_mm512_srli_epi16(qa, 4), m4));
        _mm512_storeu_si512(o + 128, _mm512_and_si512(qb, m4));
        _mm512_storeu_si512(o + 192, _mm512_and_si512(_mm512_srli_epi16(qb, 4), m4));
    }
}

HEARTH_VNNI512 void q4_0x8_gemm_block(int64_t K, const uint8_t* wu, const float* dw, const uint8_t* act, float* out16x8) {
    __m512 facc[8];
    for (int r = 0; r < 8; ++r) facc[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < K / 32; ++i) {
        const uint8_t* a = act + static_cast<size_t>(i) * kActBlockBytes;
        __m512i av[8];
        for (int g = 0; g < 8; ++g) av[g] = _mm512_loadu_si512(a + 64 * g);
        const __m512 da = _mm512_loadu_ps(reinterpret_cast<const float*>(a + 512));
        const __m512i off = _mm512_loadu_si512(a + 576);
        const uint8_t* w = wu + 256 * i;
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r) {
            // Row r's elements 4g..4g+3 are at w + (r / 4) * 128 + (g / 4) * 64 + (r % 4) * 16 + (g % 4) * 4.
            const uint8_t* wr = w + (r / 4) * 128 + (r % 4) * 16;
            __m512i acc = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int g = 0; g < 8; ++g) {
                int32_t w4;
                __builtin_memcpy(&w4, wr + (g / 4) * 64 + (g % 4) * 4, 4);
                acc = _mm512_dpbusd_epi32(acc, _mm512_set1_epi32(w4), av[g]);
            }
            const __m512 d = _mm512_mul_ps(_mm512_set1_ps(dw[8 * i + r]), da);
            facc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, off)), d, facc[r]);
        }
    }
    for (int r = 0; r < 8; ++r) _mm512_storeu_ps(out16x8 + 16 * r, facc[r]);
}

bool cpu_has_vnni() {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    if (!(c & (1u << 27)) || !(c & (1u << 29))) return false;  // OSXSAVE, F16C
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6u) != 0xE6u) return false;  // XMM, YMM, opmask and ZMM state saved by the OS
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    const bool f = b & (1u << 16), bw = b & (1u << 30), avx2 = b & (1u << 5), vnni = c & (1u << 11);
    return f && bw && avx2 && vnni;
}

HEARTH_VNNI512 void q4_0x8_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, int nt, float* y,
                                int64_t ldy) {
    while (nt > 0) {
        const int k = nt < 8 ? nt : 8;
        switch (k) {
            case 1: rows<1>(K, group, act, stride, y, ldy); break;
            case 2: rows<2>(K, group, act, stride, y, ldy); break;
            case 3: rows<3>(K, group, act, stride, y, ldy); break;
            case 4: rows<4>(K, group, act, stride, y, ldy); break;
            case 5: rows<5>(K, group, act, stride, y, ldy); break;
            case 6: rows<6>(K, group, act, stride, y, ldy); break;
            case 7: rows<7>(K, group, act, stride, y, ldy); break;
            default: rows<8>(K, group, act, stride, y, ldy); break;
        }
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        y += k * ldy;
    }
}

}  // namespace hearth::avx512

#else

namespace hearth::avx512 {
bool cpu_has_vnni() { return false; }
void q4_0x8_rows(int64_t, const uint8_t*, const uint8_t*, size_t, int, float*, int64_t) {}
void q4_0x8_unpack(int64_t, const uint8_t*, uint8_t*, float*) {}
void q4_0x8_gemm_block(int64_t, const uint8_t*, const float*, const uint8_t*, float*) {}
}  // namespace hearth::avx512

#endif
