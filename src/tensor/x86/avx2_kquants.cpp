// AVX2+FMA+F16C kernels for the K-quants: Q2_K .. Q6_K dot products against Q8_K, the Q8_K
// activation quantizer, and dequantizers. Within a 256-element super-block every product
// is summed exactly in int32: maddubs (unsigned weight x signed activation) gives int16
// pair sums, madd by the 16-bit sub-block scale widens to int32. Signed weights are handled
// by their unsigned offset form and the activation's bsums (sum of each 16 quants):
// sum(q - o) * y = sum(q * y) - o * sum(y). One FMA per super-block scales the total.
#if defined(__x86_64__)

#include "tensor/x86/avx2_common.h"

namespace hearth {
namespace avx2 {
namespace {

// ---- Dot products ----

// Shared by Q4_K and Q5_K: the -dmin * sum(min_j * bsum_j) term, as int32 lanes.
HEARTH_AVX2_INLINE __m256i k4_min_products(__m128i sm, const BlockQ8_K& y) {
    // Each 6-bit min covers 32 elements = two bsums: repeat each min twice.
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
    return _mm256_madd_epi16(mins, bsums16(y));
}

HEARTH_AVX2 float vec_dot_q4_K(int64_t n, const void* vw, const void* va) {
    const BlockQ4_K* x = static_cast<const BlockQ4_K*>(vw);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(va);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
        prefetch_ahead(x + i);
        const float d = y[i].d * h2f(x[i].d);
        const float dmin = y[i].d * h2f(x[i].dmin);
        const __m128i sm = k4_scales_mins(x[i].scales);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(-dmin), _mm256_cvtepi32_ps(k4_min_products(sm, y[i])), acc);

