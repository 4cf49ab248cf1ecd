// Internal to src/tensor/x86/amx_packed.cpp: the AMX family's unpack and prompt kernels, as
// templates over the tile operations (x86/amx_tiles.h: HwTiles or EmuTiles).
//
// Unpacked row group: the weight bytes in the tiles' A layout, row by row. Q4_0 / Q8_0: per
// 32-column block 16 rows x 32 bytes (row r at 512 i + 32 r; 16 bytes per column, half the
// room packed_gemm gives); Q4_K / Q5_K / Q6_K: per super-block (kPackUnpackedSuperBytes) 16 rows x
// 256 bytes, then the scales (and Q4_K's mins) as packed, [sub-block][row]. dw as the
// AVX-512 VNNI unpack writes it.
//
// Prompt kernel, 8 rows x one 16-token block: per block (Q4_K: 32-column sub-block, Q6_K:
// 16-column one) C = A x B on tiles, A = the 8 rows' bytes (unsigned: Q4_0 nibbles, Q8_0
// bytes + 128, Q4_K / Q6_K unsigned values), B = the activation block exactly as
// packed_gemm lays it out ([word][token][4 bytes], signed), C[r][t] the exact int32 sum for
// row r and token t. Two blocks per round (tiles 0/1 = C, 2/3 = A, 4/5 = B). C is stored to
// memory and each of its rows (16 tokens) goes through the float operations of
// x86/avx512_packed*.cpp's gemm_block for that row, in the same order, so every float is
// computed from the same operands by the same instruction.
#pragma once

#if defined(__x86_64__)
#include "tensor/repack.h"
#include "tensor/x86/amx_tiles.h"

namespace hearth::amx::impl {

using avx512::kPackActBlockBytes;
using avx512::kPackActQ6SuperBytes;
using avx512::kPackActSuperBytes;
using avx512::kPackQ6SuperBytes;
using avx512::kPackUnpackedSuperBytes;

// Tiles 0, 1: C (8 x 16 int32); 2, 3: A (8 rows x ACols bytes); 4, 5: B (ACols / 4 rows x 64
// bytes).
template <int ACols>
inline TileConfig config8() {
    TileConfig c;
    c.palette_id = 1;
    for (int t = 0; t < 2; ++t) {
        c.rows[t] = 8;
        c.colsb[t] = 64;
        c.rows[2 + t] = 8;
        c.colsb[2 + t] = ACols;
        c.rows[4 + t] = ACols / 4;
        c.colsb[4 + t] = 64;
    }
    return c;
}

// Two independent products: c0 = a0 x b0, c1 = a1 x b1 (A rows sa bytes apart, B rows 64).
template <class Tiles>
HEARTH_AMX_INLINE void product2(const uint8_t* a0, const uint8_t* b0, const uint8_t* a1, const uint8_t* b1, size_t sa,
                                int32_t* c0, int32_t* c1) {
    Tiles::template zero<0>();
    Tiles::template zero<1>();
    Tiles::template load<2>(a0, sa);
    Tiles::template load<4>(b0, 64);
    Tiles::template load<3>(a1, sa);
    Tiles::template load<5>(b1, 64);
    Tiles::template dpbusd<0, 2, 4>();
    Tiles::template dpbusd<1, 3, 5>();
    Tiles::template store<0>(c0, 64);
    Tiles::template store<1>(c1, 64);
}

template <class Tiles>
HEARTH_AMX_INLINE void product1(const uint8_t* a0, const uint8_t* b0, size_t sa, int32_t* c0) {
    Tiles::template zero<0>();
    Tiles::template load<2>(a0, sa);
    Tiles::template load<4>(b0, 64);
    Tiles::template dpbusd<0, 2, 4>();
    Tiles::template store<0>(c0, 64);
}

// w[g] holds word g (4 bytes) of 16 rows; row r's 8 words (32 bytes) go to out + r * stride.
HEARTH_AMX_INLINE void words_to_rows(const __m512i (&w)[8], uint8_t* out, size_t stride) {
    __m512i u[8], v[8];
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {  // lane l: words 2p, 2p + 1 of rows 4l, 4l + 1 | 4l + 2, 4l + 3
        u[2 * p] = _mm512_unpacklo_epi32(w[2 * p], w[2 * p + 1]);
        u[2 * p + 1] = _mm512_unpackhi_epi32(w[2 * p], w[2 * p + 1]);
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {  // v[j + 4h], lane l: row 4l + j, words 4h..4h+3
        v[4 * h + 0] = _mm512_unpacklo_epi64(u[4 * h + 0], u[4 * h + 2]);
        v[4 * h + 1] = _mm512_unpackhi_epi64(u[4 * h + 0], u[4 * h + 2]);
        v[4 * h + 2] = _mm512_unpacklo_epi64(u[4 * h + 1], u[4 * h + 3]);
        v[4 * h + 3] = _mm512_unpackhi_epi64(u[4 * h + 1], u[4 * h + 3]);
    }
    const __m512i lo_rows = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);   // rows j, 4 + j
    const __m512i hi_rows = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);  // rows 8 + j, 12 + j
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
        const __m512i x = _mm512_permutex2var_epi64(v[j], lo_rows, v[4 + j]);
        const __m512i y = _mm512_permutex2var_epi64(v[j], hi_rows, v[4 + j]);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + stride * j), _mm512_castsi512_si256(x));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + stride * (4 + j)), _mm512_extracti64x4_epi64(x, 1));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + stride * (8 + j)), _mm512_castsi512_si256(y));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + stride * (12 + j)), _mm512_extracti64x4_epi64(y, 1));
    }
}

