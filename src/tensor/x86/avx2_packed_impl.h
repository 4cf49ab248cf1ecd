// Internal to src/tensor/x86/avx2_packed*.cpp: the AVX2 twins of the packed-layout kernels
// (tensor/repack.h), as templates over one source that yields two instances. Each including
// file first defines HEARTH_PACKED_TARGET (its target attribute), HEARTH_PACKED_VNNI (0 or 1)
// and HEARTH_PACKED_NS (its namespace).
//
// They read the AVX-512 kernels' packed layout unchanged (a 64-byte vector of a 16-row group
// is two 256-bit halves of 8 rows), so a model packed once is valid for every family. Decode:
// int32 lane = row, 8 rows per register, activation words broadcast; prompt: lane = token, the
// 16-token activation blocks as two registers, weight words broadcast from the unpacked group.
//
// Integer sums: with AVX-VNNI every 4-byte group goes through vpdpbusd (ymm, VEX) into int32;
// without it vpmaddubsw makes int16 pair sums that are added in int16 as long as no partial
// sum can overflow, then vpmaddwd widens them (times 1, or times a sub-block scale). The
// bounds (activations within [-128, 127], Q8_0's within [-127, 127]):
//   Q4_0, Q4_K nibbles: 8 words = 16 products per int16 lane, |sum| <= 16 * 15 * 128 = 30720;
//   Q5_K (5-bit values): 4 words = 8 products per int16 lane, <= 8 * 31 * 128 = 31744;
//   Q8_0 (bytes stored + 128): split into nibbles h, l (u = 16 h + l), each summed as above;
//   Q6_K (6-bit values): 2 words = 4 products per int16 lane, <= 4 * 63 * 128 = 32256.
// Every sum is exact either way, and the float operations per (row, token) are the AVX-512
// kernels' (same operands, same order), so decode, prompt, VNNI, plain AVX2 and AVX-512 all
// give bit-identical results.
#pragma once

#if defined(__x86_64__)

#include <immintrin.h>

#include <cstring>

#include "tensor/repack.h"
#include "tensor/types.h"

#if !defined(HEARTH_PACKED_TARGET) || !defined(HEARTH_PACKED_VNNI) || !defined(HEARTH_PACKED_NS)
#error "define HEARTH_PACKED_TARGET, HEARTH_PACKED_VNNI and HEARTH_PACKED_NS before including avx2_packed_impl.h"
#endif

#define HEARTH_PK __attribute__((target(HEARTH_PACKED_TARGET)))
#define HEARTH_PK_INLINE __attribute__((target(HEARTH_PACKED_TARGET), always_inline)) inline

namespace hearth::HEARTH_PACKED_NS {
namespace {

using avx512::kPackActBlockBytes;  // the activation and unpacked layouts are the AVX-512 kernels'
using avx512::kPackActQ6SuperBytes;
using avx512::kPackActSuperBytes;
using avx512::kPackQ6SuperBytes;
using avx512::kPackUnpackedSuperBytes;
constexpr size_t kQ4Block = 288, kQ8Block = 544;  // packed bytes per 32-column block of 16 rows
constexpr size_t kQ4KSuper = avx512::kPackQ4SuperBytes;  // packed Q4_K super-block (tensor/repack.cpp)
constexpr size_t kQ5KSuper = avx512::kPackQ5SuperBytes;  // Q4_K's, then the Q5_K high-bit plane
constexpr size_t kScQ6 = 32, kLowQ6 = 288, kHighQ6 = 288 + 2048;
// Unpacked Q8_0 bytes per block: plain AVX2 keeps the low and high nibbles as two planes.
constexpr size_t kQ8Unpacked = HEARTH_PACKED_VNNI ? 512 : 1024;

HEARTH_PK_INLINE __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
HEARTH_PK_INLINE __m256i bcast(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}
HEARTH_PK_INLINE __m256 half8(const void* p) { return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
HEARTH_PK_INLINE __m256i u8x8(const void* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(static_cast<const __m128i*>(p))); }
HEARTH_PK_INLINE __m256i i8x8(const void* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64(static_cast<const __m128i*>(p))); }
HEARTH_PK_INLINE __m256i lo_nib(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x0f)); }
HEARTH_PK_INLINE __m256i hi_nib(__m256i v) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f)); }

