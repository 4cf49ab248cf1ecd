// AVX-512 VNNI kernels for packed Q4_0, Q8_0, Q4_K and Q5_K (tensor/repack.h; Q6_K is in
// avx512_packed_q6k.cpp): decode (16 rows x up to 8 tokens per pass over a row group) and
// prompt batches (8 rows x 16 tokens per register block), with the same integer sums and
// float operations per (row, token), so their results are identical. Compiled for baseline x86-64 with target attributes; called only when
// cpu_has_vnni().
#include "tensor/repack.h"

#include <cstring>

#include "tensor/types.h"

#if defined(__x86_64__)
#include <cpuid.h>

#include "tensor/x86/avx512_vnni.h"

namespace hearth::avx512 {
namespace {

// Bytes per 32-column block of a 16-row group: 32 of scales, then 256 (Q4_0 nibbles) or
// 512 (Q8_0 bytes, stored + 128 so they are unsigned).
template <bool Q8>
constexpr size_t kGroupBlockBytes = Q8 ? 544 : 288;

// The 8 weight vectors of one block (vector g: every row's elements 4g..4g+3, unsigned).
template <bool Q8>
HEARTH_VNNI512_INLINE void block_weights(const uint8_t* b, __m512i (&w)[8]) {
    if constexpr (Q8) {
#pragma GCC unroll 8
        for (int g = 0; g < 8; ++g) w[g] = _mm512_loadu_si512(b + 32 + 64 * g);
    } else {
        const __m512i m4 = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
            const __m512i q = _mm512_loadu_si512(b + 32 + 64 * j);
            w[j] = _mm512_and_si512(q, m4);
            w[4 + j] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        }
    }
}

// Decode: int32 lane r is row r. Per block the 16 rows' quants unpack to 8 vectors, vector g
// holding each row's elements 4g..4g+3 (g < 4: low nibbles of word g, else high nibbles of
// word g - 4); each multiplies the activation's word g broadcast to all lanes.
template <bool Q8, int NT>
HEARTH_VNNI512_INLINE void rows16(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                                  const int32_t* off, float* y, int64_t ldy) {
    const int64_t nb = K / 32;
    const BlockQ8_0* a[NT];
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) {
        a[t] = reinterpret_cast<const BlockQ8_0*>(act + static_cast<size_t>(t) * stride);
        acc[t] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kGroupBlockBytes<Q8>;
        // ~4.5 KiB ahead (measured best for both types; Q4_K uses the same distance).
        for (size_t p = 0; p < kGroupBlockBytes<Q8>; p += 64)
            _mm_prefetch(reinterpret_cast<const char*>(b) + (Q8 ? 8 : 16) * kGroupBlockBytes<Q8> + p, _MM_HINT_T0);
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
        __m512i w[8];
        block_weights<Q8>(b, w);
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
            const int32_t* aw = reinterpret_cast<const int32_t*>(a[t][i].qs);
            __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int g = 0; g < 8; ++g) {
                int32_t v;
                __builtin_memcpy(&v, aw + g, 4);
                s = _mm512_dpbusd_epi32(s, w[g], _mm512_set1_epi32(v));
            }
            s = _mm512_sub_epi32(s, _mm512_set1_epi32(off[t * nb + i]));
            const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(da[t * nb + i]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc[t]);
        }
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * ldy, acc[t]);
}

}  // namespace

template <bool Q8>
HEARTH_VNNI512_INLINE void rows16_any(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride,
                                      const float* da, const int32_t* off, int nt, float* y, int64_t ldy) {
    const int64_t nb = K / 32;
    while (nt > 0) {
        const int k = nt < 8 ? nt : 8;
        switch (k) {
            case 1: rows16<Q8, 1>(K, group, act, stride, da, off, y, ldy); break;
            case 2: rows16<Q8, 2>(K, group, act, stride, da, off, y, ldy); break;
            case 3: rows16<Q8, 3>(K, group, act, stride, da, off, y, ldy); break;
            case 4: rows16<Q8, 4>(K, group, act, stride, da, off, y, ldy); break;
            case 5: rows16<Q8, 5>(K, group, act, stride, da, off, y, ldy); break;
            case 6: rows16<Q8, 6>(K, group, act, stride, da, off, y, ldy); break;
            case 7: rows16<Q8, 7>(K, group, act, stride, da, off, y, ldy); break;
            default: rows16<Q8, 8>(K, group, act, stride, da, off, y, ldy); break;
        }
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        da += k * nb;
        off += k * nb;
        y += k * ldy;
    }
}