// ---- Q4_0 / Q8_0 ----

template <bool Q8>
constexpr size_t kGroupBlockBytes = Q8 ? 544 : 288;

template <bool Q8>
HEARTH_AMX void unpack_q4_0(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int64_t i = 0; i < K / 32; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kGroupBlockBytes<Q8>;
        _mm512_storeu_ps(dw + 16 * i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b))));
        __m512i w[8];
        if constexpr (Q8) {
            for (int g = 0; g < 8; ++g) w[g] = _mm512_loadu_si512(b + 32 + 64 * g);
        } else {
            for (int j = 0; j < 4; ++j) {  // word j: low nibbles, word 4 + j: high nibbles
                const __m512i q = _mm512_loadu_si512(b + 32 + 64 * j);
                w[j] = _mm512_and_si512(q, m4);
                w[4 + j] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            }
        }
        words_to_rows(w, wu + 512 * i, 32);
    }
}

// One block's float step for 8 rows (x86/avx512_packed.cpp q4_0x16_gemm_block's).
HEARTH_AMX_INLINE void finish_q4_0(const int32_t* c, const uint8_t* a, const float* dwi, __m512 (&facc)[8]) {
    const __m512 da = _mm512_loadu_ps(reinterpret_cast<const float*>(a + 512));
    const __m512i off = _mm512_loadu_si512(a + 576);
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
        const __m512i s = _mm512_load_si512(c + 16 * r);
        const __m512 d = _mm512_mul_ps(_mm512_set1_ps(dwi[r]), da);
        facc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s, off)), d, facc[r]);
    }
}

template <class Tiles>
HEARTH_AMX void block_q4_0(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    const TileConfig cfg = config8<32>();
    Tiles::config(cfg);
    __m512 facc[8];
    for (int r = 0; r < 8; ++r) facc[r] = _mm512_setzero_ps();
    alignas(64) int32_t c[2][8 * 16];
    const int64_t nb = K / 32;
    constexpr size_t ab = kPackActBlockBytes;
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        const uint8_t* a0 = act + static_cast<size_t>(i) * ab;
        product2<Tiles>(wu + 512 * i + 32 * r0, a0, wu + 512 * (i + 1) + 32 * r0, a0 + ab, 32, c[0], c[1]);
        finish_q4_0(c[0], a0, dw + 16 * i + r0, facc);
        finish_q4_0(c[1], a0 + ab, dw + 16 * (i + 1) + r0, facc);
    }
    if (i < nb) {
        const uint8_t* a0 = act + static_cast<size_t>(i) * ab;
        product1<Tiles>(wu + 512 * i + 32 * r0, a0, 32, c[0]);
        finish_q4_0(c[0], a0, dw + 16 * i + r0, facc);
    }
    Tiles::release();
    for (int r = 0; r < 8; ++r) _mm512_storeu_ps(out + 16 * r, facc[r]);
}

// ---- Q4_K ----

constexpr size_t kGroupSuperBytesQ4K = 64 + 256 + 2048;
constexpr size_t kSuper = kPackUnpackedSuperBytes;