// Running sum of unsigned weight bytes times signed activation bytes, per int32 lane.
using Sum = __m256i;
HEARTH_PK_INLINE Sum zero() { return _mm256_setzero_si256(); }
#if HEARTH_PACKED_VNNI
HEARTH_PK_INLINE void add(Sum& s, __m256i u, __m256i a) { s = _mm256_dpbusd_avx_epi32(s, u, a); }
HEARTH_PK_INLINE __m256i i32(Sum s) { return s; }
// s times a per-lane int32 scale (sc32) or one scalar scale.
HEARTH_PK_INLINE __m256i scaled(Sum s, __m256i sc32) { return _mm256_mullo_epi32(s, sc32); }
HEARTH_PK_INLINE __m256i scaled1(Sum s, int sc) { return _mm256_mullo_epi32(s, _mm256_set1_epi32(sc)); }
#else
// The empty asm keeps each sum a chain: GCC otherwise reassociates the unrolled int16 adds
// into a tree that holds every product at once and spills them to the stack.
HEARTH_PK_INLINE void add(Sum& s, __m256i u, __m256i a) {
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(u, a));
    __asm__("" : "+x"(s));
}
HEARTH_PK_INLINE __m256i i32(Sum s) { return _mm256_madd_epi16(s, _mm256_set1_epi16(1)); }
HEARTH_PK_INLINE __m256i scaled(Sum s, __m256i sc32) {
    const __m256i pair = _mm256_or_si256(_mm256_and_si256(sc32, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(sc32, 16));
    return _mm256_madd_epi16(s, pair);
}
HEARTH_PK_INLINE __m256i scaled1(Sum s, int sc) { return _mm256_madd_epi16(s, _mm256_set1_epi16(static_cast<short>(sc))); }
#endif
// m (int32 lanes whose value fits int16 and whose upper half is zero) times x (int32 lanes
// whose value fits int16): lo16(m) * lo16(x) + 0 * hi16(x), exact.
HEARTH_PK_INLINE __m256i mul16(__m256i m, __m256i x) { return _mm256_madd_epi16(m, x); }

// ---- Q4_0 / Q8_0 decode: 16 rows (two halves of 8) x NT tokens per pass.

template <bool Q8, int NT>
HEARTH_PK_INLINE void rows16(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                             const int32_t* off, float* y, int64_t ldy) {
    const int64_t nb = K / 32;
    constexpr size_t BB = Q8 ? kQ8Block : kQ4Block;
    const BlockQ8_0* a[NT];
    __m256 acc[NT][2];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
        a[t] = reinterpret_cast<const BlockQ8_0*>(act + static_cast<size_t>(t) * stride);
        acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * BB;
        for (size_t p = 0; p < BB; p += 64) _mm_prefetch(reinterpret_cast<const char*>(b) + (Q8 ? 8 : 16) * BB + p, _MM_HINT_T0);
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            Sum s[NT];
#if !HEARTH_PACKED_VNNI
            Sum sh[NT];  // Q8_0: the high nibbles
#endif
            #pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) {
                s[t] = zero();
#if !HEARTH_PACKED_VNNI
                sh[t] = zero();
#endif
            }
            if constexpr (Q8) {
#pragma GCC unroll 8
                for (int g = 0; g < 8; ++g) {
                    const __m256i u = load(b + 32 + 64 * g + 32 * h);
#if HEARTH_PACKED_VNNI
                    #pragma GCC unroll 4
                    for (int t = 0; t < NT; ++t) add(s[t], u, bcast(a[t][i].qs + 4 * g));
#else
                    const __m256i lo = lo_nib(u), hi = hi_nib(u);
                    #pragma GCC unroll 4
                    for (int t = 0; t < NT; ++t) {
                        const __m256i av = bcast(a[t][i].qs + 4 * g);
                        add(s[t], lo, av);
                        add(sh[t], hi, av);
                    }
#endif
                }
            } else {
#pragma GCC unroll 4
                for (int j = 0; j < 4; ++j) {
                    const __m256i q = load(b + 32 + 64 * j + 32 * h);
                    const __m256i lo = lo_nib(q), hi = hi_nib(q);
                    #pragma GCC unroll 4
                    for (int t = 0; t < NT; ++t) {
                        add(s[t], lo, bcast(a[t][i].qs + 4 * j));
                        add(s[t], hi, bcast(a[t][i].qs + 16 + 4 * j));
                    }
                }
            }
            const __m256 dw = half8(b + 16 * h);
            #pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) {
                __m256i si = i32(s[t]);
#if !HEARTH_PACKED_VNNI
                if constexpr (Q8) si = _mm256_add_epi32(si, _mm256_madd_epi16(sh[t], _mm256_set1_epi16(16)));
#endif
                si = _mm256_sub_epi32(si, _mm256_set1_epi32(off[t * nb + i]));
                const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(da[t * nb + i]));
                acc[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), d, acc[t][h]);
            }
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
        _mm256_storeu_ps(y + t * ldy, acc[t][0]);
        _mm256_storeu_ps(y + t * ldy + 8, acc[t][1]);
    }
}