        const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        const uint8_t* q4 = x[i].qs;
        const int8_t* q8 = y[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        HEARTH_UNROLL
        for (int j = 0; j < 4; ++j) {
            const __m256i q = load32(q4 + 32 * j);
            const __m256i lo = _mm256_and_si256(q, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            sumi = _mm256_add_epi32(sumi, scaled_chunk(lo, q8 + 64 * j, word_scale(sc, 2 * j)));
            sumi = _mm256_add_epi32(sumi, scaled_chunk(hi, q8 + 64 * j + 32, word_scale(sc, 2 * j + 1)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

HEARTH_AVX2 float vec_dot_q5_K(int64_t n, const void* vw, const void* va) {
    const BlockQ5_K* x = static_cast<const BlockQ5_K*>(vw);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(va);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
        prefetch_ahead(x + i);
        const float d = y[i].d * h2f(x[i].d);
        const float dmin = y[i].d * h2f(x[i].dmin);
        const __m128i sm = k4_scales_mins(x[i].scales);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(-dmin), _mm256_cvtepi32_ps(k4_min_products(sm, y[i])), acc);

        const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        const uint8_t* q4 = x[i].qs;
        const int8_t* q8 = y[i].qs;
        __m256i hb = load32(x[i].qh);  // bit 2j / 2j+1 of byte l: 5th bit of element 64j + l / 64j + 32 + l
        __m256i sumi = _mm256_setzero_si256();
        HEARTH_UNROLL
        for (int j = 0; j < 4; ++j) {
            const __m256i q = load32(q4 + 32 * j);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), bit4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 3), bit4));
            hb = _mm256_srli_epi16(hb, 2);
            sumi = _mm256_add_epi32(sumi, scaled_chunk(lo, q8 + 64 * j, word_scale(sc, 2 * j)));
            sumi = _mm256_add_epi32(sumi, scaled_chunk(hi, q8 + 64 * j + 32, word_scale(sc, 2 * j + 1)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

HEARTH_AVX2 float vec_dot_q6_K(int64_t n, const void* vw, const void* va) {
    const BlockQ6_K* x = static_cast<const BlockQ6_K*>(vw);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(va);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
        prefetch_ahead(x + i);
        const float d = y[i].d * h2f(x[i].d);
        const __m128i s8 = load16(x[i].scales);
        // Weights are stored as q + 32 (0..63): subtract 32 * sum_j scale_j * bsum_j.
        const __m256i corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(s8), bsums16(y[i]));
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
        HEARTH_UNROLL
        for (int c = 0; c < 2; ++c) {
            const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(c ? _mm_srli_si128(s8, 8) : s8));
            const uint8_t* ql = x[i].ql + 64 * c;
            const int8_t* q8 = y[i].qs + 128 * c;
            const __m256i a = load32(ql), b = load32(ql + 32), h = load32(x[i].qh + 32 * c);
            const __m256i q0 = _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(b, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4), _mm256_and_si256(h, m30));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4),
                                               _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
            const __m256i p01 = _mm256_add_epi32(scaled_chunk(q0, q8, pair_scale(sc, 0)),
                                                 scaled_chunk(q1, q8 + 32, pair_scale(sc, 1)));
            const __m256i p23 = _mm256_add_epi32(scaled_chunk(q2, q8 + 64, pair_scale(sc, 2)),
                                                 scaled_chunk(q3, q8 + 96, pair_scale(sc, 3)));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p01, p23));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

HEARTH_AVX2 float vec_dot_q3_K(int64_t n, const void* vw, const void* va) {
    const BlockQ3_K* x = static_cast<const BlockQ3_K*>(vw);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(va);
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i bit2 = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
        prefetch_ahead(x + i);
        const float d = h2f(x[i].d) * y[i].d;
        const __m128i s8 = k3_scales(x[i].scales);
        // Weights as q + 4 (0..7): subtract 4 * sum_j scale_j * bsum_j.
        const __m256i corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(s8), bsums16(y[i]));
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 2));
        __m256i hm = load32(x[i].hmask);  // bit 4c+s of byte l: high bit of element 128c + 32s + l
        HEARTH_UNROLL
        for (int c = 0; c < 2; ++c) {
            const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(c ? _mm_srli_si128(s8, 8) : s8));
            __m256i q = load32(x[i].qs + 32 * c);
            const int8_t* q8 = y[i].qs + 128 * c;
            HEARTH_UNROLL
            for (int s = 0; s < 4; ++s) {
                const __m256i w = _mm256_or_si256(_mm256_and_si256(q, m3), _mm256_and_si256(_mm256_slli_epi16(hm, 2), bit2));
                sumi = _mm256_add_epi32(sumi, scaled_chunk(w, q8 + 32 * s, pair_scale(sc, s)));
                q = _mm256_srli_epi16(q, 2);
                hm = _mm256_srli_epi16(hm, 1);
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

HEARTH_AVX2 float vec_dot_q2_K(int64_t n, const void* vw, const void* va) {
    const BlockQ2_K* x = static_cast<const BlockQ2_K*>(vw);
    const BlockQ8_K* y = static_cast<const BlockQ8_K*>(va);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK_K; ++i) {
        prefetch_ahead(x + i);
        const float dall = y[i].d * h2f(x[i].d);
        const float dmin = y[i].d * h2f(x[i].dmin);
        const __m128i packed = load16(x[i].scales);
        const __m128i sc8 = _mm_and_si128(packed, m4);
        const __m128i mn8 = _mm_and_si128(_mm_srli_epi16(packed, 4), m4);
        const __m256i mins = _mm256_madd_epi16(_mm256_cvtepu8_epi16(mn8), bsums16(y[i]));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(-dmin), _mm256_cvtepi32_ps(mins), acc);

        __m256i sumi = _mm256_setzero_si256();
        HEARTH_UNROLL
        for (int c = 0; c < 2; ++c) {
            const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(c ? _mm_srli_si128(sc8, 8) : sc8));
            __m256i q = load32(x[i].qs + 32 * c);
            const int8_t* q8 = y[i].qs + 128 * c;
            HEARTH_UNROLL
            for (int s = 0; s < 4; ++s) {
                sumi = _mm256_add_epi32(sumi, scaled_chunk(_mm256_and_si256(q, m3), q8 + 32 * s, pair_scale(sc, s)));
                q = _mm256_srli_epi16(q, 2);
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dall), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

// ---- Q8_K activation quantizer (byte-identical to the reference: iscale = -127 / x_max
// where x_max is the first element of largest magnitude, q = min(127, rint(iscale * x)),
// d = 1 / iscale).

HEARTH_AVX2 void from_float_q8_K(const float* src, void* dst, int64_t n) {
    BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float* x = src + i * QK_K;
        __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 16) {
            m0 = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + j)), m0);
            m1 = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + j + 8)), m1);
        }
        const float amax = hmax(_mm256_max_ps(m0, m1));
        if (amax == 0.0f) {
            std::memset(&y[i], 0, sizeof(BlockQ8_K));
            continue;
        }
        float xmax = amax;
        const __m256 va = _mm256_set1_ps(amax);
        for (int j = 0; j < QK_K; j += 8) {
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + j)), va, _CMP_EQ_OQ));
            if (hit) {
                xmax = x[j + __builtin_ctz(static_cast<unsigned>(hit))];
                break;
            }
        }
        const float iscale = -127.0f / xmax;
        const __m256 mul = _mm256_set1_ps(iscale);
        const __m256 lim = _mm256_set1_ps(127.0f);
        for (int g = 0; g < QK_K; g += 64) {
            __m256i v[8];
            for (int k = 0; k < 8; ++k) {
                const __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + g + 8 * k), mul),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                v[k] = _mm256_cvtps_epi32(_mm256_min_ps(r, lim));
            }
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + g), pack_i32_to_i8(v[0], v[1], v[2], v[3]));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + g + 32), pack_i32_to_i8(v[4], v[5], v[6], v[7]));
            // Sums of the four groups of 16: fold pairs of vectors, then three horizontal adds.
            const __m256i h01 = _mm256_hadd_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
            const __m256i h23 = _mm256_hadd_epi32(_mm256_add_epi32(v[4], v[5]), _mm256_add_epi32(v[6], v[7]));
            const __m256i h = _mm256_hadd_epi32(h01, h23);
            const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            _mm_storel_epi64(reinterpret_cast<__m128i*>(y[i].bsums + g / 16), _mm_packs_epi32(s, s));
        }
        y[i].d = 1.0f / iscale;
    }
}