HEARTH_AMX void unpack_q4_k(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kGroupSuperBytesQ4K;
        uint8_t* o = wu + static_cast<size_t>(i) * kSuper;
        _mm512_storeu_ps(dw + 32 * i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b))));
        _mm512_storeu_ps(dw + 32 * i + 16, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32))));
        // Chunk c (64 elements): packed vectors 8c..8c+7 hold words 16c..16c+7 in the low
        // nibbles (sub-block 2c) and words 16c+8..16c+15 in the high ones (sub-block 2c + 1).
        for (int c = 0; c < 4; ++c) {
            __m512i lo[8], hi[8];
            for (int q = 0; q < 8; ++q) {
                const __m512i v = _mm512_loadu_si512(b + 320 + 64 * (8 * c + q));
                lo[q] = _mm512_and_si512(v, m4);
                hi[q] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            }
            words_to_rows(lo, o + 64 * c, 256);
            words_to_rows(hi, o + 64 * c + 32, 256);
        }
        std::memcpy(o + 4096, b + 64, 256);  // scales and mins, [sub-block][row]
    }
}

// Q5_K: the AVX-512 unpack (Q4_K's unpacked layout with 5-bit values: word vectors, then
// scales and mins) one super-block at a time, its word vectors then turned into rows; the
// prompt kernel is Q4_K's, as in the AVX-512 family.
HEARTH_AMX void unpack_q5_k(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    alignas(64) uint8_t tmp[kSuper];
    for (int64_t i = 0; i < K / 256; ++i) {
        avx512::q5_kx16_unpack(256, group + static_cast<size_t>(i) * avx512::kPackQ5SuperBytes, tmp, dw + 32 * i);
        uint8_t* o = wu + static_cast<size_t>(i) * kSuper;
        for (int g = 0; g < 8; ++g) {
            __m512i w8[8];
            for (int q = 0; q < 8; ++q) w8[q] = _mm512_load_si512(tmp + 64 * (8 * g + q));
            words_to_rows(w8, o + 32 * g, 256);
        }
        std::memcpy(o + 4096, tmp + 4096, 256);
    }
}

// T[r] += C[r] x scale, for one sub-block j.
HEARTH_AMX_INLINE void scale_add(const int32_t* c, const uint8_t* sc, __m512i (&T)[8]) {
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r)
        T[r] = _mm512_add_epi32(T[r], _mm512_mullo_epi32(_mm512_load_si512(c + 16 * r), _mm512_set1_epi32(sc[r])));
}

template <class Tiles>
HEARTH_AMX void block_q4_k(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    const TileConfig cfg = config8<32>();
    Tiles::config(cfg);
    __m512 facc[8];
    for (int r = 0; r < 8; ++r) facc[r] = _mm512_setzero_ps();
    alignas(64) int32_t c[2][8 * 16];
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* a = act + static_cast<size_t>(i) * kPackActSuperBytes;
        const uint8_t* w = wu + static_cast<size_t>(i) * kSuper + 256 * r0;
        const uint8_t* sc = wu + static_cast<size_t>(i) * kSuper + 4096 + r0;
        __m512i T[8];
        for (int r = 0; r < 8; ++r) T[r] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j += 2) {  // sub-block j: words 8j..8j+7
            product2<Tiles>(w + 32 * j, a + 512 * j, w + 32 * (j + 1), a + 512 * (j + 1), 256, c[0], c[1]);
            scale_add(c[0], sc + 16 * j, T);
            scale_add(c[1], sc + 16 * (j + 1), T);
        }
        const __m512 da = _mm512_loadu_ps(reinterpret_cast<const float*>(a + 4096));
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r) {
            __m512i M = _mm512_setzero_si512();
            for (int j = 0; j < 8; ++j)
                M = _mm512_add_epi32(M, _mm512_mullo_epi32(_mm512_set1_epi32(sc[128 + 16 * j + r]),
                                                           _mm512_loadu_si512(a + 4160 + 64 * j)));
            facc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(T[r]), _mm512_mul_ps(_mm512_set1_ps(dw[32 * i + r0 + r]), da), facc[r]);
            facc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(M), _mm512_mul_ps(_mm512_set1_ps(dw[32 * i + 16 + r0 + r]), da),
                                       facc[r]);
        }
    }
    Tiles::release();
    for (int r = 0; r < 8; ++r) _mm512_storeu_ps(out + 16 * r, facc[r]);
}

// ---- Q6_K (packed layout: x86/avx512_packed_q6k.cpp) ----

constexpr size_t kQ6Scales = 32, kQ6Low = 288, kQ6High = 288 + 2048;