template <bool Q8>
HEARTH_PK_INLINE void rows16_any(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                                 const int32_t* off, int nt, float* y, int64_t ldy) {
    const int64_t nb = K / 32;
    while (nt > 0) {
        const int k = nt < 4 ? nt : 4;
        switch (k) {
            case 1: rows16<Q8, 1>(K, group, act, stride, da, off, y, ldy); break;
            case 2: rows16<Q8, 2>(K, group, act, stride, da, off, y, ldy); break;
            case 3: rows16<Q8, 3>(K, group, act, stride, da, off, y, ldy); break;
            default: rows16<Q8, 4>(K, group, act, stride, da, off, y, ldy); break;
        }
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        da += k * nb;
        off += k * nb;
        y += k * ldy;
    }
}

// ---- Q4_0 / Q8_0 prompt: the group unpacked once (Q4_0 and VNNI Q8_0: the AVX-512 kernels'
// byte vectors, 512 bytes per block; plain Q8_0: its low nibbles, then its high nibbles),
// then R rows x 16 tokens per register tile.

template <bool Q8>
HEARTH_PK_INLINE void unpack_q(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    constexpr size_t BB = Q8 ? kQ8Block : kQ4Block, UB = Q8 ? kQ8Unpacked : 512;
    for (int64_t i = 0; i < K / 32; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * BB;
        uint8_t* o = wu + static_cast<size_t>(i) * UB;
        _mm256_storeu_ps(dw + 16 * i, half8(b));
        _mm256_storeu_ps(dw + 16 * i + 8, half8(b + 16));
        for (int g = 0; g < (Q8 ? 8 : 4); ++g)
            for (int h = 0; h < 2; ++h) {
                const __m256i v = load(b + 32 + 64 * g + 32 * h);
                __m256i* p = reinterpret_cast<__m256i*>(o + 64 * g + 32 * h);
                if (Q8 && HEARTH_PACKED_VNNI) {
                    _mm256_storeu_si256(p, v);
                } else if (Q8) {
                    _mm256_storeu_si256(p, lo_nib(v));
                    _mm256_storeu_si256(p + 16, hi_nib(v));  // + 512 bytes
                } else {
                    _mm256_storeu_si256(p, lo_nib(v));
                    _mm256_storeu_si256(p + 8, hi_nib(v));  // word g + 4, + 256 bytes
                }
            }
    }
}

template <bool Q8, int R>
HEARTH_PK_INLINE void tile_q(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    constexpr size_t UB = Q8 ? kQ8Unpacked : 512;
    __m256 facc[R][2];
    for (int r = 0; r < R; ++r) facc[r][0] = facc[r][1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < K / 32; ++i) {
        const uint8_t* a = act + static_cast<size_t>(i) * kPackActBlockBytes;
        const uint8_t* w = wu + static_cast<size_t>(i) * UB + 4 * r0;
        Sum s[R][2];
#if !HEARTH_PACKED_VNNI
        Sum sh[R][2];
#endif
        for (int r = 0; r < R; ++r) {
            s[r][0] = s[r][1] = zero();
#if !HEARTH_PACKED_VNNI
            sh[r][0] = sh[r][1] = zero();
#endif
        }
#pragma GCC unroll 8
        for (int g = 0; g < 8; ++g) {
            const __m256i a0 = load(a + 64 * g), a1 = load(a + 64 * g + 32);
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                const __m256i wv = bcast(w + 64 * g + 4 * r);
                add(s[r][0], wv, a0);
                add(s[r][1], wv, a1);
#if !HEARTH_PACKED_VNNI
                if constexpr (Q8) {
                    const __m256i wh = bcast(w + 512 + 64 * g + 4 * r);
                    add(sh[r][0], wh, a0);
                    add(sh[r][1], wh, a1);
                }
#endif
            }
        }
        const __m256 da[2] = {_mm256_loadu_ps(reinterpret_cast<const float*>(a + 512)),
                              _mm256_loadu_ps(reinterpret_cast<const float*>(a + 544))};
        const __m256i off[2] = {load(a + 576), load(a + 608)};
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m256 d = _mm256_set1_ps(dw[16 * i + r0 + r]);
            for (int v = 0; v < 2; ++v) {
                __m256i si = i32(s[r][v]);
#if !HEARTH_PACKED_VNNI
                if constexpr (Q8) si = _mm256_add_epi32(si, _mm256_madd_epi16(sh[r][v], _mm256_set1_epi16(16)));
#endif
                si = _mm256_sub_epi32(si, off[v]);
                facc[r][v] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_mul_ps(d, da[v]), facc[r][v]);
            }
        }
    }
    for (int r = 0; r < R; ++r) {
        _mm256_storeu_ps(out + 16 * r, facc[r][0]);
        _mm256_storeu_ps(out + 16 * r + 8, facc[r][1]);
    }
}