// ---- Dequantizers (same roundings as the reference: (d * sc) * q, and d1 * q - m1 unfused).

HEARTH_AVX2_INLINE __m256 u8x8_to_ps(__m128i b) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)); }

// 32 unsigned bytes q -> y[0..31] = d * q - m.
HEARTH_AVX2_INLINE void store_affine32(__m256i q, float d, float m, float* y) {
    const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; ++k)
        _mm256_storeu_ps(y + 8 * k, _mm256_sub_ps(no_contract(_mm256_mul_ps(vd, u8x8_to_ps(parts[k]))), vm));
}

// 32 signed bytes q -> y[0..15] = d0 * q, y[16..31] = d1 * q.
HEARTH_AVX2_INLINE void store_scaled16x2(__m256i q, float d0, float d1, float* y) {
    const __m256 v0 = _mm256_set1_ps(d0), v1 = _mm256_set1_ps(d1);
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(y, _mm256_mul_ps(v0, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(v0, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
    _mm256_storeu_ps(y + 16, _mm256_mul_ps(v1, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
    _mm256_storeu_ps(y + 24, _mm256_mul_ps(v1, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
}

HEARTH_AVX2 void to_float_q4_K(const void* src, float* dst, int64_t n) {
    const BlockQ4_K* x = static_cast<const BlockQ4_K*>(src);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        alignas(16) uint8_t sm[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(sm), k4_scales_mins(x[i].scales));
        float* y = dst + i * QK_K;
        for (int j = 0; j < 4; ++j) {
            const __m256i q = load32(x[i].qs + 32 * j);
            store_affine32(_mm256_and_si256(q, m4), d * sm[2 * j], dmin * sm[8 + 2 * j], y + 64 * j);
            store_affine32(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), d * sm[2 * j + 1], dmin * sm[9 + 2 * j],
                           y + 64 * j + 32);
        }
    }
}

HEARTH_AVX2 void to_float_q5_K(const void* src, float* dst, int64_t n) {
    const BlockQ5_K* x = static_cast<const BlockQ5_K*>(src);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        alignas(16) uint8_t sm[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(sm), k4_scales_mins(x[i].scales));
        float* y = dst + i * QK_K;
        __m256i hb = load32(x[i].qh);
        for (int j = 0; j < 4; ++j) {
            const __m256i q = load32(x[i].qs + 32 * j);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), bit4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(hb, 3), bit4));
            hb = _mm256_srli_epi16(hb, 2);
            store_affine32(lo, d * sm[2 * j], dmin * sm[8 + 2 * j], y + 64 * j);
            store_affine32(hi, d * sm[2 * j + 1], dmin * sm[9 + 2 * j], y + 64 * j + 32);
        }
    }
}

HEARTH_AVX2 void to_float_q6_K(const void* src, float* dst, int64_t n) {
    const BlockQ6_K* x = static_cast<const BlockQ6_K*>(src);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m30 = _mm256_set1_epi8(0x30);
    const __m256i off = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = h2f(x[i].d);
        const int8_t* sc = x[i].scales;
        for (int c = 0; c < 2; ++c) {
            const uint8_t* ql = x[i].ql + 64 * c;
            const __m256i a = load32(ql), b = load32(ql + 32), h = load32(x[i].qh + 32 * c);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(b, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4), _mm256_and_si256(h, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
            float* y = dst + i * QK_K + 128 * c;
            for (int k = 0; k < 4; ++k) {
                const int s = 8 * c + 2 * k;
                store_scaled16x2(_mm256_sub_epi8(q[k], off), d * sc[s], d * sc[s + 1], y + 32 * k);
            }
        }
    }
}

HEARTH_AVX2 void to_float_q3_K(const void* src, float* dst, int64_t n) {
    const BlockQ3_K* x = static_cast<const BlockQ3_K*>(src);
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i bit2 = _mm256_set1_epi8(4);
    const __m256i off = _mm256_set1_epi8(4);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = h2f(x[i].d);
        alignas(16) int8_t sc[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(sc), k3_scales(x[i].scales));
        __m256i hm = load32(x[i].hmask);
        for (int c = 0; c < 2; ++c) {
            __m256i q = load32(x[i].qs + 32 * c);
            for (int s = 0; s < 4; ++s) {
                const __m256i w = _mm256_or_si256(_mm256_and_si256(q, m3), _mm256_and_si256(_mm256_slli_epi16(hm, 2), bit2));
                const int k = 8 * c + 2 * s;
                store_scaled16x2(_mm256_sub_epi8(w, off), d * sc[k], d * sc[k + 1], dst + i * QK_K + 128 * c + 32 * s);
                q = _mm256_srli_epi16(q, 2);
                hm = _mm256_srli_epi16(hm, 1);
            }
        }
    }
}

