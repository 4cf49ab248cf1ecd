// AVX-512 VNNI kernels for packed Q6_K (tensor/repack.h): decode (lane = row, up to 4 tokens
// per pass over a row group) and prompt batches (lane = token of a 16-token block, 8 rows
// per register block). Both compute, per super-block, row and token, the exact int32
// T = sum_j sc_j * (q . a over sub-block j) and M = sum_j sc_j * bsum_j (q = the unsigned
// 6-bit value, stored q - 32 = value), then acc += float(T - 32 M) * (d * d_a): the same
// integers and float operations, so the two kernels give bit-identical results.
//
// Packed super-block of 16 rows (3360 bytes, the stored size): 16 fp16 d; int8 scales
// [sub-block][row]; 32 vectors of low nibbles (vector p: word p in the low nibbles, word
// p + 32 in the high ones; word w = elements 4w..4w+3, 4 bytes per row); 16 vectors of
// high 2-bit pairs (vector h: words h, h + 16, h + 32, h + 48 at bits 0, 2, 4, 6).
#include "tensor/repack.h"

#include "tensor/types.h"

#if defined(__x86_64__)
#include "tensor/x86/avx512_vnni.h"

namespace hearth::avx512 {
namespace {

constexpr size_t kScales = 32, kLow = 288, kHigh = 288 + 2048;

// The four weight vectors of words h, h + 16, h + 32, h + 48 (6-bit values, one byte each).
HEARTH_VNNI512_INLINE void words_of(const uint8_t* b, int h, __m512i (&w)[4]) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i l0 = _mm512_loadu_si512(b + kLow + 64 * h);
    const __m512i l1 = _mm512_loadu_si512(b + kLow + 64 * (h + 16));
    const __m512i hb = _mm512_loadu_si512(b + kHigh + 64 * h);
    w[0] = _mm512_or_si512(_mm512_and_si512(l0, m4), _mm512_slli_epi16(_mm512_and_si512(hb, _mm512_set1_epi8(0x03)), 4));
    w[1] = _mm512_or_si512(_mm512_and_si512(l1, m4), _mm512_slli_epi16(_mm512_and_si512(hb, _mm512_set1_epi8(0x0c)), 2));
    w[2] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l0, 4), m4), _mm512_and_si512(hb, _mm512_set1_epi8(0x30)));
    w[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l1, 4), m4),
                           _mm512_and_si512(_mm512_srli_epi16(hb, 2), _mm512_set1_epi8(0x30)));
}

template <int NT>
HEARTH_VNNI512_INLINE void rows16_q6(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, float* y,
                                     int64_t ldy) {
    const int64_t nb = K / 256;
    const BlockQ8_K* a[NT];
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) {
        a[t] = reinterpret_cast<const BlockQ8_K*>(act + static_cast<size_t>(t) * stride);
        acc[t] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kPackQ6SuperBytes;
        for (size_t p = 0; p < kPackQ6SuperBytes; p += 64) _mm_prefetch(reinterpret_cast<const char*>(b) + 4480 + p, _MM_HINT_T0);
        __m512i sc[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; ++j)
            sc[j] = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kScales + 16 * j)));
        __m512i T[NT];
        for (int t = 0; t < NT; ++t) T[t] = _mm512_setzero_si512();
        for (int k = 0; k < 4; ++k) {
            __m512i w[4][4];  // [q][m]: word 4k + q + 16m, sub-block k + 4m
#pragma GCC unroll 4
            for (int q = 0; q < 4; ++q) words_of(b, 4 * k + q, w[q]);
#pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) {
                const int8_t* aq = a[t][i].qs;
#pragma GCC unroll 4
                for (int m = 0; m < 4; ++m) {
                    __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 4
                    for (int q = 0; q < 4; ++q) {
                        int32_t v;
                        __builtin_memcpy(&v, aq + 4 * (4 * k + q + 16 * m), 4);
                        s = _mm512_dpbusd_epi32(s, w[q][m], _mm512_set1_epi32(v));
                    }
                    T[t] = _mm512_add_epi32(T[t], _mm512_mullo_epi32(s, sc[k + 4 * m]));
                }
            }
        }
        const __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) {
            __m512i M = _mm512_setzero_si512();
#pragma GCC unroll 16
            for (int j = 0; j < 16; ++j) M = _mm512_add_epi32(M, _mm512_mullo_epi32(sc[j], _mm512_set1_epi32(a[t][i].bsums[j])));
            const __m512i tm = _mm512_sub_epi32(T[t], _mm512_slli_epi32(M, 5));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tm), _mm512_mul_ps(dv, _mm512_set1_ps(a[t][i].d)), acc[t]);
        }
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * ldy, acc[t]);
}

}  // namespace