// ---- Q4_K / Q5_K decode: per super-block, half and token the exact T = sum_j sc_j (q . a)_j
// and M = sum_j m_j bsum_j, then acc += T d d_a - M dmin d_a as the AVX-512 kernel does.

// Q5_K: bit s of each byte of the high-bit vector h moved to bit 4 (the value's fifth bit).
HEARTH_PK_INLINE __m256i fifth_bit(__m256i h, int s) {
    return _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(s)), _mm256_set1_epi8(1)), 4);
}
// Words summed in int16 before widening: 5-bit weights overflow int16 after 4 words without
// VNNI (4 * 2 * 31 * 128 = 31744), 4-bit ones only after 8 (30720).
template <bool Q5>
constexpr int kWordsPerSum = (Q5 && !HEARTH_PACKED_VNNI) ? 4 : 8;

template <int NT, bool Q5 = false>
HEARTH_PK_INLINE void rows16_k4(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                                const int32_t* bs, float* y, int64_t ldy) {
    constexpr size_t SB = Q5 ? kQ5KSuper : kQ4KSuper;
    constexpr int WS = kWordsPerSum<Q5>;
    const int64_t nb = K / 256;
    const BlockQ8_K* a[NT];
    __m256 acc[NT][2];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
        a[t] = reinterpret_cast<const BlockQ8_K*>(act + static_cast<size_t>(t) * stride);
        acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * SB;
        if constexpr (Q5)
            for (int p = 0; p < 8; ++p) _mm_prefetch(reinterpret_cast<const char*>(b) + 2 * SB + kQ4KSuper + 64 * p, _MM_HINT_T0);
        for (int h = 0; h < 2; ++h) {
            __m256i T[NT];
            #pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) T[t] = _mm256_setzero_si256();
            for (int c = 0; c < 4; ++c) {
                const uint8_t* q = b + 320 + 512 * c + 32 * h;
                if (h == 0)
                    for (int p = 0; p < 8; ++p) _mm_prefetch(reinterpret_cast<const char*>(q) + 2 * SB + 64 * p, _MM_HINT_T0);
                const __m256i sc_lo = u8x8(b + 64 + 32 * c + 8 * h), sc_hi = u8x8(b + 80 + 32 * c + 8 * h);
                for (int p0 = 0; p0 < 8; p0 += WS) {
                    Sum slo[NT], shi[NT];
                    #pragma GCC unroll 4
                    for (int t = 0; t < NT; ++t) slo[t] = shi[t] = zero();
#pragma GCC unroll 8
                    for (int p = p0; p < p0 + WS; ++p) {
                        const __m256i v = load(q + 64 * p);
                        __m256i lo = lo_nib(v), hi = hi_nib(v);
                        if constexpr (Q5) {
                            const __m256i hv = load(b + kQ4KSuper + 64 * p + 32 * h);
                            lo = _mm256_or_si256(lo, fifth_bit(hv, 2 * c));
                            hi = _mm256_or_si256(hi, fifth_bit(hv, 2 * c + 1));
                        }
                        #pragma GCC unroll 4
                        for (int t = 0; t < NT; ++t) {
                            add(slo[t], lo, bcast(a[t][i].qs + 64 * c + 4 * p));
                            add(shi[t], hi, bcast(a[t][i].qs + 64 * c + 32 + 4 * p));
                        }
                    }
                    #pragma GCC unroll 4
                    for (int t = 0; t < NT; ++t)
                        T[t] = _mm256_add_epi32(T[t], _mm256_add_epi32(scaled(slo[t], sc_lo), scaled(shi[t], sc_hi)));
                }
            }
            const __m256 dv = half8(b + 16 * h), dminv = half8(b + 32 + 16 * h);
            #pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) {
                const int32_t* s8 = bs + (static_cast<int64_t>(t) * nb + i) * 8;
                __m256i M = _mm256_setzero_si256();
#pragma GCC unroll 8
                for (int j = 0; j < 8; ++j) M = _mm256_add_epi32(M, mul16(u8x8(b + 192 + 16 * j + 8 * h), _mm256_set1_epi32(s8[j])));
                const __m256 dat = _mm256_set1_ps(da[static_cast<int64_t>(t) * nb + i]);
                acc[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(T[t]), _mm256_mul_ps(dv, dat), acc[t][h]);
                acc[t][h] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(M), _mm256_mul_ps(dminv, dat), acc[t][h]);
            }
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
        _mm256_storeu_ps(y + t * ldy, acc[t][0]);
        _mm256_storeu_ps(y + t * ldy + 8, acc[t][1]);
    }
}