HEARTH_VNNI512 void q4_0x16_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                                 const int32_t* off, int nt, float* y, int64_t ldy) {
    rows16_any<false>(K, group, act, stride, da, off, nt, y, ldy);
}
HEARTH_VNNI512 void q8_0x16_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                                 const int32_t* off, int nt, float* y, int64_t ldy) {
    rows16_any<true>(K, group, act, stride, da, off, nt, y, ldy);
}

// ---- Q4_K decode: int32 lane r is row r (layout in tensor/repack.cpp). Per super-block
// and row: T = sum_j sc_j * (q . a over sub-block j), M = sum_j m_j * sum(a over j), exact in
// int32; then acc += float(T) * d * d_a - float(M) * dmin * d_a. Up to 4 tokens per pass.

namespace {

constexpr size_t kGroupSuperBytes = kPackQ4SuperBytes;

// Q5_K: the fifth bit of 64 weight bytes, in place (bit 4) for each byte of v: bit s of the
// high-bit vector h (s = 2c: chunk c's low nibbles, 2c + 1: its high nibbles).
HEARTH_VNNI512_INLINE __m512i fifth_bit(__m512i h, int s) {
    const __m512i bit = _mm512_and_si512(_mm512_srl_epi16(h, _mm_cvtsi32_si128(s)), _mm512_set1_epi8(1));
    return _mm512_slli_epi16(bit, 4);
}

template <int NT, bool Q5 = false>
HEARTH_VNNI512_INLINE void rows16_k4(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride,
                                     const float* da, const int32_t* bs, float* y, int64_t ldy) {
    constexpr size_t SB = Q5 ? kPackQ5SuperBytes : kGroupSuperBytes;
    const int64_t nb = K / 256;
    const BlockQ8_K* a[NT];
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) {
        a[t] = reinterpret_cast<const BlockQ8_K*>(act + static_cast<size_t>(t) * stride);
        acc[t] = _mm512_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * SB;
        __m512i T[NT];
        for (int t = 0; t < NT; ++t) T[t] = _mm512_setzero_si512();
        if constexpr (Q5)
            for (int p = 0; p < 8; ++p)
                _mm_prefetch(reinterpret_cast<const char*>(b) + 2 * SB + kGroupSuperBytes + 64 * p, _MM_HINT_T0);
        for (int c = 0; c < 4; ++c) {
            const uint8_t* q = b + 320 + 512 * c;
            for (int p = 0; p < 8; ++p) _mm_prefetch(reinterpret_cast<const char*>(q) + 2 * SB + 64 * p, _MM_HINT_T0);
            const __m512i sc_lo = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 64 + 32 * c)));
            const __m512i sc_hi = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 80 + 32 * c)));
            __m512i lo[8], hi[8];
#pragma GCC unroll 8
            for (int p = 0; p < 8; ++p) {
                const __m512i v = _mm512_loadu_si512(q + 64 * p);
                lo[p] = _mm512_and_si512(v, m4);
                hi[p] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                if constexpr (Q5) {
                    const __m512i h = _mm512_loadu_si512(b + kGroupSuperBytes + 64 * p);
                    lo[p] = _mm512_or_si512(lo[p], fifth_bit(h, 2 * c));
                    hi[p] = _mm512_or_si512(hi[p], fifth_bit(h, 2 * c + 1));
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) {
                const int8_t* aq = a[t][i].qs + 64 * c;
                __m512i s_lo = _mm512_setzero_si512(), s_hi = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int p = 0; p < 8; ++p) {
                    int32_t vl, vh;
                    __builtin_memcpy(&vl, aq + 4 * p, 4);
                    __builtin_memcpy(&vh, aq + 32 + 4 * p, 4);
                    s_lo = _mm512_dpbusd_epi32(s_lo, lo[p], _mm512_set1_epi32(vl));
                    s_hi = _mm512_dpbusd_epi32(s_hi, hi[p], _mm512_set1_epi32(vh));
                }
                T[t] = _mm512_add_epi32(T[t], _mm512_add_epi32(_mm512_mullo_epi32(s_lo, sc_lo), _mm512_mullo_epi32(s_hi, sc_hi)));
            }
        }
        const __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
        const __m512 dminv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32)));
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) {
            const int32_t* s8 = bs + (static_cast<int64_t>(t) * nb + i) * 8;
            __m512i M = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j) {
                const __m512i mj = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192 + 16 * j)));
                M = _mm512_add_epi32(M, _mm512_mullo_epi32(mj, _mm512_set1_epi32(s8[j])));
            }
            const __m512 dat = _mm512_set1_ps(da[static_cast<int64_t>(t) * nb + i]);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(T[t]), _mm512_mul_ps(dv, dat), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(M), _mm512_mul_ps(dminv, dat), acc[t]);
        }
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * ldy, acc[t]);
}

}  // namespace