HEARTH_AVX2 void to_float_q2_K(const void* src, float* dst, int64_t n) {
    const BlockQ2_K* x = static_cast<const BlockQ2_K*>(src);
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        const uint8_t* sc = x[i].scales;
        for (int c = 0; c < 2; ++c) {
            __m256i q = load32(x[i].qs + 32 * c);
            for (int s = 0; s < 4; ++s) {
                const int k = 8 * c + 2 * s;
                const __m256i w = _mm256_and_si256(q, m3);
                float* y = dst + i * QK_K + 128 * c + 32 * s;
                // Two 16-element halves with their own scale/min: reuse the 32-wide helper
                // on a copy and overwrite the upper half.
                store_affine32(w, d * (sc[k] & 0xf), dmin * (sc[k] >> 4), y);
                const __m256 vd = _mm256_set1_ps(d * (sc[k + 1] & 0xf)), vm = _mm256_set1_ps(dmin * (sc[k + 1] >> 4));
                const __m128i hi = _mm256_extracti128_si256(w, 1);
                _mm256_storeu_ps(y + 16, _mm256_sub_ps(no_contract(_mm256_mul_ps(vd, u8x8_to_ps(hi))), vm));
                _mm256_storeu_ps(y + 24,
                                 _mm256_sub_ps(no_contract(_mm256_mul_ps(vd, u8x8_to_ps(_mm_srli_si128(hi, 8)))), vm));
                q = _mm256_srli_epi16(q, 2);
            }
        }
    }
}

}  // namespace

void register_kquant_kernels(KernelTable& t) {
    t[GgmlType::Q2_K].vec_dot = vec_dot_q2_K;
    t[GgmlType::Q2_K].to_float = to_float_q2_K;
    t[GgmlType::Q3_K].vec_dot = vec_dot_q3_K;
    t[GgmlType::Q3_K].to_float = to_float_q3_K;
    t[GgmlType::Q4_K].vec_dot = vec_dot_q4_K;
    t[GgmlType::Q4_K].to_float = to_float_q4_K;
    t[GgmlType::Q5_K].vec_dot = vec_dot_q5_K;
    t[GgmlType::Q5_K].to_float = to_float_q5_K;
    t[GgmlType::Q6_K].vec_dot = vec_dot_q6_K;
    t[GgmlType::Q6_K].to_float = to_float_q6_K;
    t[GgmlType::Q8_K].from_float = from_float_q8_K;
}

}  // namespace avx2
}  // namespace hearth

#endif  // __x86_64__