// ---- Q4_K / Q5_K prompt: the AVX-512 kernels' unpacked super-block (64 word vectors, then the
// scales and mins [sub-block][row]); R rows x 16 tokens per tile.

template <int R, bool Q5 = false>
HEARTH_PK_INLINE void tile_k4(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    __m256 facc[R][2];
    for (int r = 0; r < R; ++r) facc[r][0] = facc[r][1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* a = act + static_cast<size_t>(i) * kPackActSuperBytes;
        const uint8_t* w = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes + 4 * r0;
        const uint8_t* sc = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes + 4096 + r0;
        __m256i T[R][2];
        for (int r = 0; r < R; ++r) T[r][0] = T[r][1] = _mm256_setzero_si256();
        for (int j = 0; j < 8; ++j)
            for (int q0 = 0; q0 < 8; q0 += kWordsPerSum<Q5>) {
                Sum s[R][2];
                for (int r = 0; r < R; ++r) s[r][0] = s[r][1] = zero();
#pragma GCC unroll 8
                for (int q = q0; q < q0 + kWordsPerSum<Q5>; ++q) {
                    const int word = 8 * j + q;
                    const __m256i a0 = load(a + 64 * word), a1 = load(a + 64 * word + 32);
#pragma GCC unroll 4
                    for (int r = 0; r < R; ++r) {
                        const __m256i wv = bcast(w + 64 * word + 4 * r);
                        add(s[r][0], wv, a0);
                        add(s[r][1], wv, a1);
                    }
                }
#pragma GCC unroll 4
                for (int r = 0; r < R; ++r)
                    for (int v = 0; v < 2; ++v) T[r][v] = _mm256_add_epi32(T[r][v], scaled1(s[r][v], sc[16 * j + r]));
            }
        const __m256 da[2] = {_mm256_loadu_ps(reinterpret_cast<const float*>(a + 4096)),
                              _mm256_loadu_ps(reinterpret_cast<const float*>(a + 4128))};
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const __m256 d = _mm256_set1_ps(dw[32 * i + r0 + r]), dmin = _mm256_set1_ps(dw[32 * i + 16 + r0 + r]);
            for (int v = 0; v < 2; ++v) {
                __m256i M = _mm256_setzero_si256();
#pragma GCC unroll 8
                for (int j = 0; j < 8; ++j)
                    M = _mm256_add_epi32(M, mul16(_mm256_set1_epi32(sc[128 + 16 * j + r]), load(a + 4160 + 64 * j + 32 * v)));
                facc[r][v] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(T[r][v]), _mm256_mul_ps(d, da[v]), facc[r][v]);
                facc[r][v] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(M), _mm256_mul_ps(dmin, da[v]), facc[r][v]);
            }
        }
    }
    for (int r = 0; r < R; ++r) {
        _mm256_storeu_ps(out + 16 * r, facc[r][0]);
        _mm256_storeu_ps(out + 16 * r + 8, facc[r][1]);
    }
}

// ---- Q6_K (layout in x86/avx512_packed_q6k.cpp): T = sum_j sc_j (q . a)_j, M = sum_j sc_j
// bsum_j with q the unsigned 6-bit value, then acc += float(T - 32 M) * (d * d_a).