namespace {

template <bool Q5>
HEARTH_VNNI512_INLINE void rows16_k_any(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride,
                                        const float* da, const int32_t* bs, int nt, float* y, int64_t ldy) {
    const int64_t nb = K / 256;
    while (nt > 0) {
        const int k = nt < 4 ? nt : 4;
        switch (k) {
            case 1: rows16_k4<1, Q5>(K, group, act, stride, da, bs, y, ldy); break;
            case 2: rows16_k4<2, Q5>(K, group, act, stride, da, bs, y, ldy); break;
            case 3: rows16_k4<3, Q5>(K, group, act, stride, da, bs, y, ldy); break;
            default: rows16_k4<4, Q5>(K, group, act, stride, da, bs, y, ldy); break;
        }
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        da += k * nb;
        bs += k * nb * 8;
        y += k * ldy;
    }
}

}  // namespace

HEARTH_VNNI512 void q4_kx16_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                                 const int32_t* bs, int nt, float* y, int64_t ldy) {
    rows16_k_any<false>(K, group, act, stride, da, bs, nt, y, ldy);
}
HEARTH_VNNI512 void q5_kx16_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                                 const int32_t* bs, int nt, float* y, int64_t ldy) {
    rows16_k_any<true>(K, group, act, stride, da, bs, nt, y, ldy);
}

// ---- Prompt batches: int32 lane t is token t of a 16-token block; 8 rows per register block.
// The row group is first unpacked to bytes in the decode kernel's vectors (per block: for
// g < 8, 64 bytes holding the 16 rows' elements 4g..4g+3) and its scales converted, once for
// all token blocks; then each row's word g is broadcast against the tokens' word g.

template <bool Q8>
HEARTH_VNNI512_INLINE void unpack_any(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    for (int64_t i = 0; i < K / 32; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kGroupBlockBytes<Q8>;
        _mm512_storeu_ps(dw + 16 * i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b))));
        __m512i w[8];
        block_weights<Q8>(b, w);
        for (int g = 0; g < 8; ++g) _mm512_storeu_si512(wu + 512 * i + 64 * g, w[g]);
    }
}

HEARTH_VNNI512 void q4_0x16_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    unpack_any<false>(K, group, wu, dw);
}
HEARTH_VNNI512 void q8_0x16_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    unpack_any<true>(K, group, wu, dw);
}

HEARTH_VNNI512 void q4_0x16_gemm_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act,
                                       float* out) {
    __m512 facc[8];
    for (int r = 0; r < 8; ++r) facc[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < K / 32; ++i) {
        const uint8_t* a = act + static_cast<size_t>(i) * kPackActBlockBytes;
        __m512i av[8];
        for (int g = 0; g < 8; ++g) av[g] = _mm512_loadu_si512(a + 64 * g);
        const __m512 da = _mm512_loadu_ps(reinterpret_cast<const float*>(a + 512));
        const __m512i off = _mm512_loadu_si512(a + 576);
        const uint8_t* w = wu + 512 * i + 4 * r0;
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r) {
            __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int g = 0; g < 8; ++g) {
                int32_t v;
                __builtin_memcpy(&v, w + 64 * g + 4 * r, 4);
                s = _mm512_dpbusd_epi32(s, _mm512_set1_epi32(v), av[g]);
            }
            const __m512 d = _mm512_mul_ps(_mm512_set1_ps(dw[16 * i + r0 + r]), da);
            facc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s, off)), d, facc[r]);
        }
    }
    for (int r = 0; r < 8; ++r) _mm512_storeu_ps(out + 16 * r, facc[r]);
}

// ---- Q4_K prompt batches: lane t is token t of a 16-token block, 8 rows per register block,
// the same integers T and M and the same float operations per (row, token) as q4_kx16_rows.