HEARTH_VNNI512 void q6_kx16_rows(int64_t K, const uint8_t* group, const uint8_t* act, size_t stride, int nt, float* y,
                                 int64_t ldy) {
    while (nt > 0) {
        const int k = nt < 4 ? nt : 4;
        switch (k) {
            case 1: rows16_q6<1>(K, group, act, stride, y, ldy); break;
            case 2: rows16_q6<2>(K, group, act, stride, y, ldy); break;
            case 3: rows16_q6<3>(K, group, act, stride, y, ldy); break;
            default: rows16_q6<4>(K, group, act, stride, y, ldy); break;
        }
        nt -= k;
        act += static_cast<size_t>(k) * stride;
        y += k * ldy;
    }
}

// Unpacked super-block (kPackUnpackedSuperBytes): word w's 16-row vector at 64 w, then the
// int8 scales [sub-block][row]; dw: 16 d per super-block.
HEARTH_VNNI512 void q6_kx16_unpack(int64_t K, const uint8_t* group, uint8_t* wu, float* dw) {
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* b = group + static_cast<size_t>(i) * kPackQ6SuperBytes;
        uint8_t* o = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes;
        _mm512_storeu_ps(dw + 16 * i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b))));
        for (int h = 0; h < 16; ++h) {
            __m512i w[4];
            words_of(b, h, w);
            for (int m = 0; m < 4; ++m) _mm512_storeu_si512(o + 64 * (h + 16 * m), w[m]);
        }
        __builtin_memcpy(o + 4096, b + kScales, 256);
    }
}

// Activations per 16-token block and super-block (kPackActQ6SuperBytes): 64 words x 64 bytes
// (token t's elements 4w..4w+3 at 64 w + 4 t), 16 float d_a, then 16 x 16 int32 bsums.
HEARTH_VNNI512 void q6_kx16_gemm_block(int64_t K, const uint8_t* wu, const float* dw, int r0, const uint8_t* act,
                                       float* out) {
    __m512 facc[8];
    for (int r = 0; r < 8; ++r) facc[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < K / 256; ++i) {
        const uint8_t* a = act + static_cast<size_t>(i) * kPackActQ6SuperBytes;
        const uint8_t* w = wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes + 4 * r0;
        const int8_t* sc = reinterpret_cast<const int8_t*>(wu + static_cast<size_t>(i) * kPackUnpackedSuperBytes + 4096 + r0);
        __m512i T[8], M[8];
        for (int r = 0; r < 8; ++r) T[r] = M[r] = _mm512_setzero_si512();
        for (int j = 0; j < 16; ++j) {
            __m512i av[4];
#pragma GCC unroll 4
            for (int q = 0; q < 4; ++q) av[q] = _mm512_loadu_si512(a + 64 * (4 * j + q));
            const __m512i bsum = _mm512_loadu_si512(a + 4096 + 64 + 64 * j);
#pragma GCC unroll 8
            for (int r = 0; r < 8; ++r) {
                __m512i s = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int q = 0; q < 4; ++q) {
                    int32_t v;
                    __builtin_memcpy(&v, w + 64 * (4 * j + q) + 4 * r, 4);
                    s = _mm512_dpbusd_epi32(s, _mm512_set1_epi32(v), av[q]);
                }
                const __m512i scj = _mm512_set1_epi32(sc[16 * j + r]);
                T[r] = _mm512_add_epi32(T[r], _mm512_mullo_epi32(s, scj));
                M[r] = _mm512_add_epi32(M[r], _mm512_mullo_epi32(scj, bsum));
            }
        }
        const __m512 da = _mm512_loadu_ps(reinterpret_cast<const float*>(a + 4096));
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r) {
            const __m512i tm = _mm512_sub_epi32(T[r], _mm512_slli_epi32(M[r], 5));
            facc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tm), _mm512_mul_ps(_mm512_set1_ps(dw[16 * i + r0 + r]), da), facc[r]);
        }
    }
    for (int r = 0; r < 8; ++r) _mm512_storeu_ps(out + 16 * r, facc[r]);
}

}  // namespace hearth::avx512

#else

namespace hearth::avx512 {
void q6_kx16_rows(int64_t, const uint8_t*, const uint8_t*, size_t, int, float*, int64_t) {}
void q6_kx16_unpack(int64_t, const uint8_t*, uint8_t*, float*) {}
void q6_kx16_gemm_block(int64_t, const uint8_t*, const float*, int, const uint8_t*, float*) {}
}  // namespace hearth::avx512

#endif