// Half h (rows 8h..8h+7) of words hh, hh + 16, hh + 32, hh + 48 as 6-bit bytes.
HEARTH_PK_INLINE void words_of(const uint8_t* b, int hh, int h, __m256i (&w)[4]) {
    const __m256i l0 = load(b + kLowQ6 + 64 * hh + 32 * h);
    const __m256i l1 = load(b + kLowQ6 + 64 * (hh + 16) + 32 * h);
    const __m256i hb = load(b + kHighQ6 + 64 * hh + 32 * h);
    w[0] = _mm256_or_si256(lo_nib(l0), _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(0x03)), 4));
    w[1] = _mm256_or_si256(lo_nib(l1), _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(0x0c)), 2));
    w[2] = _mm256_or_si256(hi_nib(l0), _mm256_and_si256(hb, _mm256_set1_epi8(0x30)));
    w[3] = _mm256_or_si256(hi_nib(l1), _mm256_and_si256(_mm256_srli_epi16(hb, 2), _mm256_set1_epi8(0x30)));
}

template <int NT>
HEARTH_PK_INLINE void rows16_q6(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, float* y,
                                int64_t ldy) {
    const int64_t nb = K / 256;
    const BlockQ8_K* a[NT];
    __m256 acc[NT][2];
    #pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
        a[t] = reinterpret_cast<const BlockQ8_K*>(act + static_cast<size_t>(t) * stride);
        acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kPackQ6SuperBytes;
        for (size_t p = 0; p < kPackQ6SuperBytes; p += 64) _mm_prefetch(reinterpret_cast<const char*>(b) + 4480 + p, _MM_HINT_T0);
        for (int h = 0; h < 2; ++h) {
            __m256i T[NT];
            #pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) T[t] = _mm256_setzero_si256();
            for (int k = 0; k < 4; ++k) {
                // Sub-blocks k + 4m (m < 4): words 4k + q + 16m, q < 4.
                Sum s[NT][4];
                #pragma GCC unroll 4
                for (int t = 0; t < NT; ++t)
                    for (int m = 0; m < 4; ++m) s[t][m] = zero();
#pragma GCC unroll 4
                for (int q = 0; q < 4; ++q) {
                    __m256i w[4];
                    words_of(b, 4 * k + q, h, w);
                    #pragma GCC unroll 4
                    for (int t = 0; t < NT; ++t)
#pragma GCC unroll 4
                        for (int m = 0; m < 4; ++m) add(s[t][m], w[m], bcast(a[t][i].qs + 4 * (4 * k + q + 16 * m)));
#if !HEARTH_PACKED_VNNI
                    if (q == 1 || q == 3) {  // int16 sums hold two words: fold them into T
#pragma GCC unroll 4
                        for (int m = 0; m < 4; ++m) {
                            const __m256i sc = i8x8(b + kScQ6 + 16 * (k + 4 * m) + 8 * h);
                            #pragma GCC unroll 4
                            for (int t = 0; t < NT; ++t) {
                                T[t] = _mm256_add_epi32(T[t], scaled(s[t][m], sc));
                                s[t][m] = zero();
                            }
                        }
                    }
#endif
                }
#if HEARTH_PACKED_VNNI
#pragma GCC unroll 4
                for (int m = 0; m < 4; ++m) {
                    const __m256i sc = i8x8(b + kScQ6 + 16 * (k + 4 * m) + 8 * h);
                    #pragma GCC unroll 4
                    for (int t = 0; t < NT; ++t) T[t] = _mm256_add_epi32(T[t], scaled(s[t][m], sc));
                }
#endif
            }
            const __m256 dv = half8(b + 16 * h);
            #pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) {
                __m256i M = _mm256_setzero_si256();
#pragma GCC unroll 16
                for (int j = 0; j < 16; ++j)
                    M = _mm256_add_epi32(M, mul16(_mm256_set1_epi32(static_cast<uint16_t>(a[t][i].bsums[j])),
                                                  i8x8(b + kScQ6 + 16 * j + 8 * h)));
                const __m256i tm = _mm256_sub_epi32(T[t], _mm256_slli_epi32(M, 5));
                acc[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tm), _mm256_mul_ps(dv, _mm256_set1_ps(a[t][i].d)), acc[t][h]);
            }
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
        _mm256_storeu_ps(y + t * ldy, acc[t][0]);
        _mm256_storeu_ps(y + t * ldy + 8, acc[t][1]);
    }
}

