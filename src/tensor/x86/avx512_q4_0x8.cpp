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
}  // namespace hearth::avx512

#endif