HEARTH_AMX void unpack_q6_k(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kPackQ6SuperBytes;
        uint8_t* o = wu + static_cast<size_t>(i) * kSuper;
        _mm512_storeu_ps(dw + 16 * i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b))));
        // Words h, h + 16, h + 32, h + 48 of vector pair h (the 6-bit values, one byte each),
        // then 8 consecutive words at a time to rows.
        __m512i wv[64];
        for (int h = 0; h < 16; ++h) {
            const __m512i l0 = _mm512_loadu_si512(b + kQ6Low + 64 * h);
            const __m512i l1 = _mm512_loadu_si512(b + kQ6Low + 64 * (h + 16));
            const __m512i hb = _mm512_loadu_si512(b + kQ6High + 64 * h);
            wv[h] = _mm512_or_si512(_mm512_and_si512(l0, m4), _mm512_slli_epi16(_mm512_and_si512(hb, _mm512_set1_epi8(0x03)), 4));
            wv[h + 16] =
                _mm512_or_si512(_mm512_and_si512(l1, m4), _mm512_slli_epi16(_mm512_and_si512(hb, _mm512_set1_epi8(0x0c)), 2));
            wv[h + 32] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l0, 4), m4), _mm512_and_si512(hb, _mm512_set1_epi8(0x30)));
            wv[h + 48] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l1, 4), m4),
                                         _mm512_and_si512(_mm512_srli_epi16(hb, 2), _mm512_set1_epi8(0x30)));
        }
        for (int g = 0; g < 8; ++g) {
            __m512i w8[8];
            for (int q = 0; q < 8; ++q) w8[q] = wv[8 * g + q];
            words_to_rows(w8, o + 32 * g, 256);
        }
        std::memcpy(o + 4096, b + kQ6Scales, 256);  // int8 scales, [sub-block][row]
    }
}

template <class Tiles>
HEARTH_AMX void block_q6_k(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act, float* out) {
    const TileConfig cfg = config8<16>();
    Tiles::config(cfg);
    __m512 facc[8];
    for (int r = 0; r < 8; ++r) facc[r] = _mm512_setzero_ps();
    alignas(64) int32_t c[2][8 * 16];
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* a = act + static_cast<size_t>(i) * kPackActQ6SuperBytes;
        const uint8_t* w = wu + static_cast<size_t>(i) * kSuper + 256 * r0;
        const int8_t* sc = reinterpret_cast<const int8_t*>(wu + static_cast<size_t>(i) * kSuper + 4096 + r0);
        __m512i T[8], M[8];
        for (int r = 0; r < 8; ++r) T[r] = M[r] = _mm512_setzero_si512();
        for (int j = 0; j < 16; j += 2) {  // sub-block j: words 4j..4j+3
            product2<Tiles>(w + 16 * j, a + 256 * j, w + 16 * (j + 1), a + 256 * (j + 1), 256, c[0], c[1]);
#pragma GCC unroll 2
            for (int h = 0; h < 2; ++h) {
                const __m512i bsum = _mm512_loadu_si512(a + 4096 + 64 + 64 * (j + h));
#pragma GCC unroll 8
                for (int r = 0; r < 8; ++r) {
                    const __m512i scj = _mm512_set1_epi32(sc[16 * (j + h) + r]);
                    T[r] = _mm512_add_epi32(T[r], _mm512_mullo_epi32(_mm512_load_si512(c[h] + 16 * r), scj));
                    M[r] = _mm512_add_epi32(M[r], _mm512_mullo_epi32(scj, bsum));
                }
            }
        }
        const __m512 da = _mm512_loadu_ps(reinterpret_cast<const float*>(a + 4096));
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r) {
            const __m512i tm = _mm512_sub_epi32(T[r], _mm512_slli_epi32(M[r], 5));
            facc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tm), _mm512_mul_ps(_mm512_set1_ps(dw[16 * i + r0 + r]), da), facc[r]);
        }
    }
    Tiles::release();
    for (int r = 0; r < 8; ++r) _mm512_storeu_ps(out + 16 * r, facc[r]);
}

template <class Tiles>
PackedKernels family(const char* name) {
    PackedKernels k{name,
                         avx512::q4_0x16_rows,
                         avx512::q8_0x16_rows,
                         avx512::q4_kx16_rows,
                         avx512::q6_kx16_rows,
                         unpack_q4_0<false>,
                         unpack_q4_0<true>,
                         unpack_q4_k,
                         unpack_q6_k,
                         block_q4_0<Tiles>,
                         block_q4_0<Tiles>,
                         block_q4_k<Tiles>,
                         block_q6_k<Tiles>};
    k.q5_k_rows = avx512::q5_kx16_rows;
    k.q5_k_unpack = unpack_q5_k;
    k.q5_k_block = block_q4_k<Tiles>;
    return k;
}

}  // namespace hearth::amx::impl

#endif