template <int R>
HEARTH_PK_INLINE void tile_q6(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    __m256 facc[R][2];
    for (int r = 0; r < R; ++r) facc[r][0] = facc[r][1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* a = act + static_cast<size_t>(i) * kPackActQ6SuperBytes;
        const uint8_t* w = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes + 4 * r0;
        const int8_t* sc = reinterpret_cast<const int8_t*>(wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes + 4096 + r0);
        __m256i T[R][2];
        for (int r = 0; r < R; ++r) T[r][0] = T[r][1] = _mm256_setzero_si256();
        for (int j = 0; j < 16; ++j) {
            // Plain AVX2: two int16 sums of two words each; VNNI: one int32 sum of four.
            for (int p = 0; p < (HEARTH_PACKED_VNNI ? 1 : 2); ++p) {
                Sum s[R][2];
                for (int r = 0; r < R; ++r) s[r][0] = s[r][1] = zero();
#pragma GCC unroll 4
                for (int q = 0; q < (HEARTH_PACKED_VNNI ? 4 : 2); ++q) {
                    const int word = 4 * j + (HEARTH_PACKED_VNNI ? 0 : 2 * p) + q;
                    const __m256i a0 = load(a + 64 * word), a1 = load(a + 64 * word + 32);
#pragma GCC unroll 4
                    for (int r = 0; r < R; ++r) {
                        const __m256i wv = bcast(w + 64 * word + 4 * r);
                        add(s[r][0], wv, a0);
                        add(s[r][1], wv, a1);
                    }
                }
#pragma GCC unroll 4
                for (int r = 0; r < R; ++r)
                    for (int v = 0; v < 2; ++v) T[r][v] = _mm256_add_epi32(T[r][v], scaled1(s[r][v], sc[16 * j + r]));
            }
        }
        const __m256 da[2] = {_mm256_loadu_ps(reinterpret_cast<const float*>(a + 4096)),
                              _mm256_loadu_ps(reinterpret_cast<const float*>(a + 4128))};
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const __m256 d = _mm256_set1_ps(dw[16 * i + r0 + r]);
            for (int v = 0; v < 2; ++v) {
                __m256i M = _mm256_setzero_si256();
#pragma GCC unroll 16
                for (int j = 0; j < 16; ++j)
                    M = _mm256_add_epi32(M, mul16(_mm256_set1_epi32(static_cast<uint16_t>(sc[16 * j + r])),
                                                  load(a + 4160 + 64 * j + 32 * v)));
                const __m256i tm = _mm256_sub_epi32(T[r][v], _mm256_slli_epi32(M, 5));
                facc[r][v] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tm), _mm256_mul_ps(d, da[v]), facc[r][v]);
            }
        }
    }
    for (int r = 0; r < R; ++r) {
        _mm256_storeu_ps(out + 16 * r, facc[r][0]);
        _mm256_storeu_ps(out + 16 * r + 8, facc[r][1]);
    }
}

// ---- Entry points (PackedKernels).

HEARTH_PK void q4_0_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                         const int32_t* off, int nt, float* y, int64_t ldy) {
    rows16_any<false>(K, group, act, stride, da, off, nt, y, ldy);
}
HEARTH_PK void q8_0_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                         const int32_t* off, int nt, float* y, int64_t ldy) {
    rows16_any<true>(K, group, act, stride, da, off, nt, y, ldy);
}
template <bool Q5>
HEARTH_PK_INLINE void rows_k_any(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                                 const int32_t* bs, int nt, float* y, int64_t ldy) {
    const int64_t nb = K / 256;
    while (nt > 0) {
        const int k = nt < 2 ? nt : 2;
        if (k == 1) rows16_k4<1, Q5>(K, group, act, stride, da, bs, y, ldy);
        else rows16_k4<2, Q5>(K, group, act, stride, da, bs, y, ldy);
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        da += k * nb;
        bs += k * nb * 8;
        y += k * ldy;
    }
}
HEARTH_PK void q4_k_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                         const int32_t* bs, int nt, float* y, int64_t ldy) {
    rows_k_any<false>(K, group, act, stride, da, bs, nt, y, ldy);
}
HEARTH_PK void q5_k_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, const float* da,
                         const int32_t* bs, int nt, float* y, int64_t ldy) {
    rows_k_any<true>(K, group, act, stride, da, bs, nt, y, ldy);
}
HEARTH_PK void q6_k_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, int nt, float* y,
                         int64_t ldy) {
    while (nt > 0) {
        const int k = nt < 2 ? nt : 2;
        if (k == 1) rows16_q6<1>(K, group, act, stride, y, ldy);
        else rows16_q6<2>(K, group, act, stride, y, ldy);
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        y += k * ldy;
    }
}