namespace {

template <bool Q5>
HEARTH_VNNI512_INLINE void unpack_k(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * (Q5 ? kPackQ5SuperBytes : kGroupSuperBytes);
        uint8_t* o = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes;
        _mm512_storeu_ps(dw + 32 * i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b))));
        _mm512_storeu_ps(dw + 32 * i + 16, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32))));
        for (int c = 0; c < 4; ++c)
            for (int q = 0; q < 8; ++q) {
                const __m512i v = _mm512_loadu_si512(b + 320 + 64 * (8 * c + q));
                __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                if constexpr (Q5) {
                    const __m512i h = _mm512_loadu_si512(b + kGroupSuperBytes + 64 * q);
                    lo = _mm512_or_si512(lo, fifth_bit(h, 2 * c));
                    hi = _mm512_or_si512(hi, fifth_bit(h, 2 * c + 1));
                }
                _mm512_storeu_si512(o + 64 * (16 * c + q), lo);
                _mm512_storeu_si512(o + 64 * (16 * c + 8 + q), hi);
            }
        std::memcpy(o + 4096, b + 64, 256);  // scales and mins, [sub-block][row]
    }
}

}  // namespace

HEARTH_VNNI512 void q4_kx16_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) { unpack_k<false>(K, group, wu, dw); }
HEARTH_VNNI512 void q5_kx16_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) { unpack_k<true>(K, group, wu, dw); }

HEARTH_VNNI512 void q4_kx16_gemm_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act,
                                       float* out) {
    __m512 facc[8];
    for (int r = 0; r < 8; ++r) facc[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* a = act + static_cast<size_t>(i) * kPackActSuperBytes;
        const uint8_t* w = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes + 4 * r0;
        const uint8_t* sc = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes + 4096 + r0;
        __m512i T[8];
        for (int r = 0; r < 8; ++r) T[r] = _mm512_setzero_si512();
        for (int j = 0; j < 8; ++j) {
            __m512i sj[8];
            for (int r = 0; r < 8; ++r) sj[r] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int q = 0; q < 8; ++q) {
                const int word = 8 * j + q;
                const __m512i av = _mm512_loadu_si512(a + 64 * word);
#pragma GCC unroll 8
                for (int r = 0; r < 8; ++r) {
                    int32_t v;
                    __builtin_memcpy(&v, w + 64 * word + 4 * r, 4);
                    sj[r] = _mm512_dpbusd_epi32(sj[r], _mm512_set1_epi32(v), av);
                }
            }
#pragma GCC unroll 8
            for (int r = 0; r < 8; ++r) T[r] = _mm512_add_epi32(T[r], _mm512_mullo_epi32(sj[r], _mm512_set1_epi32(sc[16 * j + r])));
        }
        const __m512 da = _mm512_loadu_ps(reinterpret_cast<const float*>(a + 4096));
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r) {
            __m512i M = _mm512_setzero_si512();
            for (int j = 0; j < 8; ++j)
                M = _mm512_add_epi32(M, _mm512_mullo_epi32(_mm512_set1_epi32(sc[128 + 16 * j + r]),
                                                           _mm512_loadu_si512(a + 4160 + 64 * j)));
            facc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(T[r]), _mm512_mul_ps(_mm512_set1_ps(dw[32 * i + r0 + r]), da), facc[r]);
            facc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(M), _mm512_mul_ps(_mm512_set1_ps(dw[32 * i + 16 + r0 + r]), da), facc[r]);
        }
    }
    for (int r = 0; r < 8; ++r) _mm512_storeu_ps(out + 16 * r, facc[r]);
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

}  // namespace hearth::avx512

#else

namespace hearth::avx512 {
bool cpu_has_vnni() { return false; }
void q4_0x16_rows(int64_t, const uint8_t*, const uint8_t*, size_t, const float*, const int32_t*, int, float*, int64_t) {}
void q4_0x16_unpack(int64_t, const uint8_t*, uint8_t*, float*) {}
void q8_0x16_unpack(int64_t, const uint8_t*, uint8_t*, float*) {}
void q8_0x16_rows(int64_t, const uint8_t*, const uint8_t*, size_t, const float*, const int32_t*, int, float*, int64_t) {}
void q4_kx16_rows(int64_t, const uint8_t*, const uint8_t*, size_t, const float*, const int32_t*, int, float*, int64_t) {}
void q4_kx16_unpack(int64_t, const uint8_t*, uint8_t*, float*) {}
void q5_kx16_rows(int64_t, const uint8_t*, const uint8_t*, size_t, const float*, const int32_t*, int, float*, int64_t) {}
void q5_kx16_unpack(int64_t, const uint8_t*, uint8_t*, float*) {}
void q4_kx16_gemm_block(int64_t, const uint8_t*, const float*, int, const uint8_t*, float*) {}
void q4_0x16_gemm_block(int64_t, const uint8_t*, const float*, int, const uint8_t*, float*) {}
}  // namespace hearth::avx512

#endif