HEARTH_PK void q4_0_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) { unpack_q<false>(K, group, wu, dw); }
HEARTH_PK void q8_0_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) { unpack_q<true>(K, group, wu, dw); }

template <bool Q5>
HEARTH_PK_INLINE void unpack_k(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * (Q5 ? kQ5KSuper : kQ4KSuper);
        uint8_t* o = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes;
        for (int h = 0; h < 2; ++h) {
            _mm256_storeu_ps(dw + 32 * i + 8 * h, half8(b + 16 * h));
            _mm256_storeu_ps(dw + 32 * i + 16 + 8 * h, half8(b + 32 + 16 * h));
        }
        for (int c = 0; c < 4; ++c)
            for (int q = 0; q < 8; ++q)
                for (int h = 0; h < 2; ++h) {
                    const __m256i v = load(b + 320 + 64 * (8 * c + q) + 32 * h);
                    __m256i lo = lo_nib(v), hi = hi_nib(v);
                    if constexpr (Q5) {
                        const __m256i hv = load(b + kQ4KSuper + 64 * q + 32 * h);
                        lo = _mm256_or_si256(lo, fifth_bit(hv, 2 * c));
                        hi = _mm256_or_si256(hi, fifth_bit(hv, 2 * c + 1));
                    }
                    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64 * (16 * c + q) + 32 * h), lo);
                    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64 * (16 * c + 8 + q) + 32 * h), hi);
                }
        std::memcpy(o + 4096, b + 64, 256);
    }
}
HEARTH_PK void q4_k_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) { unpack_k<false>(K, group, wu, dw); }
HEARTH_PK void q5_k_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) { unpack_k<true>(K, group, wu, dw); }

HEARTH_PK void q6_k_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kPackQ6SuperBytes;
        uint8_t* o = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes;
        _mm256_storeu_ps(dw + 16 * i, half8(b));
        _mm256_storeu_ps(dw + 16 * i + 8, half8(b + 16));
        for (int hh = 0; hh < 16; ++hh)
            for (int h = 0; h < 2; ++h) {
                __m256i w[4];
                words_of(b, hh, h, w);
                for (int m = 0; m < 4; ++m) _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64 * (hh + 16 * m) + 32 * h), w[m]);
            }
        std::memcpy(o + 4096, b + kScQ6, 256);
    }
}

// 8 rows from r0 per call (the driver's block), as two register tiles of 4 rows x 16 tokens:
// 8 independent sums, enough to hide vpdpbusd's latency (2 rows measured 40% slower with
// VNNI and 30% slower without on Q4_K).
constexpr int kRowsQ = 4, kRowsQ8 = 4, kRowsK = 4;

HEARTH_PK void q4_0_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    for (int rr = 0; rr < 8; rr += kRowsQ) tile_q<false, kRowsQ>(K, wu, dw, r0 + rr, act, out + 16 * rr);
}
HEARTH_PK void q8_0_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    for (int rr = 0; rr < 8; rr += kRowsQ8) tile_q<true, kRowsQ8>(K, wu, dw, r0 + rr, act, out + 16 * rr);
}
HEARTH_PK void q4_k_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    for (int rr = 0; rr < 8; rr += kRowsK) tile_k4<kRowsK>(K, wu, dw, r0 + rr, act, out + 16 * rr);
}
HEARTH_PK void q5_k_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    for (int rr = 0; rr < 8; rr += kRowsK) tile_k4<kRowsK, true>(K, wu, dw, r0 + rr, act, out + 16 * rr);
}
HEARTH_PK void q6_k_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    for (int rr = 0; rr < 8; rr += kRowsK) tile_q6<kRowsK>(K, wu, dw, r0 + rr, act, out + 16 * rr);
}

}  // namespace

const PackedKernels& packed_kernels() {
    static const PackedKernels k{HEARTH_PACKED_VNNI ? "avx2-vnni" : "avx2",
                                 q4_0_rows,   q8_0_rows,   q4_k_rows,   q6_k_rows,  q4_0_unpack, q8_0_unpack,
                                 q4_k_unpack, q6_k_unpack, q4_0_block,  q8_0_block, q4_k_block,  q6_k_block,
                                 q5_k_rows,   q5_k_unpack, q5_k_block};
    return k;
}

}  // namespace hearth::HEARTH_PACKED_NS

#endif  // __x86_64__
